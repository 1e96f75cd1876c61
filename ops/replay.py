"""``safety replay``: push a file of events through the ingest API and report outcomes and latency."""

from __future__ import annotations

import asyncio
import csv
import json
import time
from collections import Counter
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

_METADATA = ("timestamp", "user_reputation", "author_reputation", "channel_history_count")


def read_events(path: Path) -> Iterator[dict[str, Any]]:
    """JSON lines (one ingest body per line) or CSV (ingest fields as columns; metadata.x or bare names)."""
    if path.suffix.lower() == ".csv":
        with path.open(newline="", encoding="utf-8") as fh:
            for row in csv.DictReader(fh):
                body: dict[str, Any] = {}
                meta: dict[str, Any] = {}
                for k, v in row.items():
                    if v in (None, ""):
                        continue
                    name = k.removeprefix("metadata.")
                    if name in _METADATA:
                        meta[name] = float(v) if "reputation" in name else int(v) if name.endswith("count") else v
                    else:
                        body[k] = v
                body["metadata"] = meta
                yield body
    else:
        with path.open(encoding="utf-8") as fh:
            for n, line in enumerate(fh, 1):
                if line.strip():
                    try:
                        yield json.loads(line)
                    except json.JSONDecodeError as err:
                        raise SystemExit(f"{path}:{n}: not valid JSON ({err.msg})") from err


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    idx = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[idx]


async def run_replay(path: Path, *, base_url: str, api_key: str, concurrency: int, timeout_s: float) -> int:
    events = list(read_events(path))
    console = Console(stderr=True)
    decisions: Counter[str] = Counter()
    errors: Counter[str] = Counter()
    latencies: list[float] = []
    sem = asyncio.Semaphore(concurrency)
    headers = {"X-API-Key": api_key}

    async with httpx.AsyncClient(base_url=base_url, headers=headers, timeout=30) as client:
        with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                      console=console) as progress:
            task = progress.add_task("replaying", total=len(events))

            async def one(body: dict[str, Any]) -> None:
                async with sem:
                    sent = time.time()
                    try:
                        resp = await client.post("/v1/events/ingest", json=body)
                    except httpx.HTTPError as err:
                        errors[f"ingest: {type(err).__name__}"] += 1
                        return
                    if resp.status_code != 202:
                        errors[f"ingest {resp.status_code}: {resp.json().get('detail', '')[:80]}"] += 1
                        return
                    status_url = resp.json()["processing_url"]
                deadline = time.monotonic() + timeout_s
                delay = 0.05
                while time.monotonic() < deadline:
                    st = await client.get(status_url)
                    if st.status_code == 200 and st.json()["status"] == "completed":
                        outcome = st.json()["outcome"]
                        decisions[outcome["decision"]] += 1
                        done = outcome.get("completed_at")
                        finished = datetime.fromisoformat(done).timestamp() if done else time.time()
                        latencies.append(max(0.0, (finished - sent) * 1000))
                        return
                    await asyncio.sleep(delay)
                    delay = min(delay * 1.5, 1.0)
                errors["no outcome before --timeout"] += 1

            async def tracked(body: dict[str, Any]) -> None:
                try:
                    await one(body)
                finally:
                    progress.advance(task)

            await asyncio.gather(*(tracked(b) for b in events))

    table = Table(title=f"replay of {len(events)} events from {path.name}")
    table.add_column("decision")
    table.add_column("count", justify="right")
    for name, count in sorted(decisions.items()):
        table.add_row(name, str(count))
    for name, count in sorted(errors.items()):
        table.add_row(f"[red]{name}[/red]", str(count))
    out = Console()
    out.print(table)
    if latencies:
        out.print(f"ingest-to-outcome latency: p50 {percentile(latencies, 50):.0f} ms, "
                  f"p95 {percentile(latencies, 95):.0f} ms, p99 {percentile(latencies, 99):.0f} ms "
                  f"(n={len(latencies)})")
    return 1 if errors else 0
