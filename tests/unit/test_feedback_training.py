"""Moderator and appeal labels reach training: feedback.csv beside the datasets joins the corpus."""

from __future__ import annotations

import csv
from pathlib import Path

from ops.training.screening_train import load_corpus

HEADERS = {
    "davidson.csv": ["text", "label", "fine_label"],
    "olid_train.csv": ["text", "label", "offense_type", "target"],
    "ethos.csv": ["text", "label", "violence", "directed_vs_generalized", "gender"],
    "toxic_spans.csv": ["text", "label", "toxic_share"],
    "implicit_hate.csv": ["text", "label", "class", "implicit_class"],
    "hatexplain.csv": ["text", "label", "class", "target_groups"],
    "stormfront.csv": ["text", "label", "class"],
    "gab_hate.csv": ["text", "label", "hd", "cv", "vo"],
}
# One row per new set (the label mapping of load_corpus), [targeted_insult, identity_hate, threat, profanity].
NEW_ROWS = {
    "toxic_spans.csv": ({"text": "meh", "label": "0", "toxic_share": "0.2"}, [0.0, 0.0, 0.0, None]),
    "implicit_hate.csv": ({"text": "they will pay", "label": "1", "class": "implicit_hate",
                           "implicit_class": "threatening"}, [None, 1.0, 1.0, None]),
    "hatexplain.csv": ({"text": "you idiot", "label": "1", "class": "offensive", "target_groups": ""},
                       [1.0, 0.0, None, None]),
    "stormfront.csv": ({"text": "a forum post", "label": "0", "class": "noHate"}, [0.0, 0.0, 0.0, 0.0]),
    "gab_hate.csv": ({"text": "a call for violence", "label": "1", "hd": "0", "cv": "1", "vo": "1"},
                     [None, 0.0, 1.0, 1.0]),
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
    for name, (row, _) in NEW_ROWS.items():
        _write(tmp_path / name, HEADERS[name], [row])
    _write(tmp_path / "feedback.csv", ["text", "label", "category", "source"],
           [{"text": "ur trash lol uninstall", "label": "1", "category": "targeted_insult", "source": "review"},
            {"text": "that play was sick", "label": "0", "category": "", "source": "appeal"}])
    corpus = load_corpus(tmp_path)
    fb = [i for i, s in enumerate(corpus.source) if s == "feedback"]
    assert len(fb) == 2 and list(corpus.y[fb]) == [1, 0]
    assert corpus.cats[fb[0]][0] == 1.0 and list(corpus.cats[fb[1]]) == [0.0, 0.0, 0.0, 0.0]
    held_out = load_corpus(tmp_path, datasets=("davidson", "olid_train"))
    assert "feedback" not in set(held_out.source)


def test_one_label_mapping_for_the_new_sets(tmp_path: Path) -> None:
    for name in ("davidson.csv", "olid_train.csv", "ethos.csv"):
        _write(tmp_path / name, HEADERS[name], [])
    for name, (row, _) in NEW_ROWS.items():
        _write(tmp_path / name, HEADERS[name], [row])
    corpus = load_corpus(tmp_path)
    for name, (row, cats) in NEW_ROWS.items():
        i = list(corpus.source).index(name.removesuffix(".csv"))
        assert corpus.y[i] == int(row["label"])
        got = [None if v != v else float(v) for v in corpus.cats[i]]  # NaN -> None
        assert got == cats, (name, got)


def test_a_missing_set_names_the_files_needed(tmp_path: Path) -> None:
    import pytest

    with pytest.raises(FileNotFoundError, match="gab_hate.csv"):
        load_corpus(tmp_path)
