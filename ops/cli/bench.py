"""``bench`` commands: measure the parts whose cost decides the design."""

from __future__ import annotations

import json
import os
import random
import resource
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

if TYPE_CHECKING:
    from core.screening.model import ScreeningModel

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


def _prescreen_rate(model: ScreeningModel, msgs: list[str], workers: int, batch: int = 100) -> float:
    """Messages/s of the API's batch-ingest prescreen: each batch of ``batch`` events split into
    ``workers`` parts scored at batch 1 on as many threads (``api.services.events._prescreen_batch`` with
    ``SAFETY_API__SCREENING_THREADS``), batches one after another."""
    from concurrent.futures import ThreadPoolExecutor

    from activities.screening import screen_texts

    t = time.perf_counter()
    with ThreadPoolExecutor(workers) as pool:
        for b in range(0, len(msgs), batch):
            part = msgs[b : b + batch]
            step = -(-len(part) // workers)
            chunks = [part[i : i + step] for i in range(0, len(part), step)]
            list(pool.map(lambda chunk: screen_texts(model, chunk), chunks))
    return len(msgs) / (time.perf_counter() - t)


def _measure_screening(model_dir: Path | None, n: int, threads: int, batch: int,
                       prescreen_threads: int = 2) -> dict[str, object]:
    """One model's figures (batch-1 latency percentiles, throughput, load time, RSS) in this process."""
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
    prescreen = _prescreen_rate(model, msgs, prescreen_threads)
    review = model.thresholds.review
    clean_share = float(np.mean([model.screen(m).overall < review for m in _SAMPLES]))
    return {
        "model_version": model.version,
        "model_dir": str(model.model_dir),
        "n": n,
        "threads": threads,
        "p50_ms": round(float(np.percentile(lat, 50)) * 1000, 3),
        "p90_ms": round(float(np.percentile(lat, 90)) * 1000, 3),
        "p99_ms": round(float(np.percentile(lat, 99)) * 1000, 3),
        "max_ms": round(float(lat.max()) * 1000, 3),
        "msgs_per_s": round(n / single_s, 1),
        "batched_msgs_per_s": round(n / batch_s, 1),
        "batch": batch,
        "prescreen_msgs_per_s": round(prescreen, 1),
        "prescreen_threads": prescreen_threads,
        "clean_path_share": round(clean_share, 3),
        "load_s": round(load_s, 3),
        "rss_mb": round(_rss_mb(), 1),
        "rss_model_mb": round(_rss_mb() - rss_before, 1),
        "cpu_count": os.cpu_count(),
    }


def _measure_in_child(model_dir: Path, n: int, threads: int, batch: int) -> dict[str, object]:
    """``_measure_screening`` in a fresh interpreter, so load time and RSS are that model's alone."""
    import subprocess
    import sys

    cmd = [sys.executable, "-m", "ops.cli.bench", "screening", "--json", "--n", str(n), "--threads", str(threads),
           "--batch", str(batch), "--model-dir", str(model_dir)]
    out = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise typer.BadParameter(f"could not benchmark {model_dir}: {out.stderr.strip()[-500:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def _combine(runs: list[dict[str, object]]) -> dict[str, object]:
    """Median over alternating rounds of each figure (robust to a noisy neighbour in one round)."""
    import statistics

    res = dict(runs[-1])
    for k, v in runs[-1].items():
        if isinstance(v, float):
            res[k] = round(statistics.median(float(r[k]) for r in runs), 3)  # type: ignore[arg-type]
    res["rounds"] = len(runs)
    return res


@app.command("screening")
def screening(
    n: Annotated[int, typer.Option("--n", min=1, help="Messages to score (after 50 warm-up calls).")] = 2000,
    threads: Annotated[int, typer.Option(min=1, max=16, help="onnxruntime intra-op threads (the worker uses 1).")] = 1,
    batch: Annotated[int, typer.Option(min=1, help="Micro-batch size for the batched throughput run.")] = 16,
    model_dir: Annotated[
        Path | None, typer.Option("--model-dir", help="Model folder (default: the shipped models/screening).")
    ] = None,
    baseline: Annotated[
        Path | None,
        typer.Option("--baseline", file_okay=False,
                     help="A second model folder (e.g. the previous model: `git show` or a copy of models/screening) "
                          "measured in the same run, side by side; each model in its own process, rounds alternating."),
    ] = None,
    rounds: Annotated[int, typer.Option(min=1, max=20, help="With --baseline: alternating rounds per model.")] = 2,
    as_json: Annotated[
        bool,
        typer.Option("--json", help="Print one JSON object (p50_ms, p99_ms, msgs_per_s, rss_mb, ...)."),
    ] = False,
) -> None:
    """Benchmark the screening model: latency, throughput, load time and RSS.

    Measures p50/p99 latency of one message at batch 1 (normalisation and tokenisation included),
    throughput at batch 1 and with length-grouped micro-batching, the batch-ingest prescreen's throughput
    (batches of 100 split over 2 threads at batch 1, as the API does), the share of the sample lines that
    take the clean path at the model's own review threshold, model load time, and the process RSS with
    the model loaded. With ``--baseline DIR`` both models are measured in the same run
    (alternating child processes) and shown side by side with the ratio new / baseline.
    """
    from core.screening.model import DEFAULT_MODEL_DIR

    for d, opt in ((model_dir, "--model-dir"), (baseline, "--baseline")):
        if d is not None and not (d / "model.json").is_file():
            raise typer.BadParameter(f"{d} holds no model.json: pass a screening model folder", param_hint=opt)
    if baseline is None:
        res = _measure_screening(model_dir, n, threads, batch)
        if as_json:
            typer.echo(json.dumps(res))
            return
        table = Table(title=f"screening model {res['model_version']} ({n} messages, {threads} thread(s))")
        table.add_column("metric")
        table.add_column("value", justify="right")
        for k, v in res.items():
            table.add_row(k, str(v))
        console.print(table)
        return
    new_dir = model_dir or DEFAULT_MODEL_DIR
    runs: dict[str, list[dict[str, object]]] = {"baseline": [], "model": []}
    for _ in range(rounds):
        runs["baseline"].append(_measure_in_child(baseline, n, threads, batch))
        runs["model"].append(_measure_in_child(new_dir, n, threads, batch))
    base, new = _combine(runs["baseline"]), _combine(runs["model"])
    keys = ("p50_ms", "p90_ms", "p99_ms", "max_ms", "msgs_per_s", "batched_msgs_per_s", "prescreen_msgs_per_s",
            "clean_path_share", "load_s", "rss_mb", "rss_model_mb")
    ratio = {k: round(float(new[k]) / float(base[k]), 2) if float(base[k]) else None for k in keys}  # type: ignore[arg-type]
    if as_json:
        typer.echo(json.dumps({"baseline": base, "model": new, "ratio": ratio}))
        return
    table = Table(title=f"screening: {new['model_version']} vs baseline {base['model_version']} "
                        f"({n} messages x {rounds} rounds, {threads} thread(s))")
    table.add_column("metric")
    table.add_column("baseline", justify="right")
    table.add_column("model", justify="right")
    table.add_column("model / baseline", justify="right")
    for k in keys:
        table.add_row(k, str(base[k]), str(new[k]), str(ratio[k]))
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
