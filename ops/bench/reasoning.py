"""``safety bench reasoning``: reasoning-stage latency with a slow, failing LLM provider.

Runs the real ModerateEventWorkflow (its real retry policy and deadlines) and the real reasoning
activity (the openai client) on an embedded Temporal dev server, against the OpenAI-compatible test
server set to the given latency and error rate. The other stages are stand-ins that return at once,
so the figure is the reasoning stage alone: from scheduling the LLM call to its verdict, retries and
back-off included (the workflow's ``stage_ms["reason"]``).
"""

import asyncio
import json
import logging
from typing import Annotated, Any

import typer


def _queues() -> tuple[str, ...]:
    """The queues this bench serves (no screening worker: the stand-ins screen on the moderation queue)."""
    from workflows import contract

    return (contract.MODERATION_QUEUE, contract.CONTEXT_QUEUE, contract.REASONING_QUEUE, contract.ACTIONS_QUEUE)


def _fake_llm_server() -> Any:
    """The OpenAI-compatible test double (``tests/doubles/fake_llm.py``), which this bench drives at a set
    latency and error rate. It is a test double, so it is not installed with the package: the bench runs
    from a source checkout, where it is found beside the code."""
    try:
        from tests.doubles.fake_llm import FakeLLMServer
    except ModuleNotFoundError:
        import sys
        from pathlib import Path

        checkout = Path(__file__).resolve().parents[2]
        if not (checkout / "tests" / "doubles" / "fake_llm.py").is_file():
            raise typer.BadParameter("safety bench reasoning runs the fake LLM of the test suite "
                                     "(tests/doubles/fake_llm.py): run it from a source checkout") from None
        sys.path.insert(0, str(checkout))
        from tests.doubles.fake_llm import FakeLLMServer
    return FakeLLMServer


def _stand_ins(records: list[Any]) -> list[Any]:
    from temporalio import activity

    from domain.models import (
        ActInput,
        ActResult,
        CaseContext,
        CaseRecord,
        ContextInput,
        HarmCategory,
        ScreenInput,
        ScreenResult,
    )
    from domain.sessions import StrikeInput, StrikeResult, TargetIncidentInput, TargetState
    from workflows import contract

    @activity.defn(name=contract.SCREEN_EVENT)
    async def screen(inp: ScreenInput) -> ScreenResult:
        return ScreenResult(risk_score=0.8, top_category=HarmCategory.TARGETED_INSULT, model_version="bench")

    @activity.defn(name=contract.RETRIEVE_CONTEXT)
    async def context(inp: ContextInput) -> CaseContext:
        return CaseContext()

    @activity.defn(name=contract.EXECUTE_ACTIONS)
    async def act(inp: ActInput) -> ActResult:
        return ActResult()

    @activity.defn(name=contract.RECORD_CASE)
    async def record(rec: CaseRecord) -> bool:
        records.append(rec)
        return True

    @activity.defn(name=contract.APPLY_STRIKE)
    async def strike(inp: StrikeInput) -> StrikeResult:
        return StrikeResult(case_id=inp.case_id, level=1, ladder_size=5)

    @activity.defn(name=contract.RECORD_TARGET_INCIDENT)
    async def incident(inp: TargetIncidentInput) -> TargetState:
        return TargetState(platform=inp.platform, target_id=inp.target_id)

    return [screen, context, act, record, strike, incident]


async def _connect(address: str, attempts: int = 30) -> Any:
    """Connect once the dev server's frontend is healthy: its port opens before it serves (under load the
    first calls answer "Frontend is not healthy yet")."""
    from temporalio.client import Client
    from temporalio.contrib.pydantic import pydantic_data_converter

    for attempt in range(attempts):
        try:
            return await Client.connect(address, data_converter=pydantic_data_converter)
        except RuntimeError:
            if attempt == attempts - 1:
                raise
            await asyncio.sleep(1)
    raise AssertionError("unreachable")


async def run_reasoning_bench(*, cases: int, concurrency: int, latency_s: float, error_rate: float,
                              seed: int = 7, hang: bool = False) -> dict[str, Any]:
    import tempfile
    import time
    import uuid
    from datetime import UTC, datetime
    from pathlib import Path

    from temporalio.worker import Worker

    from activities.reasoning import ReasoningActivities
    from core.settings import LLMSettings
    from domain.models import ChatEvent, ModerateEventInput, PolicyConfig
    from ops.embedded import TemporalDevServer, free_port
    from ops.replay import percentile
    FakeLLMServer = _fake_llm_server()
    from workflows import contract
    from workflows.moderate import ModerateEventWorkflow

    # Injected provider errors are expected here; their retry tracebacks would drown the report.
    logging.getLogger("temporalio.activity").setLevel(logging.ERROR)
    logging.getLogger("activities.reasoning").setLevel(logging.ERROR)
    records: list[Any] = []
    data_dir = Path(tempfile.mkdtemp(prefix="safety-bench-reasoning-"))
    server = TemporalDevServer(data_dir, port=free_port(), ui_port=free_port(), metrics_port=free_port(),
                               headless=True)
    server.start()
    llm = FakeLLMServer(latency_s=latency_s, error_rate=error_rate, error_status=500, seed=seed, hang=hang).start()
    try:
        client = await _connect(f"127.0.0.1:{server.port}")
        reasoning = ReasoningActivities(LLMSettings(base_url=llm.base_url, api_key="bench", attempt_timeout_s=8))
        stand_ins = _stand_ins(records)
        workers = [Worker(client, task_queue=q,
                          workflows=[ModerateEventWorkflow] if q == contract.MODERATION_QUEUE else [],
                          activities=[reasoning.reason_about_case] if q == contract.REASONING_QUEUE else stand_ins,
                          max_concurrent_activities=concurrency * 2) for q in _queues()]
        policy = PolicyConfig()
        sem = asyncio.Semaphore(concurrency)

        async def one(i: int) -> None:
            async with sem:
                ev = ChatEvent(event_id=str(uuid.uuid4()), platform="bench", channel_id="c", author_id=f"a{i}",
                               content=f"you are worthless #{i}", received_at=datetime.now(UTC))
                await client.execute_workflow(ModerateEventWorkflow.run, ModerateEventInput(event=ev, policy=policy),
                                              id=contract.event_workflow_id(ev.event_id),
                                              task_queue=contract.MODERATION_QUEUE)

        started = time.perf_counter()
        for w in workers:
            await w.__aenter__()
        try:
            await asyncio.gather(*(one(i) for i in range(cases)))
        finally:
            for w in workers:
                await w.__aexit__(None, None, None)
        wall = time.perf_counter() - started
        stats = llm.stats()
    finally:
        llm.stop()
        server.stop()
    reason_ms = [r.stage_ms["reason"] for r in records if "reason" in r.stage_ms]
    statuses: dict[str, int] = {}
    for r in records:
        key = r.reason.status.value if r.reason else "none"
        statuses[key] = statuses.get(key, 0) + 1
    return {
        "cases": len(records), "provider_latency_s": latency_s, "provider_error_rate": error_rate,
        "provider_hangs": hang, "deadline_s": PolicyConfig().reasoning_deadline_s,
        "reason_p50_ms": round(percentile(reason_ms, 50)), "reason_p95_ms": round(percentile(reason_ms, 95)),
        "reason_p99_ms": round(percentile(reason_ms, 99)), "reason_max_ms": round(max(reason_ms, default=0)),
        "outcomes": statuses, "llm_calls": stats["outcomes"], "wall_s": round(wall, 1),
    }


def reasoning(
    cases: Annotated[int, typer.Option(min=1, help="Cases to run.")] = 200,
    concurrency: Annotated[int, typer.Option(min=1, help="Cases in flight.")] = 20,
    latency: Annotated[float, typer.Option(help="Provider latency per call, seconds.")] = 1.0,
    error_rate: Annotated[float, typer.Option(min=0, max=1, help="Share of calls answered 500.")] = 0.1,
    hang: Annotated[bool, typer.Option(help="The provider never answers: measures time to human review.")] = False,
    json_out: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Reasoning-stage latency (retries included) with a slow, failing provider; target p95 <= 5 s at
    1 s latency and 10% 5xx."""
    result = asyncio.run(run_reasoning_bench(cases=cases, concurrency=concurrency, latency_s=latency,
                                             error_rate=error_rate, hang=hang))
    if json_out:
        typer.echo(json.dumps(result))
        return
    for key, value in result.items():
        typer.echo(f"{key:>20}: {value}")
