"""Temporal client: one place that knows the address, namespace and data converter."""

from __future__ import annotations

import asyncio

from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest, ListSearchAttributesRequest
from temporalio.client import Client
from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig
from temporalio.service import RPCError, RPCStatusCode

from core.settings import Settings
from core.telemetry import temporal_interceptors
from workflows.contract import SEARCH_ATTRIBUTES


def metrics_runtime(port: int, *, host: str = "127.0.0.1") -> Runtime:
    """A Temporal runtime that serves the SDK's worker metrics for Prometheus on ``host:port`` (loopback
    unless SAFETY_WORKER__METRICS_HOST opens it)."""
    return Runtime(telemetry=TelemetryConfig(metrics=PrometheusConfig(bind_address=f"{host}:{port}")))


async def connect(settings: Settings, *, attempts: int = 30, runtime: Runtime | None = None) -> Client:
    """Connect with the system's data converter (pydantic JSON, payloads encrypted: core/codec.py), retrying
    while the server starts (up to ``attempts`` s)."""
    from core.codec import data_converter

    converter = data_converter(settings)
    last: Exception | None = None
    for _ in range(attempts):
        try:
            return await Client.connect(settings.temporal_address, namespace=settings.temporal.namespace,
                                        data_converter=converter,
                                        interceptors=temporal_interceptors(), runtime=runtime)
        except RuntimeError as err:  # the bridge raises RuntimeError while the server is not up
            last = err
            await asyncio.sleep(1)
    raise RuntimeError(f"cannot reach Temporal at {settings.temporal_address}: {last}")


_INDEXED_TYPES = {"Keyword": IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD,
                  "Double": IndexedValueType.INDEXED_VALUE_TYPE_DOUBLE,
                  "Bool": IndexedValueType.INDEXED_VALUE_TYPE_BOOL}


async def ensure_search_attributes(client: Client) -> list[str]:
    """Register the case search attributes that the server does not have yet; returns the names added.

    The embedded dev server gets them on its command line; this is for external servers and the
    time-skipping test server.
    """
    try:
        existing = await client.operator_service.list_search_attributes(
            ListSearchAttributesRequest(namespace=client.namespace))
        have = set(existing.custom_attributes) | set(existing.system_attributes)
    except RPCError as err:
        if err.status != RPCStatusCode.UNIMPLEMENTED:  # the time-skipping server cannot list; it can add
            raise
        have = set()
    missing = {k: _INDEXED_TYPES[v] for k, v in SEARCH_ATTRIBUTES.items() if k not in have}
    if missing:
        await client.operator_service.add_search_attributes(
            AddSearchAttributesRequest(namespace=client.namespace, search_attributes=missing))
    return sorted(missing)
