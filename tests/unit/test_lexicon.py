"""Lexicon features: what they count, that evasions are undone first, and that the model really uses them."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from core.screening.lexicon import LEXICON_FEATURES, Lexicon
from core.screening.model import DEFAULT_MODEL_DIR, ScreeningModel, prepare_text


@pytest.fixture(scope="module")
def lexicon() -> Lexicon:
    return Lexicon.load()


@pytest.fixture(scope="module")
def model() -> ScreeningModel:
    return ScreeningModel.load()


def feats(lexicon: Lexicon, text: str) -> dict[str, float]:
    return dict(zip(LEXICON_FEATURES, lexicon.features(prepare_text(text)), strict=True))


def test_plain_chat_has_no_hits(lexicon: Lexicon) -> None:
    f = feats(lexicon, "see you at the tournament tomorrow")
    assert f["any_profanity"] == f["any_insult"] == f["addresses_someone_with_a_hit"] == 0.0
    assert f["addresses_someone"] == 1.0 and f["log1p_tokens"] > 0


def test_insults_profanity_and_addressing_are_counted(lexicon: Lexicon) -> None:
    f = feats(lexicon, "you are a stupid idiot, shut up")
    assert f["any_insult"] == 1.0 and f["log1p_insult_hits"] == pytest.approx(np.log1p(3))  # stupid, idiot, shut up
    assert f["addresses_someone_with_a_hit"] == 1.0
    g = feats(lexicon, "this game is shit")
    assert g["any_profanity"] == 1.0 and g["any_insult"] == 0.0 and g["addresses_someone"] == 0.0


@pytest.mark.parametrize("evaded", ["k1ll y0urs3lf", "k i l l  yourself", "kіll yourself"])
def test_evasions_are_undone_before_matching(lexicon: Lexicon, evaded: str) -> None:
    assert feats(lexicon, evaded)["any_insult"] == 1.0


def test_the_shipped_model_feeds_the_lexicon_to_its_heads(model: ScreeningModel) -> None:
    meta = json.loads((DEFAULT_MODEL_DIR / "model.json").read_text())
    assert meta["lexicon"]["features"] == list(LEXICON_FEATURES) and "lexicon_feats" in meta["inputs"]
    prepared = prepare_text("you are a stupid idiot")
    real = model._features(prepared)
    blank = type(real)(ids=real.ids, lexicon=[0.0] * len(LEXICON_FEATURES))
    _, with_lex = model._run([real])
    _, without = model._run([blank])
    assert with_lex[0, 0] > without[0, 0] + 0.01  # the insult hits raise the harm score


def test_a_model_whose_lexicon_features_differ_is_refused(tmp_path: Path) -> None:
    target = tmp_path / "model"
    shutil.copytree(DEFAULT_MODEL_DIR, target)
    meta = json.loads((target / "model.json").read_text())
    meta["lexicon"]["features"] = ["something_else"]
    (target / "model.json").write_text(json.dumps(meta))
    with pytest.raises(ValueError, match="retrain the model"):
        ScreeningModel.load(target)


def test_heads_keep_the_lexicon_weights_apart() -> None:
    from ops.training.screening_train import Corpus, Features, fit_heads

    rng = np.random.default_rng(0)
    n = 200
    y = rng.integers(0, 2, n)
    cats = np.full((n, 4), np.nan)
    cats[:, 3] = y
    corpus = Corpus(texts=[""] * n, source=np.array(["olid_train"] * n), y=y, cats=cats)
    lex = np.column_stack([y * 2.0 + rng.normal(0, 0.1, n), rng.normal(0, 1, (n, len(LEXICON_FEATURES) - 1))])
    F = Features(emb=rng.normal(0, 1, (n, 8)), lex=lex)
    heads = fit_heads(F, corpus)
    assert heads.W.shape == (8, 5) and heads.W_lex is not None and heads.W_lex.shape == (len(LEXICON_FEATURES), 5)
    assert heads.W_lex[0, 0] > 0  # the informative lexicon column carries the weight
    assert ((heads.predict(F)[:, 0] > 0.5) == y).mean() > 0.9



def test_whole_words_only(lexicon: Lexicon) -> None:
    assert feats(lexicon, "as good as it gets, classic")["any_profanity"] == 0.0  # not "ass", not "god"
    assert feats(lexicon, "the ego died down")["any_insult"] == 0.0  # "go die" only as words
