"""One trace from ingest to the last activity: the Temporal tracing interceptor carries the context."""

from __future__ import annotations

from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter

from core.settings import Settings
from core.telemetry import setup_tracing, temporal_interceptors
from tests.conftest import WORKFLOW_TEST_NAMESPACE
from tests.workflows.test_moderate_workflow import Fakes, _run, _verdict


async def test_ingest_workflow_and_activities_share_one_trace(settings: Settings) -> None:
    exporter = InMemorySpanExporter()
    assert setup_tracing("safety-test", exporter=exporter)
    client = await Client.connect(settings.temporal_address, namespace=WORKFLOW_TEST_NAMESPACE,
                                  data_converter=pydantic_data_converter, interceptors=temporal_interceptors())
    fakes = Fakes()
    fakes.reason = lambda _: _verdict()
    with trace.get_tracer("test").start_as_current_span("POST /v1/events/ingest") as root:
        await _run(client, fakes, "score=0.8 you are worthless")
    provider = trace.get_tracer_provider()
    assert isinstance(provider, TracerProvider)
    provider.force_flush()
    spans = {s.name: s for s in exporter.get_finished_spans()}
    for name in ("StartWorkflow:ModerateEventWorkflow", "RunWorkflow:ModerateEventWorkflow",
                 "RunActivity:retrieve_context", "RunActivity:reason_about_case", "RunActivity:execute_actions"):
        assert name in spans, f"missing span {name}; have {sorted(spans)}"
        assert spans[name].context.trace_id == root.get_span_context().trace_id, name
