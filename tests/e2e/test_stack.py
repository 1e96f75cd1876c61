"""End to end, as a user runs it: `safety up` on a fresh data directory, events over HTTP, outcomes.

Starts the real stack as a subprocess (Temporal dev server, PostgreSQL, Redis, Qdrant local mode, the
API and five worker processes) on free ports, with the reasoning worker pointed at the test LLM server.
"""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from typing import Any

import asyncpg
import httpx
import psutil
import pytest

from ops.embedded import find_binary
from tests.doubles.fake_llm import FakeLLMServer
from tests.harness import REPO, StackProcess

pytestmark = pytest.mark.e2e

CLEAN = "good game everyone, see you tomorrow"
ABUSIVE = "you are a worthless idiot, nobody wants you here, go kill yourself"


class Stack(StackProcess):
    pass


@pytest.fixture(scope="module")
def llm() -> Iterator[FakeLLMServer]:
    with FakeLLMServer() as server:
        yield server


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, llm: FakeLLMServer) -> Iterator[Stack]:
    s = Stack(tmp_path_factory.mktemp("e2e"), llm.base_url)
    s.start()
    yield s
    if s.proc and s.proc.poll() is None:
        s.stop()


def _event(content: str, **kw: Any) -> dict[str, Any]:
    return {"event_type": "message", "platform": "discord", "channel_id": "general", "user_id": "user_456",
            "author_id": kw.pop("author_id", "user_123"), "content": content,
            "message_id": kw.pop("message_id", uuid.uuid4().hex),
            "metadata": {"timestamp": "2026-11-29T12:00:00Z", "user_reputation": 0.8, "author_reputation": 0.3,
                         "channel_history_count": 150}, **kw}


async def _wait_outcome(http: httpx.AsyncClient, url: str, timeout: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        r = await http.get(url)
        assert r.status_code == 200, r.text
        if r.json()["status"] == "completed":
            return r.json()  # type: ignore[no-any-return]
        await asyncio.sleep(0.2)
    raise AssertionError(f"no outcome for {url} within {timeout}s: {r.json()}")


def _temporal_list(stack: Stack, query: str) -> list[dict[str, Any]]:
    out = subprocess.run([str(find_binary("temporal")), "workflow", "list", "--address",
                          f"127.0.0.1:{stack.ports['temporal']}", "--query", query, "--output", "json"],
                         capture_output=True, text=True, check=True, timeout=30)
    return json.loads(out.stdout or "[]")  # type: ignore[no-any-return]


async def test_clean_and_abusive_events_reach_their_outcomes(stack: Stack) -> None:
    async with httpx.AsyncClient(base_url=stack.base_url, headers={"X-API-Key": stack.key}, timeout=30) as http:
        assert (await http.get("/ready")).status_code == 200
        clean = (await http.post("/v1/events/ingest", json=_event(CLEAN))).json()
        abusive = (await http.post("/v1/events/ingest", json=_event(ABUSIVE))).json()
        c = await _wait_outcome(http, clean["processing_url"])
        a = await _wait_outcome(http, abusive["processing_url"])
    assert c["outcome"]["path"] == "clean" and c["outcome"]["decision"] == "allow"
    assert a["outcome"]["path"] == "full" and a["outcome"]["decision"] == "action", a
    assert {x["status"] for x in a["outcome"]["actions"]} == {"applied"}
    assert a["outcome"]["risk_score"] > c["outcome"]["risk_score"]
    # The case is findable by search attribute, as an operator would with the temporal CLI.
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        found = _temporal_list(stack, f"CaseId='{abusive['event_id']}' AND Decision='action'")
        if found:
            break
        await asyncio.sleep(0.5)  # visibility lags about a second behind the workflow
    assert found and found[0]["execution"]["workflowId"] == f"event-{abusive['event_id']}"
    # The chain the stack's processes wrote verifies with the dev key in its data dir, and the API and
    # workers hold their connections as the restricted app role, not the owner.
    verify = await asyncio.to_thread(
        subprocess.run, [sys.executable, "-m", "ops.cli.main", "audit", "verify"], env=stack.env, cwd=REPO,
        capture_output=True, text=True, timeout=60)
    assert verify.returncode == 0 and ": OK; head seq" in verify.stdout, verify.stdout + verify.stderr
    conn = await asyncpg.connect(f"postgresql://postgres@127.0.0.1:{stack.ports['pg']}/safety")
    try:
        users = {r["usename"] for r in await conn.fetch(
            "SELECT usename FROM pg_stat_activity WHERE datname = 'safety' AND pid <> pg_backend_pid()")}
    finally:
        await conn.close()
    assert users == {"safety_app"}, users


async def test_metrics_are_exported_by_the_api_and_every_worker(stack: Stack) -> None:
    async with httpx.AsyncClient() as http:
        api = (await http.get(f"{stack.base_url}/metrics/")).text
        assert "safety_ingest_requests_total" in api
        moderation = (await http.get(f"http://127.0.0.1:{stack.ports['workers']}/metrics")).text
        assert "safety_events_processed_total" in moderation and "safety_screening_duration_ms" in moderation
        for i in range(5):
            sdk = (await http.get(f"http://127.0.0.1:{stack.ports['sdk'] + i}/metrics")).text
            assert "temporal_" in sdk, f"no Temporal SDK metrics on worker {i}"


async def test_bench_e2e_measures_the_running_stack(stack: Stack) -> None:
    """`safety bench e2e` against a real stack: every event accounted for, both paths timed, the
    Temporal server's CPU found and measured, and the naive chain run on the same server."""
    from ops.bench.e2e import run_e2e

    report = await run_e2e(stack.base_url, stack.key, rate=5, duration_s=4, compare_duration_s=2, drain_s=60,
                           temporal_address=f"127.0.0.1:{stack.ports['temporal']}")
    assert report["sent"] == report["accepted"] == 20, report
    assert report["lost"] == report["unfinished_at_drain"] == report["not_accepted"] == 0, report
    assert report["clean_n"] + report["risky_n"] == 20 and report["clean_n"] >= 15, report
    assert report["clean_p50_ms"] is not None and 0 < report["clean_p50_ms"] < 30_000, report
    assert report["temporal_pid"] is not None, "the stack's Temporal server process was not found"
    assert report["temporal_cpu_ms_per_clean_event"] > 0, report
    assert report["naive_workflows"] == 10 and report["naive_failed"] == 0, report
    assert report["naive_temporal_cpu_ms_per_workflow"] > 0, report


async def test_killed_workers_lose_no_event(stack: Stack) -> None:
    events = [_event(ABUSIVE if i % 4 == 0 else f"{CLEAN} #{i}", author_id=f"kill-{i % 5}") for i in range(40)]
    async with httpx.AsyncClient(base_url=stack.base_url, headers={"X-API-Key": stack.key}, timeout=30) as http:
        accepted = []
        for i, ev in enumerate(events):
            r = await http.post("/v1/events/ingest", json=ev)
            assert r.status_code == 202
            accepted.append(r.json())
            if i == 10:
                victims = stack.workers()
                assert len(victims) == 5
                for p in victims:
                    p.send_signal(signal.SIGKILL)
        outcomes = [await _wait_outcome(http, a["processing_url"], timeout=120) for a in accepted]
    assert len(outcomes) == 40
    conn = await asyncpg.connect(stack.db_url)
    try:
        ids = [a["event_id"] for a in accepted]
        assert await conn.fetchval("SELECT count(*) FROM cases WHERE case_id = ANY($1)", ids) == 40
        dupes = await conn.fetchval("SELECT count(*) FROM (SELECT case_id, action FROM actions WHERE case_id = ANY($1)"
                                    " GROUP BY 1, 2 HAVING count(*) > 1) d", ids)
        assert dupes == 0
    finally:
        await conn.close()
    assert len(stack.workers()) == 5, "the supervisor restarts killed workers"


async def test_ctrl_c_stops_cleanly_and_a_second_start_keeps_the_data(stack: Stack) -> None:
    async with httpx.AsyncClient(base_url=stack.base_url, headers={"X-API-Key": stack.key}, timeout=30) as http:
        first = (await http.post("/v1/events/ingest", json=_event(CLEAN))).json()
        await _wait_outcome(http, first["processing_url"])
    assert stack.stop() == 0
    assert not [p for p in psutil.process_iter(["cmdline"]) if str(stack.data_dir) in " ".join(p.info["cmdline"] or [])]
    stack.start()
    async with httpx.AsyncClient(base_url=stack.base_url, headers={"X-API-Key": stack.key}, timeout=30) as http:
        again = await http.get(first["processing_url"])
        assert again.status_code == 200 and again.json()["status"] == "completed"
