"""How training chooses the review threshold: on chat validation, never on the data it trains on."""

from __future__ import annotations

import json

import numpy as np
import pytest

from core.screening.model import prepare_text
from ops.training.screening_chat_corpus import generate_chat
from ops.training.screening_train import (
    HANDWRITTEN_CHAT,
    choose_chat_thresholds,
    handwritten_chat,
    review_for_clean_rate,
)


def test_review_flags_at_most_the_budget_of_each_part_counted_equally() -> None:
    big = np.linspace(0.0, 1.0, 1001)  # 1,001 clean scores spread evenly
    small = np.array([0.1, 0.2, 0.3, 0.95])  # 4 clean scores, one of them high
    thr = review_for_clean_rate([big, small], 0.2)
    flagged = ((big >= thr).mean() + (small >= thr).mean()) / 2
    assert flagged <= 0.2
    # The small part weighs as much as the big one: its single high score (25% of it) alone uses 12.5%
    # of the budget, so the threshold sits well above the big part's own 20% point (0.8).
    assert thr > 0.8
    # And it is the lowest such threshold: the next lower candidate would exceed the budget.
    lower = np.unique(np.r_[big, small])
    lower = lower[lower < thr].max()
    assert ((big >= lower).mean() + (small >= lower).mean()) / 2 > 0.2


def test_review_above_every_clean_score_when_the_budget_is_zero() -> None:
    clean = np.array([0.2, 0.4, 0.6])
    thr = review_for_clean_rate([clean], 0.0)
    assert thr > 0.6 and (clean >= thr).sum() == 0


def test_thresholds_come_from_chat_validation_and_act_is_not_below_review() -> None:
    rng = np.random.default_rng(0)
    y = np.r_[np.zeros(500), np.ones(500)].astype(int)
    s = np.clip(np.r_[rng.normal(0.3, 0.15, 500), rng.normal(0.7, 0.15, 500)], 0, 1)
    chat_y = np.r_[np.zeros(100), np.ones(100)].astype(int)
    chat_s = np.r_[np.linspace(0.0, 0.5, 100), np.linspace(0.5, 1.0, 100)]
    cats = np.repeat(y[:, None].astype(float), 4, axis=1)  # every category labelled like the overall label
    thr = choose_chat_thresholds(s, y, np.repeat(s[:, None], 4, axis=1), cats, chat=[(chat_s, chat_y)],
                                 clean_flag_rate=0.1)
    assert (chat_s[chat_y == 0] >= thr["review"]).mean() <= 0.1
    assert thr["act"] >= thr["review"]
    assert "hand-written" in thr["method"]


def test_handwritten_chat_is_labelled_and_mostly_unlike_the_generated_training_chat() -> None:
    hw = handwritten_chat()
    assert len(hw.y) >= 400 and 0.3 < hw.y.mean() < 0.5
    raw = json.loads(HANDWRITTEN_CHAT.read_text(encoding="utf-8"))
    assert len({*raw["benign"], *raw["harmful"]}) == len(hw.texts), "duplicate hand-written messages"
    texts, _, _ = generate_chat(40_000, seed=0)
    overlap = set(hw.texts) & {prepare_text(t) for t in texts}
    # Common lines ("gg wp", "kys", "noob team") also come out of the generator, as they would in real
    # chat; 89 of 500 when this was written. Copying validation into the templates would raise it.
    assert len(overlap) <= 0.2 * len(hw.texts), f"{len(overlap)} hand-written lines are generated training chat"


@pytest.mark.parametrize("field", ["about", "benign", "harmful"])
def test_handwritten_chat_file_documents_itself(field: str) -> None:
    assert json.loads(HANDWRITTEN_CHAT.read_text(encoding="utf-8"))[field]


def test_loo_finetune_refuses_an_unknown_set_or_folder_with_a_message(tmp_path) -> None:
    from typer.testing import CliRunner

    from ops.cli.model import app

    runner = CliRunner()
    res = runner.invoke(app, ["loo-finetune", "--data", str(tmp_path), "--held", "chat_logs"])
    assert res.exit_code == 2 and "choose from davidson" in res.output
    res = runner.invoke(app, ["loo-finetune", "--data", str(tmp_path), "--held", "ethos"])
    assert res.exit_code == 2 and "davidson.csv" in res.output and "not found" in res.output


def test_in_domain_reference_is_scored_out_of_fold_on_the_set_alone() -> None:
    """The table's in-domain reference trains and scores on the held-out set's rows alone: a set whose
    label is in its features scores near 1, one whose label is noise near 0.5."""
    from ops.training.screening_train import Corpus, Features, TrainData, in_domain_roc_auc

    rng = np.random.default_rng(0)
    n = 600
    y = np.r_[rng.integers(0, 2, n), rng.integers(0, 2, n)]
    emb = rng.normal(size=(2 * n, 8))
    emb[:n, 0] += 4.0 * (y[:n] * 2 - 1)  # set "a": feature 0 carries the label
    source = np.array(["a"] * n + ["b"] * n)
    sets = Corpus([f"t{i}" for i in range(2 * n)], source, y, np.full((2 * n, 4), np.nan))
    F = Features(emb, lex=np.zeros((2 * n, 1)))
    empty = Corpus([], np.array([]), np.array([]), np.zeros((0, 4)))
    td = TrainData(sets, empty, empty, empty, F, F, F, F)
    assert in_domain_roc_auc(td, np.where(source == "a")[0]) > 0.95
    assert abs(in_domain_roc_auc(td, np.where(source == "b")[0]) - 0.5) < 0.1
