"""Temporal dev-server CPU per workflow: the floor, and the clean path's shape, in one run.

Run: .venv/bin/python tests/bench/temporal_floor.py
A minimal workflow (one local activity) against the clean path's shape (two local activities, a
search-attribute upsert, search attributes at start), 300 workflows each, started as the API starts
them (no result wait). See docs/performance.md.
"""
import asyncio, sys, tempfile, time, uuid
from datetime import timedelta
from pathlib import Path
import psutil
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from temporalio import activity, workflow
from temporalio.client import Client
from temporalio.common import SearchAttributeKey, SearchAttributePair, TypedSearchAttributes
from temporalio.worker import Worker
from core.services import TemporalDevServer, free_port

RISK = SearchAttributeKey.for_float("RiskScore"); DEC = SearchAttributeKey.for_keyword("Decision")
CASE = SearchAttributeKey.for_keyword("CaseId"); PLAT = SearchAttributeKey.for_keyword("Platform")

DONE = {"n": 0}

@activity.defn(name="noop")
async def noop(x: str) -> str:
    DONE["n"] += 1
    return x

@workflow.defn(name="V")
class V:
    @workflow.run
    async def run(self, mode: str) -> str:
        n_la = 2 if "2la" in mode else 1
        for _ in range(n_la):
            await workflow.execute_local_activity("noop", "x", start_to_close_timeout=timedelta(seconds=5))
        if "upsert" in mode:
            workflow.upsert_search_attributes([RISK.value_set(0.1), DEC.value_set("allow")])
        return mode

async def main():
    d = Path(tempfile.mkdtemp()); srv = TemporalDevServer(d, port=free_port(), ui_port=free_port(), metrics_port=free_port(), headless=True); srv.start()
    proc = psutil.Process(srv.proc.pid)
    c = await Client.connect(f"127.0.0.1:{srv.port}")
    async with Worker(c, task_queue="q", workflows=[V], activities=[noop]):
        for mode in ["1la", "2la+upsert+startsa", "1la", "2la+upsert+startsa"]:
            n = 300; sem = asyncio.Semaphore(20)
            async def one(i):
                async with sem:
                    sa = TypedSearchAttributes([SearchAttributePair(CASE, str(i)), SearchAttributePair(PLAT, "x")]) if "startsa" in mode else None
                    await c.start_workflow("V", mode, id=str(uuid.uuid4()), task_queue="q", search_attributes=sa)
            t0 = proc.cpu_times(); w0 = time.time(); DONE["n"] = 0
            await asyncio.gather(*(one(i) for i in range(n)))
            while DONE["n"] < n * (2 if "2la" in mode else 1):
                await asyncio.sleep(0.05)
            await asyncio.sleep(1.5)
            t1 = proc.cpu_times()
            print(f"{mode:24s} {(t1.user+t1.system-t0.user-t0.system)*1000/n:6.1f} ms server CPU/workflow, start only  ({n/(time.time()-w0):.0f} wf/s)", flush=True)
    srv.stop()
if __name__ == "__main__":
    asyncio.run(main())
