"""Moderator and appeal labels reach training: feedback.csv beside the datasets joins the corpus."""

from __future__ import annotations

import csv
from pathlib import Path

from ops.training.screening_train import load_corpus

HEADERS = {
    "davidson.csv": ["text", "label", "fine_label"],
    "olid_train.csv": ["text", "label", "offense_type", "target"],
    "ethos.csv": ["text", "label", "violence", "directed_vs_generalized", "gender"],
}


def _write(path: Path, header: list[str], rows: list[dict[str, str]]) -> None:
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=header)
        writer.writeheader()
        writer.writerows(rows)


def test_feedback_rows_join_the_full_corpus_but_not_held_out_subsets(tmp_path: Path) -> None:
    _write(tmp_path / "davidson.csv", HEADERS["davidson.csv"], [{"text": "hi", "label": "0", "fine_label": "neither"}])
    _write(tmp_path / "olid_train.csv", HEADERS["olid_train.csv"],
           [{"text": "ok", "label": "0", "offense_type": "", "target": ""}])
    _write(tmp_path / "ethos.csv", HEADERS["ethos.csv"],
           [{"text": "fine", "label": "0", "violence": "0", "directed_vs_generalized": "0", "gender": "0"}])
    _write(tmp_path / "feedback.csv", ["text", "label", "category", "source"],
           [{"text": "ur trash lol uninstall", "label": "1", "category": "targeted_insult", "source": "review"},
            {"text": "that play was sick", "label": "0", "category": "", "source": "appeal"}])
    corpus = load_corpus(tmp_path)
    fb = [i for i, s in enumerate(corpus.source) if s == "feedback"]
    assert len(fb) == 2 and list(corpus.y[fb]) == [1, 0]
    assert corpus.cats[fb[0]][0] == 1.0 and list(corpus.cats[fb[1]]) == [0.0, 0.0, 0.0, 0.0]
    held_out = load_corpus(tmp_path, datasets=("davidson", "olid_train"))
    assert "feedback" not in set(held_out.source)
