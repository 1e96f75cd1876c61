"""Temporal dev-server CPU per workflow: the floor, and the clean path's shape, in one run.

Run: .venv/bin/python tests/bench/temporal_floor.py
A minimal workflow (one local activity) against the clean path's shape (two local activities, a
search-attribute upsert, search attributes at start), 300 workflows each, started as the API starts
them (no result wait). See docs/performance.md.
"""

import asyncio
import tempfile
import time
import uuid
from datetime import timedelta
from pathlib import Path

import psutil
from temporalio import activity, workflow
from temporalio.client import Client
from temporalio.common import SearchAttributeKey, SearchAttributePair, TypedSearchAttributes
from temporalio.worker import Worker

from ops.embedded import TemporalDevServer, free_port

RISK = SearchAttributeKey.for_float("RiskScore")
DECISION = SearchAttributeKey.for_keyword("Decision")
CASE = SearchAttributeKey.for_keyword("CaseId")
PLATFORM = SearchAttributeKey.for_keyword("Platform")
SHAPES = ("minimal", "clean-path", "minimal", "clean-path")
WORKFLOWS = 300
IN_FLIGHT = 20


class Done:
    local_activities = 0
    event = asyncio.Event()
    expected = 0


@activity.defn(name="noop")
async def noop(x: str) -> str:
    Done.local_activities += 1
    if Done.local_activities >= Done.expected:
        Done.event.set()
    return x


@workflow.defn(name="Shape")
class Shape:
    @workflow.run
    async def run(self, shape: str) -> str:
        for _ in range(2 if shape == "clean-path" else 1):
            await workflow.execute_local_activity("noop", "x", start_to_close_timeout=timedelta(seconds=5))
        if shape == "clean-path":
            workflow.upsert_search_attributes([RISK.value_set(0.1), DECISION.value_set("allow")])
        return shape


async def measure(client: Client, server: psutil.Process, shape: str) -> tuple[float, float]:
    sem = asyncio.Semaphore(IN_FLIGHT)

    async def start(i: int) -> None:
        attrs = (TypedSearchAttributes([SearchAttributePair(CASE, str(i)), SearchAttributePair(PLATFORM, "x")])
                 if shape == "clean-path" else None)
        async with sem:
            await client.start_workflow("Shape", shape, id=str(uuid.uuid4()), task_queue="q",
                                        search_attributes=attrs)

    Done.local_activities, Done.event = 0, asyncio.Event()
    Done.expected = WORKFLOWS * (2 if shape == "clean-path" else 1)
    before, started = server.cpu_times(), time.time()
    await asyncio.gather(*(start(i) for i in range(WORKFLOWS)))
    await Done.event.wait()
    elapsed = time.time() - started
    await asyncio.sleep(1.5)  # let the server finish the last completions
    after = server.cpu_times()
    cpu_ms = (after.user + after.system - before.user - before.system) * 1000 / WORKFLOWS
    return cpu_ms, WORKFLOWS / elapsed


async def main() -> None:
    server = TemporalDevServer(Path(tempfile.mkdtemp()), port=free_port(), ui_port=free_port(),
                               metrics_port=free_port(), headless=True)
    server.start()
    assert server.proc is not None
    try:
        client = await Client.connect(f"127.0.0.1:{server.port}")
        async with Worker(client, task_queue="q", workflows=[Shape], activities=[noop]):
            for shape in SHAPES:
                cpu_ms, rate = await measure(client, psutil.Process(server.proc.pid), shape)
                print(f"{shape:12s} {cpu_ms:6.1f} ms server CPU per workflow, {rate:5.1f} workflows/s", flush=True)
    finally:
        server.stop()


if __name__ == "__main__":  # the workflow sandbox re-imports this module: run nothing at import
    asyncio.run(main())
