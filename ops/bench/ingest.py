"""``safety bench ingest``: how many events per second the API accepts, closed loop.

``--concurrency`` senders each post one request at a time (``--batch 1``: ``/v1/events/ingest``; more:
``/v1/events/ingest/batch``) for ``--duration`` seconds. The report gives accepted events/s overall and per
5-second window (a falling window rate means it did not hold), request latency, what became of the events
(``recorded``: prescreened clean and already in PostgreSQL; ``queued``: a workflow runs), and a check that
a sample of the accepted events has a status: accepted means recorded or durable, never lost.
Prescreen mode is a setting of the running stack (``SAFETY_API__PRESCREEN=true safety up``).
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import Annotated, Any

import httpx
import typer

from ops.bench.e2e import (
    CALIBRATION_CLEAN,
    CLEAN_MESSAGES,
    ApiKeyOption,
    JsonOption,
    UrlOption,
    choose_kinds,
    make_event,
    percentile,
    stack_target,
)

WINDOW_S = 5.0
SAMPLE_CHECKS = 200


@dataclass
class IngestRun:
    started: float = 0.0
    accepted_at: list[float] = field(default_factory=list)
    request_ms: list[float] = field(default_factory=list)
    statuses: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    event_ids: list[str] = field(default_factory=list)
    sent: int = 0


def window_rates(accepted_at: list[float], start: float, duration_s: float, window_s: float = WINDOW_S) -> list[float]:
    """Accepted events per second in each full window of the run (pure, for the report)."""
    n = int(duration_s // window_s)
    counts = [0] * n
    for t in accepted_at:
        k = int((t - start) // window_s)
        if 0 <= k < n:
            counts[k] += 1
    return [round(c / window_s, 1) for c in counts]


async def _sender(http: httpx.AsyncClient, run: IngestRun, *, batch: int, clean_ratio: float, deadline: float,
                  seed: int) -> None:
    rng = random.Random(seed)
    # All-clean runs use lines the model scores far below review; mixed runs use everyday chat as well.
    pool = CALIBRATION_CLEAN if clean_ratio >= 1 else CLEAN_MESSAGES
    run_id = uuid.uuid4().hex[:8]
    i = 0
    while time.monotonic() < deadline:
        kinds = choose_kinds(batch, clean_ratio, seed=rng.randrange(1 << 30))
        events = [make_event(k, i + j, run_id, rng, pool) for j, k in enumerate(kinds)]
        i += batch
        run.sent += batch
        t0 = time.monotonic()
        try:
            if batch == 1:
                r = await http.post("/v1/events/ingest", json=events[0])
            else:
                r = await http.post("/v1/events/ingest/batch", json={"events": events})
        except httpx.HTTPError as err:
            run.errors[type(err).__name__] += batch
            continue
        now = time.monotonic()
        if r.status_code not in (202, 207):
            run.errors[str(r.status_code)] += batch
            if r.status_code in (429, 503):
                await asyncio.sleep(float(r.headers.get("retry-after", "1") or 1))
            continue
        run.request_ms.append((now - t0) * 1000)
        body = r.json()
        # The single-event endpoint does not say whether it recorded or queued: counted as "accepted".
        items = [{**body, "status": "accepted"}] if batch == 1 else body["results"]
        for item in items:
            status = item["status"]
            run.statuses[status] += 1
            if status != "not_accepted":
                run.accepted_at.append(now)
                run.event_ids.append(item["event_id"])


async def _check_sample(http: httpx.AsyncClient, event_ids: list[str]) -> dict[str, int]:
    """Every sampled accepted event answers its status URL (completed, or a durable running case)."""
    sample = random.Random(7).sample(event_ids, min(SAMPLE_CHECKS, len(event_ids)))
    found: Counter[str] = Counter()
    for eid in sample:
        r = await http.get(f"/v1/events/{eid}/status")
        found[r.json().get("status", str(r.status_code)) if r.status_code == 200 else str(r.status_code)] += 1
    return dict(found)


async def run_ingest(base_url: str, api_key: str, *, batch: int, concurrency: int, duration_s: float,
                     clean_ratio: float = 1.0, seed: int = 0,
                     transport: httpx.AsyncBaseTransport | None = None) -> dict[str, Any]:
    """Run the closed loop and return the report dict (``transport``: an in-process app, for tests)."""
    limits = httpx.Limits(max_connections=concurrency + 8, max_keepalive_connections=concurrency + 8)
    async with httpx.AsyncClient(base_url=base_url, headers={"X-API-Key": api_key}, timeout=60,
                                 limits=limits, transport=transport) as http:
        # The API's own dependencies: ingest throughput does not need the workers (events queue durably).
        r = await http.get("/ready", params={"scope": "api"})
        if r.status_code != 200:
            raise RuntimeError(f"{base_url}/ready?scope=api answered {r.status_code}: {r.text[:200]}")
        run = IngestRun(started=time.monotonic())
        deadline = run.started + duration_s
        await asyncio.gather(*(_sender(http, run, batch=batch, clean_ratio=clean_ratio, deadline=deadline,
                                       seed=seed + k) for k in range(concurrency)))
        wall = time.monotonic() - run.started
        sample = await _check_sample(http, run.event_ids) if run.event_ids else {}
    windows = window_rates(run.accepted_at, run.started, duration_s)
    return {
        "batch": batch, "concurrency": concurrency, "duration_s": duration_s, "clean_ratio": clean_ratio,
        "sent": run.sent, "accepted": len(run.accepted_at),
        "events_per_s": round(len(run.accepted_at) / wall, 1),
        "window_events_per_s": windows, "min_window_events_per_s": min(windows) if windows else None,
        "request_p50_ms": round(percentile(run.request_ms, 50), 1) if run.request_ms else None,
        "request_p99_ms": round(percentile(run.request_ms, 99), 1) if run.request_ms else None,
        "statuses": dict(run.statuses), "errors": dict(run.errors), "sample_status": sample,
    }


def ingest(
    batch: Annotated[int, typer.Option(min=1, help="Events per request; 1 uses the single-event endpoint, "
                                                   "more the batch endpoint (its limit applies).")] = 100,
    concurrency: Annotated[int, typer.Option(min=1, help="Senders, each waiting for its answer before "
                                                         "sending again (closed loop).")] = 4,
    duration: Annotated[float, typer.Option(min=1, help="Seconds of sending.")] = 30,
    clean_ratio: Annotated[float, typer.Option(min=0, max=1, help="Share of clean messages; the rest are "
                                                                  "abusive and start workflows.")] = 1.0,
    json: JsonOption = False,
    url: UrlOption = "",
    api_key: ApiKeyOption = "",
) -> None:
    """Closed-loop ingest throughput of the running stack: CONCURRENCY senders post BATCH events per
    request (1: the single-event endpoint) for DURATION seconds. Reports accepted events/s overall and per
    5 s window, request latency, recorded vs queued events, errors, and a status check of 200 accepted
    events."""
    import json as _json

    from rich.console import Console
    from rich.table import Table

    if batch < 1 or concurrency < 1 or duration <= 0 or not 0 <= clean_ratio <= 1:
        raise SystemExit("--batch and --concurrency must be >= 1, --duration > 0, --clean-ratio within 0..1")
    base, key = stack_target(url, api_key)
    err = Console(stderr=True)
    err.print(f"sending batches of {batch} from {concurrency} senders for {duration:.0f} s to {base} ...")
    try:
        report = asyncio.run(run_ingest(base, key, batch=batch, concurrency=concurrency, duration_s=duration,
                                        clean_ratio=clean_ratio))
    except (httpx.HTTPError, RuntimeError) as err:
        raise SystemExit(f"cannot drive the API at {base} ({err!r}): start the stack with `safety up` "
                         "or pass --url") from err
    if json:
        print(_json.dumps(report))
        return
    table = Table(title="ingest throughput (closed loop)")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for k, v in report.items():
        table.add_row(k, str(v))
    Console().print(table)
