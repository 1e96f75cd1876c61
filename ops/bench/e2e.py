"""``safety bench e2e``: drive the RUNNING stack at a fixed open-loop arrival rate and measure it.

Open loop: event *i* is sent at ``start + i / rate`` whether or not earlier requests have answered, so
a slow system shows up as latency and backlog, not as a politely lower offered rate.

Reports:

* ``events_per_s``: accepted (202) events per second of the send window; ingest latency p50/p95/p99.
* ingest-to-outcome p50/p95/p99 for clean and risky events: the outcome's ``completed_at`` (written by
  the workflow, host clock) minus the send time. Clean/risky is the path the case really took
  (outcome ``path`` clean/prescreen vs full), not what the sender meant to send. Statuses are read
  only once the send window has closed (then backing off from 0.5 s to 2 s per unfinished case): the
  latency comes from ``completed_at``, so reading later does not change it, and while the stack is
  measured it carries ingest alone, not the bench's status reads (at 35 events/s polling during the
  window cost the bench about 40% of a core and the API a status request per event). A read of an
  unfinished case costs the server a describe + query: counted in ``status_polls_pending``. Ingest
  latency is that of the request that got the 202.
* ``temporal_cpu_ms_per_event``: user+system CPU of the Temporal dev server process over the main
  phase (send + drain) divided by accepted events, minus the server's idle CPU measured just before.
* ``backlog_grew``: events whose outcome did not arrive within the run + drain period
  (``unfinished_at_drain``; ``lost`` counts those whose case the status URL does not know), or
  pending events (accepted - completed, computed from the timestamps) still rising over the second half
  of the send window.
* With ``naive_compare``: two short phases after the main one at the same rate: clean events only
  (``temporal_cpu_ms_per_clean_event``), then ``NaiveChainWorkflow`` (four normal no-op activities on
  queue ``bench-naive``, run by an in-process worker) -> ``naive_temporal_cpu_ms_per_workflow``;
  ``naive_ratio`` = clean-path CPU / naive CPU (below 1 means the clean path is cheaper than the naive
  chain).

The numbers are only meaningful on a quiet machine: other processes steal CPU from the server.
"""

from __future__ import annotations

import asyncio
import math
import random
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer

CLEAN_MESSAGES = [
    "gg everyone, see you tomorrow",
    "lol nice one",
    "thanks for the stream, had a great time!",
    "brb getting food",
    "what time does the tournament start tomorrow?",
    "That was the best play I've seen all week, absolutely insane timing on the last round",
    "I disagree about the patch notes, the sniper nerf was overdue honestly",
    "can someone explain the rules? I just joined and I'm a bit lost",
    "welcome to the channel, glad you're here",
    "anyone up for a match later tonight?",
]
# For the clean-only CPU phase: plainly benign lines the screening model scores far below its review band
# (short slang like "lol nice one" can land in the full path; the report counts any that did).
CALIBRATION_CLEAN = [
    "thanks for the stream, had a great time!",
    "what time does the tournament start tomorrow?",
    "can someone explain the rules? I just joined and I'm a bit lost",
    "welcome to the channel, glad you're here",
]
RISKY_MESSAGES = [
    "you are a worthless idiot, nobody wants you here, go kill yourself",
    "you are such an idiot, nobody wants you here",
    "shut up you stupid loser, everyone hates you",
    "people like you are pathetic, get out of this server you moron",
    "i will find you and hurt you, watch your back",
]

INGEST_PATH = "/v1/events/ingest"
FIRST_POLL_S = 0.5
MAX_POLL_INTERVAL_S = 2.0


# -- pure parts (unit-tested) ------------------------------------------------------------------------------
def arrival_schedule(rate: float, duration_s: float) -> list[float]:
    """Send offsets (seconds from start) for a fixed open-loop rate: ``i / rate`` for every i with offset
    strictly below ``duration_s``."""
    if rate <= 0 or duration_s <= 0:
        return []
    n = math.ceil(rate * duration_s - 1e-9)
    return [i / rate for i in range(n)]


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (the same rule as ``safety replay``); NaN for no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    idx = min(len(ordered) - 1, max(0, math.ceil(q / 100 * len(ordered)) - 1))
    return ordered[idx]


def latency_summary(values_ms: Sequence[float]) -> dict[str, float]:
    return {"p50": percentile(values_ms, 50), "p95": percentile(values_ms, 95), "p99": percentile(values_ms, 99)}


def pending_series(accepted_at: Sequence[float], completed_at: Sequence[float], start: float, end: float,
                   step: float = 1.0) -> list[tuple[float, int]]:
    """(t, accepted by t - completed by t) every ``step`` seconds from ``start`` to ``end`` (inclusive)."""
    acc, done = sorted(accepted_at), sorted(completed_at)
    out: list[tuple[float, int]] = []
    i = j = 0
    t = start
    while t <= end + 1e-9:
        while i < len(acc) and acc[i] <= t:
            i += 1
        while j < len(done) and done[j] <= t:
            j += 1
        out.append((t, i - j))
        t += step
    return out


def slope(points: Sequence[tuple[float, float]]) -> float:
    """Least-squares slope of y over x (0 for fewer than two distinct x)."""
    n = len(points)
    if n < 2:
        return 0.0
    mx = sum(p[0] for p in points) / n
    my = sum(p[1] for p in points) / n
    sxx = sum((p[0] - mx) ** 2 for p in points)
    if sxx == 0:
        return 0.0
    return sum((p[0] - mx) * (p[1] - my) for p in points) / sxx


def backlog_grew(series: Sequence[tuple[float, int]], rate: float, lost: int, *,
                 tolerance: float = 0.05) -> tuple[bool, float]:
    """Whether the backlog grew: any lost event, or pending events rising over the second half of the send
    window faster than ``tolerance`` x rate (a system keeping up holds pending about constant at
    rate x latency). Returns (grew, slope of the second half in events/s)."""
    half = list(series[len(series) // 2:])
    s = slope([(t, float(p)) for t, p in half])
    return (lost > 0 or s > max(tolerance * rate, 0.5)), s


def choose_kinds(n: int, clean_ratio: float, seed: int = 0) -> list[str]:
    """``n`` event kinds ('clean'/'risky'), exactly round(n * clean_ratio) clean, shuffled with ``seed``."""
    n_clean = round(n * clean_ratio)
    kinds = ["clean"] * n_clean + ["risky"] * (n - n_clean)
    random.Random(seed).shuffle(kinds)
    return kinds


def make_event(kind: str, i: int, run_id: str, rng: random.Random,
               clean_pool: Sequence[str] = CLEAN_MESSAGES) -> dict[str, Any]:
    text = rng.choice(clean_pool if kind == "clean" else RISKY_MESSAGES)
    return {
        "event_type": "message", "platform": "discord", "channel_id": f"bench-{i % 7}",
        "user_id": f"bench-target-{rng.randrange(50)}", "author_id": f"bench-author-{rng.randrange(200)}",
        "content": text, "message_id": f"bench-{run_id}-{i}",
        "metadata": {"timestamp": "2026-11-29T12:00:00Z", "user_reputation": round(rng.random(), 2),
                     "author_reputation": round(rng.random(), 2), "channel_history_count": rng.randrange(500)},
    }


def _ms(x: float) -> float | None:
    return None if math.isnan(x) else round(x, 1)


# -- CPU of the Temporal dev server ------------------------------------------------------------------------
def find_temporal_pid(port: int | None = None) -> int | None:
    """The ``temporal server start-dev`` process (the one listening on ``port`` when several run)."""
    import psutil

    found: list[tuple[int, list[str]]] = []
    for p in psutil.process_iter(["pid", "cmdline"]):
        cmd = p.info["cmdline"] or []
        if "start-dev" in cmd and "server" in cmd:
            found.append((p.info["pid"], cmd))
    if port is not None:
        for pid, cmd in found:
            if any(a == "--port" and b == str(port) for a, b in zip(cmd, cmd[1:], strict=False)):
                return pid
        if any("--port" in cmd for _, cmd in found):
            return None
    return found[0][0] if len(found) == 1 else None


def cpu_seconds(pid: int) -> float:
    import psutil

    t = psutil.Process(pid).cpu_times()
    return float(t.user + t.system)


# -- the driver ---------------------------------------------------------------------------------------------
@dataclass
class Sent:
    kind: str
    sent_at: float  # wall clock (time.time()) just before the first attempt
    accepted_at: float | None = None
    ingest_ms: float | None = None
    status_url: str | None = None
    completed_at: float | None = None  # from the outcome, wall clock
    decision: str | None = None
    path: str | None = None  # the outcome's path: clean/prescreen (cheap path) or full (risky)
    error: str | None = None

    @property
    def measured_kind(self) -> str:
        """Which pipeline the event really took (the screening model decides, not the sender's intent)."""
        if self.path in ("clean", "prescreen"):
            return "clean"
        if self.path == "full":
            return "risky"
        return self.kind


@dataclass
class PhaseResult:
    events: list[Sent] = field(default_factory=list)
    send_start: float = 0.0
    send_end: float = 0.0
    cpu_s: float | None = None
    wall_s: float = 0.0
    polls_pending: int = 0


ProgressFn = Callable[[str, int, int], None]


async def _send_one(http: httpx.AsyncClient, body: dict[str, Any], rec: Sent, retries: int = 5) -> None:
    """POST with retries on 503/429/transport errors, same message_id (a redelivery is idempotent)."""
    for attempt in range(retries + 1):
        t0 = time.perf_counter()
        try:
            r = await http.post(INGEST_PATH, json=body)
        except httpx.HTTPError as err:
            rec.error = f"ingest: {type(err).__name__}"
            await asyncio.sleep(min(0.5 * 2 ** attempt, 5))
            continue
        if r.status_code == 202:
            rec.ingest_ms = (time.perf_counter() - t0) * 1000
            rec.accepted_at = time.time()
            rec.status_url = r.json()["processing_url"]
            rec.error = None
            return
        rec.error = f"ingest {r.status_code}"
        if r.status_code not in (429, 503):
            return
        await asyncio.sleep(min(float(r.headers.get("retry-after", "1") or 1), 5))


async def _await_outcome(http: httpx.AsyncClient, rec: Sent, deadline: float, phase: PhaseResult) -> None:
    assert rec.status_url is not None
    await asyncio.sleep(FIRST_POLL_S)
    delay = FIRST_POLL_S
    while time.monotonic() < deadline:
        try:
            r = await http.get(rec.status_url)
            if r.status_code == 200 and r.json().get("status") == "completed":
                outcome = r.json()["outcome"] or {}
                rec.decision = outcome.get("decision")
                rec.path = outcome.get("path")
                done = outcome.get("completed_at")
                rec.completed_at = datetime.fromisoformat(done).timestamp() if done else time.time()
                return
            phase.polls_pending += 1
        except httpx.HTTPError:
            pass
        await asyncio.sleep(delay)
        delay = min(delay * 1.5, MAX_POLL_INTERVAL_S)


async def _run_phase(http: httpx.AsyncClient, *, rate: float, duration_s: float, clean_ratio: float, drain_s: float,
                     temporal_pid: int | None, label: str, progress: ProgressFn | None, seed: int,
                     clean_pool: Sequence[str] = CLEAN_MESSAGES) -> PhaseResult:
    offsets = arrival_schedule(rate, duration_s)
    kinds = choose_kinds(len(offsets), clean_ratio, seed)
    rng = random.Random(seed)
    run_id = uuid.uuid4().hex[:10]
    phase = PhaseResult()
    cpu0 = cpu_seconds(temporal_pid) if temporal_pid else None
    tasks: list[asyncio.Task[None]] = []
    completed = 0

    window_closed = asyncio.Event()  # statuses are read after the send window, not during it

    async def lifecycle(i: int, rec: Sent, body: dict[str, Any], deadline_after_send: float) -> None:
        nonlocal completed
        await _send_one(http, body, rec)
        await window_closed.wait()
        if rec.status_url:
            await _await_outcome(http, rec, deadline_after_send, phase)
        completed += 1
        if progress:
            progress(f"{label}: outcomes", completed, len(offsets))

    loop_start = time.monotonic()
    phase.send_start = time.time()
    deadline = loop_start + duration_s + drain_s
    for i, off in enumerate(offsets):
        delay = loop_start + off - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        body = make_event(kinds[i], i, run_id, rng, clean_pool)
        rec = Sent(kind=kinds[i], sent_at=time.time())
        phase.events.append(rec)
        tasks.append(asyncio.create_task(lifecycle(i, rec, body, deadline)))
        if progress:
            progress(f"{label}: sent", i + 1, len(offsets))
    phase.send_end = time.time()
    window_closed.set()
    await asyncio.gather(*tasks)
    phase.wall_s = time.monotonic() - loop_start
    if temporal_pid and cpu0 is not None:
        phase.cpu_s = cpu_seconds(temporal_pid) - cpu0
    return phase


async def _naive_phase(temporal_address: str, *, rate: float, n: int, temporal_pid: int | None,
                       progress: ProgressFn | None, timeout_s: float = 120) -> dict[str, Any]:
    from temporalio.client import Client
    from temporalio.contrib.pydantic import pydantic_data_converter
    from temporalio.worker import Worker

    from workflows.contract import NAIVE_QUEUE
    from workflows.naive import NaiveChainWorkflow, noop

    client = await Client.connect(temporal_address, data_converter=pydantic_data_converter)
    run_id = uuid.uuid4().hex[:10]
    worker = Worker(client, task_queue=NAIVE_QUEUE, workflows=[NaiveChainWorkflow], activities=[noop])
    done = 0
    failed = 0
    async with worker:
        await asyncio.sleep(0.5)  # let the pollers connect
        cpu0 = cpu_seconds(temporal_pid) if temporal_pid else None
        start = time.monotonic()

        async def one(i: int) -> None:
            nonlocal done, failed
            try:
                handle = await client.start_workflow(NaiveChainWorkflow.run, id=f"bench-naive-{run_id}-{i}",
                                                     task_queue=NAIVE_QUEUE)
                await asyncio.wait_for(handle.result(), timeout_s)
            except Exception:  # noqa: BLE001 - counted, reported
                failed += 1
            done += 1
            if progress:
                progress("naive chain", done, n)

        tasks = []
        for i, off in enumerate(arrival_schedule(rate, n / rate)):
            delay = start + off - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(i)))
        await asyncio.gather(*tasks)
        cpu_s = cpu_seconds(temporal_pid) - cpu0 if temporal_pid and cpu0 is not None else None
        wall = time.monotonic() - start
    return {"n": n, "failed": failed, "cpu_s": cpu_s, "wall_s": wall}


async def _unknown_cases(http: httpx.AsyncClient, unfinished: Sequence[Sent]) -> int:
    """Of the events still unfinished after the drain, how many the system does not know (status 404):
    those are lost; the others are late (their case is queued or running)."""
    unknown = 0
    for rec in unfinished:
        if rec.status_url and (await http.get(rec.status_url)).status_code == 404:
            unknown += 1
    return unknown


def _lat_ms(recs: Sequence[Sent]) -> list[float]:
    return [max(0.0, (r.completed_at - r.sent_at) * 1000) for r in recs if r.completed_at is not None]


def build_report(main: PhaseResult, *, rate: float, duration_s: float, idle_cpu_per_s: float,
                 clean_phase: PhaseResult | None = None, naive: dict[str, Any] | None = None,
                 unknown_after_drain: int | None = None) -> dict[str, Any]:
    """The summary dict from raw phase results (pure: no I/O). ``unfinished_at_drain``: accepted events
    without an outcome when the drain ended (late, and a sign of backlog); ``lost``: of those, the ones
    whose case the system does not know (``unknown_after_drain``, from a status check; without it, all)."""
    ev = main.events
    accepted = [r for r in ev if r.accepted_at is not None]
    lost = [r for r in accepted if r.completed_at is None]
    window = max(main.send_end - main.send_start, duration_s, 1e-9)
    ingest = [r.ingest_ms for r in accepted if r.ingest_ms is not None]
    clean_recs = [r for r in accepted if r.measured_kind == "clean"]
    risky_recs = [r for r in accepted if r.measured_kind == "risky"]
    clean = latency_summary(_lat_ms(clean_recs))
    risky = latency_summary(_lat_ms(risky_recs))
    series = pending_series([r.accepted_at for r in accepted if r.accepted_at],
                            [r.completed_at for r in accepted if r.completed_at], main.send_start, main.send_end)
    grew, trend = backlog_grew(series, rate, len(lost))

    def cpu_per(phase_cpu: float | None, wall: float, n: int) -> float | None:
        if phase_cpu is None or n == 0:
            return None
        return round(max(0.0, phase_cpu - idle_cpu_per_s * wall) * 1000 / n, 2)

    per_event = cpu_per(main.cpu_s, main.wall_s, len(accepted))
    per_clean = None
    clean_phase_full = None
    if clean_phase is not None:
        clean_phase_full = sum(1 for r in clean_phase.events if r.path == "full")
        n_clean = sum(1 for r in clean_phase.events if r.accepted_at is not None)
        per_clean = cpu_per(clean_phase.cpu_s, clean_phase.wall_s, n_clean)
    naive_per = cpu_per(naive["cpu_s"], naive["wall_s"], naive["n"] - naive["failed"]) if naive else None
    base = per_clean if per_clean is not None else per_event
    ratio = round(base / naive_per, 3) if base is not None and naive_per else None
    decisions: dict[str, int] = {}
    for r in accepted:
        if r.decision:
            decisions[r.decision] = decisions.get(r.decision, 0) + 1
    errors: dict[str, int] = {}
    for r in ev:
        if r.accepted_at is None:
            errors[r.error or "not accepted"] = errors.get(r.error or "not accepted", 0) + 1
    return {
        "rate": rate, "duration_s": duration_s, "sent": len(ev), "accepted": len(accepted),
        "events_per_s": round(len(accepted) / window, 2),
        "ingest_p50_ms": _ms(percentile(ingest, 50)), "ingest_p95_ms": _ms(percentile(ingest, 95)),
        "ingest_p99_ms": _ms(percentile(ingest, 99)),
        "clean_p50_ms": _ms(clean["p50"]), "clean_p95_ms": _ms(clean["p95"]), "clean_p99_ms": _ms(clean["p99"]),
        "risky_p50_ms": _ms(risky["p50"]), "risky_p95_ms": _ms(risky["p95"]), "risky_p99_ms": _ms(risky["p99"]),
        "temporal_cpu_ms_per_event": per_event, "temporal_cpu_ms_per_clean_event": per_clean,
        "clean_phase_full_path": clean_phase_full,
        "naive_temporal_cpu_ms_per_workflow": naive_per, "naive_ratio": ratio,
        "naive_workflows": naive["n"] if naive else 0, "naive_failed": naive["failed"] if naive else 0,
        "temporal_idle_cpu_ms_per_s": round(idle_cpu_per_s * 1000, 2),
        "backlog_grew": grew, "pending_trend_per_s": round(trend, 3),
        "pending_max": max((p for _, p in series), default=0),
        "pending_series": [[round(t - main.send_start, 1), p] for t, p in series], "unfinished_at_drain": len(lost),
        "lost": len(lost) if unknown_after_drain is None else unknown_after_drain,
        "not_accepted": len(ev) - len(accepted), "errors": errors, "decisions": decisions,
        "clean_n": len(clean_recs), "risky_n": len(risky_recs),
        "status_polls_pending": main.polls_pending,
    }


async def run_e2e(base_url: str, api_key: str, *, rate: float, duration_s: float, clean_ratio: float = 0.9,
                  temporal_pid: int | None = None, naive_compare: bool = True,
                  temporal_address: str = "127.0.0.1:7233", drain_s: float = 60.0, compare_duration_s: float = 20.0,
                  progress: ProgressFn | None = None, seed: int = 0) -> dict[str, Any]:
    """Drive the running stack at ``rate`` events/s for ``duration_s`` and return the report dict."""
    if temporal_pid is None:
        port = int(temporal_address.rsplit(":", 1)[1]) if ":" in temporal_address else None
        temporal_pid = find_temporal_pid(port)
    idle = 0.0
    if temporal_pid:
        c0, t0 = cpu_seconds(temporal_pid), time.monotonic()
        await asyncio.sleep(3.0)
        idle = (cpu_seconds(temporal_pid) - c0) / (time.monotonic() - t0)
    limits = httpx.Limits(max_connections=256, max_keepalive_connections=64)
    async with httpx.AsyncClient(base_url=base_url, headers={"X-API-Key": api_key}, timeout=30,
                                 limits=limits) as http:
        r = await http.get("/ready")
        if r.status_code != 200:
            raise RuntimeError(f"{base_url}/ready answered {r.status_code}: {r.text[:200]}")
        main = await _run_phase(http, rate=rate, duration_s=duration_s, clean_ratio=clean_ratio, drain_s=drain_s,
                                temporal_pid=temporal_pid, label="events", progress=progress, seed=seed)
        unknown = await _unknown_cases(http, [r for r in main.events if r.accepted_at and r.completed_at is None])
        clean_phase = naive = None
        if naive_compare:
            cmp_s = min(duration_s, compare_duration_s)
            clean_phase = await _run_phase(http, rate=rate, duration_s=cmp_s, clean_ratio=1.0, drain_s=drain_s,
                                           temporal_pid=temporal_pid, label="clean only", progress=progress,
                                           seed=seed + 1, clean_pool=CALIBRATION_CLEAN)
    if naive_compare:
        naive = await _naive_phase(temporal_address, rate=rate, n=len(arrival_schedule(rate, cmp_s)),
                                   temporal_pid=temporal_pid, progress=progress)
    report = build_report(main, rate=rate, duration_s=duration_s, idle_cpu_per_s=idle, clean_phase=clean_phase,
                          naive=naive, unknown_after_drain=unknown)
    report["temporal_pid"] = temporal_pid
    return report


# -- CLI ----------------------------------------------------------------------------------------------------
def stack_target(url: str, api_key: str) -> tuple[str, str]:
    """The running stack's API URL and a key: the options if given, else the local API port and the dev
    key ``safety up`` wrote into the data directory."""
    from core.settings import get_settings

    s = get_settings()
    base = url or f"http://127.0.0.1:{s.api.port}"
    if api_key:
        return base, api_key
    path = Path(s.data_dir) / "dev-api-key"
    if not path.exists():
        raise SystemExit(f"no --api-key and no {path}: start the stack with `safety up` or pass a key")
    return base, path.read_text().strip()


# Options `safety bench e2e` and `safety bench ingest` share.
JsonOption = Annotated[bool, typer.Option("--json", help="Print one JSON object (progress goes to stderr).")]
UrlOption = Annotated[str, typer.Option(help="API base URL (default: the local API port from the settings).")]
ApiKeyOption = Annotated[str, typer.Option(help="An ingest or admin key (default: the dev key `safety up` saved "
                                                "in the data directory).")]


def e2e(
    rate: Annotated[float, typer.Option(min=0.1, help="Events sent per second (open loop: sent on schedule "
                                                      "whether or not earlier requests have answered).")] = 20,
    duration: Annotated[float, typer.Option(min=1, help="Seconds of sending; a drain period follows.")] = 30,
    json: JsonOption = False,
    url: UrlOption = "",
    api_key: ApiKeyOption = "",
) -> None:
    """Drive the running stack at a fixed open-loop rate (events/s) for DURATION seconds; report throughput,
    ingest and ingest-to-outcome latency (clean/risky), Temporal server CPU per event vs a naive 4-activity
    chain, and whether the backlog grew."""
    import json as _json

    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
    from rich.table import Table

    from core.settings import get_settings

    base, key = stack_target(url, api_key)
    temporal_address = get_settings().temporal_address
    err = Console(stderr=True)
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=err, transient=json) as bar:
        ids: dict[str, Any] = {}

        def progress(label: str, done: int, total: int) -> None:
            if label not in ids:
                ids[label] = bar.add_task(label, total=total)
            bar.update(ids[label], completed=done)

        report = asyncio.run(run_e2e(base, key, rate=rate, duration_s=duration, temporal_address=temporal_address,
                                     progress=progress))
    if json:
        print(_json.dumps(report))
        return
    table = Table(title=f"e2e bench: {rate:g} events/s for {duration:g} s against {base}")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for k, v in report.items():
        if k == "pending_series":  # in --json; a table row would be unreadable
            continue
        table.add_row(k, str(v))
    Console().print(table)
    if report["temporal_pid"] is None:
        err.print("[yellow]Temporal dev server process not found: CPU per event not measured[/yellow]")


__all__ = ["run_e2e", "e2e", "arrival_schedule", "percentile", "pending_series", "backlog_grew", "build_report"]
