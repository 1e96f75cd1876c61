"""``bench`` commands: measure the parts whose cost decides the design."""

from __future__ import annotations

import json
import os
import random
import resource
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

app = typer.Typer(help="Benchmarks: latency, throughput and memory of the system's hot paths.", no_args_is_help=True)
console = Console()

# Realistic chat lines of varied length (benign and abusive), so latency reflects real token counts.
_SAMPLES = [
    "gg",
    "lol nice one",
    "you are such an idiot, nobody wants you here",
    "@USER thanks for the stream, had a great time!",
    "k1ll y0urself loser",
    "Can someone explain the rules of this game? I just joined and I'm a bit lost.",
    "f u c k off and never come back",
    "That was the best play I've seen all week, absolutely insane timing on the last round",
    "people like you should not be allowed to vote",
    "brb getting food",
    "I disagree with your point about the patch notes, the nerf to the sniper was overdue honestly",
    "shut up you stupid b!tch",
    "What time does the tournament start tomorrow? I want to make sure I don't miss the opening match "
    "because my friend is playing in the first round and I promised to cheer for him",
]


def _rss_mb() -> float:
    """Current resident set size of this process in MB (Linux /proc; falls back to peak RSS)."""
    try:
        with open(f"/proc/{os.getpid()}/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _messages(n: int, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        s = rng.choice(_SAMPLES)
        if rng.random() < 0.3:  # vary lengths a little
            s = s + " " + rng.choice(_SAMPLES)
        out.append(s)
    return out


@app.callback()
def _bench() -> None:
    """Benchmarks: latency, throughput and memory of the system's hot paths."""


@app.command("screening")
def screening(
    n: Annotated[int, typer.Option("--n", help="Messages to score (after 50 warm-up calls).")] = 2000,
    threads: Annotated[int, typer.Option(help="onnxruntime intra-op threads (the worker uses 1).")] = 1,
    batch: Annotated[int, typer.Option(help="Micro-batch size for the batched throughput run.")] = 16,
    model_dir: Annotated[
        Path | None, typer.Option("--model-dir", help="Model folder (default: the shipped models/screening).")
    ] = None,
    as_json: Annotated[
        bool,
        typer.Option("--json", help="Print one JSON object (p50_ms, p99_ms, msgs_per_s, rss_mb, ...)."),
    ] = False,
) -> None:
    """Benchmark the screening model: latency, throughput, load time and RSS.

    Measures p50/p99 latency of one message at batch 1 (normalisation and tokenisation included),
    throughput at batch 1 and with length-grouped micro-batching, model load time, and the process
    RSS with the model loaded.
    """
    import numpy as np

    from core.screening.model import ScreeningModel

    rss_before = _rss_mb()
    t0 = time.perf_counter()
    model = ScreeningModel.load(model_dir, intra_op_threads=threads)
    load_s = time.perf_counter() - t0
    msgs = _messages(n)
    for m in msgs[:50]:
        model.screen(m)
    lat = np.empty(n)
    t_all = time.perf_counter()
    for i, m in enumerate(msgs):
        t = time.perf_counter()
        model.screen(m)
        lat[i] = time.perf_counter() - t
    single_s = time.perf_counter() - t_all
    t_b = time.perf_counter()
    model.screen_batch(msgs, max_batch=batch)
    batch_s = time.perf_counter() - t_b
    res = {
        "model_version": model.version,
        "n": n,
        "threads": threads,
        "p50_ms": round(float(np.percentile(lat, 50)) * 1000, 3),
        "p90_ms": round(float(np.percentile(lat, 90)) * 1000, 3),
        "p99_ms": round(float(np.percentile(lat, 99)) * 1000, 3),
        "max_ms": round(float(lat.max()) * 1000, 3),
        "msgs_per_s": round(n / single_s, 1),
        "batched_msgs_per_s": round(n / batch_s, 1),
        "batch": batch,
        "load_s": round(load_s, 3),
        "rss_mb": round(_rss_mb(), 1),
        "rss_model_mb": round(_rss_mb() - rss_before, 1),
        "cpu_count": os.cpu_count(),
    }
    if as_json:
        typer.echo(json.dumps(res))
        return
    table = Table(title=f"screening model {model.version} ({n} messages, {threads} thread(s))")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for k, v in res.items():
        table.add_row(k, str(v))
    console.print(table)



def _mount() -> None:
    from ops.bench.e2e import e2e
    from ops.bench.ingest import ingest
    from ops.bench.reasoning import reasoning

    app.command("reasoning")(reasoning)
    app.command("e2e")(e2e)
    app.command("ingest")(ingest)


_mount()

if __name__ == "__main__":
    app()
