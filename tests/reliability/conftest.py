"""Fault-injection harness: one ``safety up`` stack (subprocess, free ports, fake LLM) for the whole suite,
an open-loop event driver that retries 503s with the same message_id, and helpers that break and
repair each dependency the way production breaks (SIGKILL, SIGTERM, SIGINT, a dead endpoint).

Sizes: ``N_EVENTS`` per scenario (1,000; ``SAFETY_FAULT_EVENTS`` overrides it for quick runs).
"""

from __future__ import annotations

import asyncio
import os
import random
import shutil
import signal
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import psutil
import pytest

from ops.embedded import EmbeddedPostgres, EmbeddedRedis, ManagedProcess, TemporalDevServer, port_open
from tests.doubles.fake_llm import FakeLLMServer
from tests.harness import StackProcess
from workflows.contract import TASK_QUEUES

N_EVENTS = int(os.environ.get("SAFETY_FAULT_EVENTS", "1000"))
CLEAN_RATIO = 0.9
# Reasoning deadline the stack runs with (the policy default, set explicitly so the test knows it).
REASONING_DEADLINE_S = 30.0

CLEAN_TEXTS = [
    "good game everyone, see you tomorrow", "lol nice one", "thanks for the stream, had a great time!",
    "brb getting food", "what time does the tournament start tomorrow?", "welcome to the channel!",
    "anyone up for a match later tonight?", "I think the sniper nerf was overdue honestly",
]
ABUSIVE_TEXTS = [
    "you are a worthless idiot, nobody wants you here, go kill yourself",
    "you are such an idiot, nobody wants you here",
    "shut up you stupid loser, everyone hates you",
    "people like you are pathetic, get out of this server you moron",
]


class FaultStack(StackProcess):
    """``safety up`` on a fresh data dir and free ports; plus handles to break and restart its services."""

    def __init__(self, data_dir: Path, llm_url: str) -> None:
        super().__init__(data_dir, llm_url,
                         extra_env={"SAFETY_POLICY__REASONING_DEADLINE_S": str(REASONING_DEADLINE_S)})
        # Services we restarted ourselves (the supervisor restarts only the API and workers).
        self.restarted: dict[str, ManagedProcess] = {}

    def start(self, timeout: float = 240) -> None:
        super().start(timeout)

    def stop(self, grace: float = 120) -> int | None:
        code = super().stop(grace)
        for svc in reversed(list(self.restarted.values())):
            svc.stop()
        return code

    # -- finding processes ---------------------------------------------------------------------------------

    def _find(self, match: Callable[[list[str]], bool]) -> psutil.Process | None:
        for p in psutil.process_iter(["cmdline"]):
            cmd = p.info["cmdline"] or []
            if cmd and match(cmd):
                return p
        return None

    def temporal_process(self) -> psutil.Process | None:
        return self._find(lambda c: "server" in c and "start-dev" in c and str(self.data_dir) in " ".join(c))

    def postgres_process(self) -> psutil.Process | None:
        pgdata = str(self.data_dir / "postgres")
        return self._find(lambda c: Path(c[0]).name == "postgres" and any(
            a == "-D" and b == pgdata for a, b in zip(c, c[1:], strict=False)))

    def redis_process(self) -> psutil.Process | None:
        # redis-server rewrites its title to "redis-server 127.0.0.1:<port>": match the port.
        port = f":{self.ports['redis']}"
        return self._find(lambda c: "redis-server" in c[0] and any(a.endswith(port) or a == port[1:] for a in
                                                                    " ".join(c).split()))

    # -- faults ---------------------------------------------------------------------------------------------
    def kill_random_worker(self, queue: str, rng: random.Random) -> int:
        victims = self.workers(queue)
        assert victims, f"no worker for queue {queue}"
        victim = rng.choice(victims)
        victim.send_signal(signal.SIGKILL)
        return victim.pid

    @staticmethod
    def _gone(proc: psutil.Process) -> bool:
        # Services are children of `safety up`, which does not reap them until it stops: an exited one is a
        # zombie for a while, and psutil's wait() on a non-child would wait for it forever.
        try:
            return not proc.is_running() or proc.status() == psutil.STATUS_ZOMBIE
        except psutil.NoSuchProcess:
            return True

    @classmethod
    def _stop_process(cls, proc: psutil.Process, sig: int, timeout: float = 60) -> None:
        proc.send_signal(sig)
        deadline = time.monotonic() + timeout
        while not cls._gone(proc):
            if time.monotonic() > deadline:
                proc.kill()
                deadline = time.monotonic() + 10
            time.sleep(0.1)

    @staticmethod
    def _wait_ports_free(*ports: int, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not any(port_open(p) for p in ports):
                return
            time.sleep(0.2)
        raise AssertionError(f"ports {ports} still taken {timeout}s after the process exited")

    def stop_temporal(self) -> None:
        proc = self.temporal_process()
        assert proc is not None, "Temporal dev server process not found"
        self._stop_process(proc, signal.SIGTERM)
        self._wait_ports_free(self.ports["temporal"], self.ports["tmetrics"], self.ports["ui"])

    def start_temporal(self) -> None:
        svc = TemporalDevServer(self.data_dir, port=self.ports["temporal"], ui_port=self.ports["ui"],
                                metrics_port=self.ports["tmetrics"])
        svc.start(timeout=90)
        self.restarted["temporal"] = svc

    def stop_postgres(self) -> None:
        proc = self.postgres_process()
        assert proc is not None, "postgres process not found"
        self._stop_process(proc, signal.SIGINT)  # fast shutdown
        self._wait_ports_free(self.ports["pg"])

    def start_postgres(self) -> None:
        svc = EmbeddedPostgres(self.data_dir, port=self.ports["pg"])
        svc.start(timeout=90)
        self.restarted["postgres"] = svc

    def kill_redis(self) -> None:
        proc = self.redis_process()
        assert proc is not None, "redis-server process not found"
        self._stop_process(proc, signal.SIGKILL)
        self._wait_ports_free(self.ports["redis"])

    def start_redis(self) -> None:
        svc = EmbeddedRedis(self.data_dir, port=self.ports["redis"])
        svc.start(timeout=60)
        self.restarted["redis"] = svc

    def repair(self) -> list[str]:
        """Restart any service a failed scenario left down, so the next scenario starts from a whole stack."""
        fixed = []
        services = (("temporal", self.temporal_process, self.ports["temporal"], self.start_temporal),
                    ("postgres", self.postgres_process, self.ports["pg"], self.start_postgres),
                    ("redis", self.redis_process, self.ports["redis"], self.start_redis))
        for name, find, port, start in services:
            proc = find()
            if (proc is None or self._gone(proc)) and not port_open(port):
                start()
                fixed.append(name)
        return fixed


# -- the driver ---------------------------------------------------------------------------------------------
@dataclass
class Delivery:
    index: int
    kind: str
    body: dict[str, Any]
    sent_at: float = 0.0  # wall clock of the first attempt
    event_id: str | None = None
    accepted_at: float | None = None
    attempts: int = 0
    statuses: list[int] = field(default_factory=list)
    duplicate_flags: list[bool] = field(default_factory=list)
    event_ids: list[str] = field(default_factory=list)


@dataclass
class RunResult:
    label: str
    deliveries: list[Delivery]
    started: float
    send_s: float
    fault_log: list[tuple[float, str]]

    @property
    def accepted(self) -> list[Delivery]:
        return [d for d in self.deliveries if d.event_id is not None]

    @property
    def status_counts(self) -> Counter[int]:
        return Counter(s for d in self.deliveries for s in d.statuses)


def make_body(kind: str, i: int, run_id: str, rng: random.Random) -> dict[str, Any]:
    return {"event_type": "message", "platform": "discord", "channel_id": f"fault-{i % 5}",
            "user_id": f"target-{rng.randrange(40)}", "author_id": f"author-{rng.randrange(150)}",
            "content": rng.choice(CLEAN_TEXTS if kind == "clean" else ABUSIVE_TEXTS),
            "message_id": f"{run_id}-{i}",
            "metadata": {"timestamp": "2026-11-29T12:00:00Z", "user_reputation": 0.8, "author_reputation": 0.3,
                         "channel_history_count": 150}}


async def _deliver(http: httpx.AsyncClient, d: Delivery, give_up_s: float) -> None:
    """POST until 202 (retrying 503/429 and transport errors with the same message_id, as a platform does)."""
    deadline = time.monotonic() + give_up_s
    delay = 0.5
    while time.monotonic() < deadline:
        d.attempts += 1
        try:
            r = await http.post("/v1/events/ingest", json=d.body)
        except httpx.HTTPError:
            d.statuses.append(0)
            await asyncio.sleep(delay)
            delay = min(delay * 1.5, 3.0)
            continue
        d.statuses.append(r.status_code)
        if r.status_code == 202:
            data = r.json()
            d.event_id, d.accepted_at = data["event_id"], time.time()
            d.event_ids.append(data["event_id"])
            d.duplicate_flags.append(bool(data.get("duplicate")))
            return
        if r.status_code not in (429, 503):
            return  # a client error: not accepted, never retried
        await asyncio.sleep(min(float(r.headers.get("retry-after", "1") or 1), 3.0))


Fault = tuple[float, str, Callable[[], Any]]


async def drive(stack: FaultStack, label: str, *, n: int = N_EVENTS, spread_s: float, faults: list[Fault] = (),
                deliveries: int = 1, seed: int = 0, concurrency: int = 48, give_up_s: float = 300) -> RunResult:
    """Send ``n`` mixed events evenly over ``spread_s`` seconds (open loop, at most ``concurrency`` in flight),
    each ``deliveries`` times; run each fault (offset s, name, blocking callable) in a thread at its offset."""
    rng = random.Random(seed)
    run_id = f"{label}-{uuid.uuid4().hex[:8]}"
    kinds = ["clean"] * round(n * CLEAN_RATIO) + ["risky"] * (n - round(n * CLEAN_RATIO))
    rng.shuffle(kinds)
    items = [Delivery(i, k, make_body(k, i, run_id, rng)) for i, k in enumerate(kinds)]
    sem = asyncio.Semaphore(concurrency)
    fault_log: list[tuple[float, str]] = []
    start_mono, started = time.monotonic(), time.time()

    async def run_fault(offset: float, name: str, fn: Callable[[], Any]) -> None:
        await asyncio.sleep(max(0.0, start_mono + offset - time.monotonic()))
        fault_log.append((round(time.monotonic() - start_mono, 1), f"{name}: start"))
        await asyncio.to_thread(fn)
        fault_log.append((round(time.monotonic() - start_mono, 1), f"{name}: done"))

    async def one(d: Delivery) -> None:
        async with sem:
            d.sent_at = time.time()
            if deliveries == 1:
                await _deliver(http, d, give_up_s)
                return
            # Redelivery: half concurrently (races the dedup), half one after the other.
            if d.index % 2 == 0:
                await asyncio.gather(*(_deliver(http, d, give_up_s) for _ in range(deliveries)))
            else:
                for _ in range(deliveries):
                    await _deliver(http, d, give_up_s)

    limits = httpx.Limits(max_connections=concurrency * 2, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=stack.base_url, headers={"X-API-Key": stack.key}, timeout=30,
                                 limits=limits) as http:
        fault_tasks = [asyncio.create_task(run_fault(*f)) for f in faults]

        async def send_all() -> float:
            tasks = []
            for i, d in enumerate(items):
                await asyncio.sleep(max(0.0, start_mono + i * spread_s / max(n, 1) - time.monotonic()))
                tasks.append(asyncio.create_task(one(d)))
            try:
                await asyncio.gather(*tasks)
            finally:
                for t in tasks:
                    t.cancel()
            return time.monotonic() - start_mono

        sender = asyncio.create_task(send_all())
        pending = {sender, *fault_tasks}
        while pending:  # a failed fault (could not stop or restart a service) ends the run at once, loudly
            done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_EXCEPTION)
            failed = [t for t in done if t.exception() is not None]
            if failed:
                for t in pending:
                    t.cancel()
                raise failed[0].exception()  # type: ignore[misc]
        send_s = sender.result()
    return RunResult(label, items, started, send_s, fault_log)


async def wait_recorded(stack: FaultStack, ids: list[str], timeout: float = 600) -> dict[str, asyncpg.Record]:
    """Wait until every id has a row in ``cases`` (or the timeout); returns the rows found, by case id."""
    deadline = time.monotonic() + timeout
    rows: dict[str, asyncpg.Record] = {}
    while True:
        try:
            conn = await asyncpg.connect(stack.db_url, timeout=5)
            try:
                found = await conn.fetch("SELECT case_id, path, decision, received_at, completed_at FROM cases "
                                         "WHERE case_id = ANY($1)", ids)
            finally:
                await conn.close()
            rows = {r["case_id"]: r for r in found}
        except (TimeoutError, OSError, asyncpg.PostgresError):
            pass
        if len(rows) >= len(set(ids)) or time.monotonic() > deadline:
            return rows
        await asyncio.sleep(2)


async def ledger_duplicates(stack: FaultStack, ids: list[str]) -> tuple[int, int]:
    """(rows in ``actions`` for these cases, (case_id, action) pairs with more than one row)."""
    conn = await asyncpg.connect(stack.db_url)
    try:
        total = await conn.fetchval("SELECT count(*) FROM actions WHERE case_id = ANY($1)", ids)
        dupes = await conn.fetchval("SELECT count(*) FROM (SELECT case_id, action FROM actions WHERE case_id = ANY($1)"
                                    " GROUP BY 1, 2 HAVING count(*) > 1) d", ids)
        case_dupes = await conn.fetchval("SELECT count(*) FROM (SELECT case_id FROM cases WHERE case_id = ANY($1)"
                                         " GROUP BY 1 HAVING count(*) > 1) d", ids)
    finally:
        await conn.close()
    assert case_dupes == 0
    return int(total), int(dupes)


def _pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    return s[min(len(s) - 1, max(0, round(q / 100 * (len(s) - 1))))]


def summarize(result: RunResult, rows: dict[str, asyncpg.Record], *, actions: int, dup_actions: int,
              extra: dict[str, Any] | None = None) -> dict[str, Any]:
    accepted = result.accepted
    lat = [(rows[d.event_id]["completed_at"].timestamp() - d.sent_at) for d in accepted if d.event_id in rows]
    decisions = Counter(r["decision"] for r in rows.values())
    return {
        "scenario": result.label, "events": len(result.deliveries), "accepted": len(accepted),
        "not_accepted": len(result.deliveries) - len(accepted),
        "lost": len({d.event_id for d in accepted} - set(rows)), "recorded": len(rows),
        "actions": actions, "duplicate_actions": dup_actions,
        "http": dict(sorted(result.status_counts.items())),
        "retried": sum(1 for d in accepted if any(s != 202 for s in d.statuses)),
        "decisions": dict(decisions), "send_s": round(result.send_s, 1),
        "outcome_p50_s": round(_pct(lat, 50), 2), "outcome_p99_s": round(_pct(lat, 99), 2),
        "faults": result.fault_log, **(extra or {}),
    }


def report(summary: dict[str, Any], capsys: pytest.CaptureFixture[str] | None = None) -> None:
    line = "  ".join(f"{k}={v}" for k, v in summary.items())
    if capsys is not None:
        with capsys.disabled():
            print(f"\n[fault summary] {line}", flush=True)
    else:
        print(f"\n[fault summary] {line}", flush=True)


async def ready(stack: FaultStack, timeout: float = 120) -> None:
    """Wait until the API answers /ready and every queue has a worker (after the previous scenario's faults)."""
    fixed = await asyncio.to_thread(stack.repair)
    if fixed:
        print(f"\n[fault harness] restarted {fixed} left down by an earlier scenario", flush=True)
    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient(base_url=stack.base_url, timeout=5) as http:
        while time.monotonic() < deadline:
            try:
                if (await http.get("/ready")).status_code == 200 and all(stack.workers(q) for q in TASK_QUEUES):
                    return
            except httpx.HTTPError:
                pass
            await asyncio.sleep(1)
    raise AssertionError("stack not ready after the previous scenario:\n" + stack.log_tail())


@pytest.fixture(scope="session")
def fault_llm() -> Iterator[FakeLLMServer]:
    server = FakeLLMServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def fault_stack(fault_llm: FakeLLMServer) -> Iterator[FaultStack]:
    # Not under pytest's basetemp: every pytest session that starts (another suite running in parallel)
    # chmods /tmp/pytest-of-<user> to 0700, and PostgreSQL, which runs as its own user when we are root,
    # then PANICs on its next checkpoint ("could not open pg_control: Permission denied").
    data_dir = Path(tempfile.mkdtemp(prefix="safety-faults-"))
    data_dir.chmod(0o755)
    s = FaultStack(data_dir, fault_llm.base_url)
    try:
        s.start()
        yield s
    finally:
        s.stop()
        shutil.rmtree(data_dir, ignore_errors=True)


AsyncFn = Callable[[], Awaitable[None]]
