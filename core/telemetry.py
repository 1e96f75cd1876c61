"""OpenTelemetry tracing: one trace from the ingest request to the last activity of the case.

Enabled when ``SAFETY_OTLP_ENDPOINT`` is set (OTLP/gRPC, e.g. ``http://jaeger:4317``). The Temporal
tracing interceptor carries the trace context through workflow history, so the API's span, the
workflow and every activity on every worker share one trace id. Off by default: the clean path stays
as cheap as it can be.
"""

from __future__ import annotations

from typing import Any

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter

_configured = False


def setup_tracing(service_name: str, *, otlp_endpoint: str = "", exporter: SpanExporter | None = None) -> bool:
    """Install a tracer provider once per process. Returns True when tracing is on."""
    global _configured
    if _configured:
        return True
    if exporter is None:
        if not otlp_endpoint:
            return False
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

        exporter = OTLPSpanExporter(endpoint=otlp_endpoint, insecure=otlp_endpoint.startswith("http://"))
    provider = TracerProvider(resource=Resource.create({"service.name": service_name}))
    provider.add_span_processor(BatchSpanProcessor(exporter, schedule_delay_millis=500))
    trace.set_tracer_provider(provider)
    _configured = True
    return True


def tracing_enabled() -> bool:
    return _configured


def temporal_interceptors() -> list[Any]:
    """Client (and so worker) interceptors: the Temporal tracing interceptor when tracing is on."""
    if not _configured:
        return []
    from temporalio.contrib.opentelemetry import TracingInterceptor

    return [TracingInterceptor()]


def instrument_fastapi(app: Any) -> None:
    if _configured:
        from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

        FastAPIInstrumentor.instrument_app(app, excluded_urls="health,ready,metrics")
