"""Temporal dev-server CPU per workflow for the REAL clean path, the naive chain, and a variant, in one run.

Run: .venv/bin/python tests/bench/temporal_clean_path.py [--rate 20] [--n 300] [--rounds 2]

Unlike ``temporal_floor.py`` (synthetic shapes, started in bursts), this starts the production
``ModerateEventWorkflow`` exactly as the API does (search attributes, static summary and details, the
real input and policy payload) on a fresh embedded server, at an open-loop rate. The two local activities
are stand-ins that return a clean screen result and record nothing, so only the server's share is
measured, not the model or PostgreSQL. Side by side, per round:

* ``clean``: the clean path as shipped;
* ``clean-no-upsert``: the same without the final search-attribute upsert (what that upsert costs);
* ``naive``: ``NaiveChainWorkflow``, four normal activities (the issue's comparison point).

The server inherits this process's environment, so Go runtime settings can be compared, e.g.
``GOMAXPROCS=1 .venv/bin/python tests/bench/temporal_clean_path.py``. See docs/performance.md.
"""

import argparse
import asyncio
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import psutil
from temporalio import activity, workflow
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import UnsandboxedWorkflowRunner, Worker

from domain.models import (
    ActionOutcome,
    CaseOutcome,
    CaseRecord,
    ChatEvent,
    ModerateEventInput,
    ScreenInput,
    ScreenResult,
)
from ops.embedded import TemporalDevServer, free_port
from workflows import contract
from workflows.contract import MODERATE_EVENT_WORKFLOW, NAIVE_QUEUE, NOOP_ACTIVITY
from workflows.moderate import ModerateEventWorkflow, search_attributes_for_start
from workflows.naive import NAIVE_STEPS, NaiveChainWorkflow

QUEUE = "bench-clean-path"


class Finished:
    count = 0
    expected = 0
    event = asyncio.Event()

    @classmethod
    def reset(cls, expected: int) -> None:
        cls.count, cls.expected, cls.event = 0, expected, asyncio.Event()

    @classmethod
    def one(cls) -> None:
        cls.count += 1
        if cls.count >= cls.expected:
            cls.event.set()


@activity.defn(name=contract.SCREEN_EVENT)
async def screen_clean(arg: ScreenInput) -> ScreenResult:
    return ScreenResult(risk_score=0.02, category_scores={"profanity": 0.01, "targeted_insult": 0.01,
                                                          "identity_hate": 0.0, "threat": 0.0},
                        model_version="bench", duration_ms=2.0)


@activity.defn(name=contract.RECORD_CASE)
async def record_nothing(record: CaseRecord) -> None:
    Finished.one()


@activity.defn(name=NOOP_ACTIVITY)
async def counted_noop(step: int) -> int:
    Finished.one()
    return step


@workflow.defn(name="ModerateEventNoUpsert")
class ModerateEventNoUpsert(ModerateEventWorkflow):
    """The shipped workflow minus the final upsert of RiskScore/Category/Decision/NeedsReview."""

    @workflow.init
    def __init__(self, inp: ModerateEventInput) -> None:
        super().__init__(inp)

    @workflow.run
    async def run(self, inp: ModerateEventInput) -> CaseOutcome:
        return await super().run(inp)

    def _finish(self, record: CaseRecord, outcomes: list[ActionOutcome]) -> CaseOutcome:
        return self._outcome(record, outcomes)


def clean_input() -> ModerateEventInput:
    ev = ChatEvent(event_id=uuid.uuid4().hex, event_type="message", platform="discord", channel_id="bench-1",
                   target_id="bench-target-3", author_id="bench-author-5", content="see you all at the raid tonight",
                   message_id=f"m-{uuid.uuid4().hex[:8]}", received_at=datetime.now(UTC))
    return ModerateEventInput(event=ev)


async def start_one(client: Client, variant: str) -> None:
    if variant == "naive":
        await client.start_workflow(contract.NAIVE_CHAIN_WORKFLOW, id=f"naive-{uuid.uuid4()}", task_queue=NAIVE_QUEUE)
        return
    inp = clean_input()
    ev = inp.event
    await client.start_workflow(
        MODERATE_EVENT_WORKFLOW if variant == "clean" else "ModerateEventNoUpsert", inp, id=f"case-{ev.event_id}",
        task_queue=QUEUE, search_attributes=search_attributes_for_start(inp),
        static_summary=f"{ev.platform} #{ev.channel_id}: {ev.author_id} -> {ev.target_id}",
        static_details=f"case {ev.event_id}, {ev.event_type}, message {ev.message_id}",
    )


async def measure(client: Client, server: psutil.Process, variant: str, rate: float, n: int) -> tuple[float, float]:
    """Server CPU ms per workflow (user + system, until every workflow finished) and workflows/s."""
    Finished.reset(n * NAIVE_STEPS if variant == "naive" else n)
    before, started = server.cpu_times(), time.monotonic()
    tasks = []
    for i in range(n):
        tasks.append(asyncio.create_task(start_one(client, variant)))
        await asyncio.sleep(max(0.0, started + (i + 1) / rate - time.monotonic()))
    await asyncio.gather(*tasks)
    await Finished.event.wait()
    elapsed = time.monotonic() - started
    await asyncio.sleep(1.0)  # the server finishes the last completions (close, visibility)
    after = server.cpu_times()
    return (after.user + after.system - before.user - before.system) * 1000 / n, n / elapsed


async def main(rate: float, n: int, rounds: int) -> None:
    server = TemporalDevServer(Path(tempfile.mkdtemp()), port=free_port(), ui_port=free_port(),
                               metrics_port=free_port(), headless=True)
    server.start()
    assert server.proc is not None
    proc = psutil.Process(server.proc.pid)
    try:
        client = await Client.connect(f"127.0.0.1:{server.port}", data_converter=pydantic_data_converter)
        runner = UnsandboxedWorkflowRunner()  # as deployed (SAFETY_WORKER__WORKFLOW_SANDBOX=false)
        async with (Worker(client, task_queue=QUEUE, workflows=[ModerateEventWorkflow, ModerateEventNoUpsert],
                           activities=[screen_clean, record_nothing], workflow_runner=runner),
                    Worker(client, task_queue=NAIVE_QUEUE, workflows=[NaiveChainWorkflow], activities=[counted_noop],
                           workflow_runner=runner)):
            await measure(client, proc, "clean", rate, 50)  # warm-up: caches, connections
            for r in range(rounds):
                for variant in ("clean", "clean-no-upsert", "naive"):
                    cpu_ms, wf_s = await measure(client, proc, variant, rate, n)
                    print(f"round {r + 1}  {variant:16s} {cpu_ms:6.1f} ms server CPU per workflow "
                          f"({wf_s:5.1f} workflows/s)", flush=True)
    finally:
        server.stop()


if __name__ == "__main__":  # the workflow sandbox re-imports this module: run nothing at import
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=float, default=20.0, help="workflows started per second (open loop)")
    parser.add_argument("--n", type=int, default=300, help="workflows per variant and round")
    parser.add_argument("--rounds", type=int, default=2, help="rounds of (clean, clean-no-upsert, naive)")
    args = parser.parse_args()
    asyncio.run(main(args.rate, args.n, args.rounds))
