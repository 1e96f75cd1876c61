"""Temporal client: one place that knows the address, namespace and data converter."""

from __future__ import annotations

import asyncio

from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter

from core.settings import Settings
from core.telemetry import temporal_interceptors


async def connect(settings: Settings, *, attempts: int = 30) -> Client:
    """Connect with the pydantic converter, retrying while the server starts (up to ``attempts`` s)."""
    last: Exception | None = None
    for _ in range(attempts):
        try:
            return await Client.connect(settings.temporal_address, namespace=settings.temporal.namespace,
                                        data_converter=pydantic_data_converter,
                                        interceptors=temporal_interceptors())
        except RuntimeError as err:  # the bridge raises RuntimeError while the server is not up
            last = err
            await asyncio.sleep(1)
    raise RuntimeError(f"cannot reach Temporal at {settings.temporal_address}: {last}")


def workflow_id(event_id: str) -> str:
    return f"event-{event_id}"
