"""The shipped screening model: loads, has the right shapes, ranks abuse above benign text."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from core.screening.model import CATEGORIES, DEFAULT_MODEL_DIR, ScreeningModel, ScreenScores
from domain.models import HarmCategory

# Real-style examples (paraphrased from the kinds of messages in the training sets).
ABUSIVE = [
    "you are a worthless piece of shit, nobody wants you here",
    "shut up you stupid bitch",
    "go kill yourself you fucking loser",
    "I will find you and beat you to death",
    "@USER you are an idiot and a liar",
]
BENIGN = [
    "thanks for the stream, had a great time!",
    "what time does the tournament start tomorrow?",
    "I love this song so much",
    "@USER congratulations on the new job, well deserved",
    "the weather is lovely today, going for a walk",
]


@pytest.fixture(scope="module")
def model() -> ScreeningModel:
    """The model shipped in models/screening (its absence is a failure, not a skip)."""
    return ScreeningModel.load()


def test_scores_have_the_contract_shape(model: ScreeningModel) -> None:
    s = model.screen("hello there")
    assert isinstance(s, ScreenScores)
    assert 0.0 <= s.overall <= 1.0
    assert set(s.categories) == {c.value for c in HarmCategory if c is not HarmCategory.NONE}
    assert all(0.0 <= v <= 1.0 for v in s.categories.values())
    assert len(s.embedding) == model.embedding_dim == 384
    assert math.isclose(float(np.linalg.norm(s.embedding)), 1.0, abs_tol=1e-3)


def test_abuse_scores_above_benign(model: ScreeningModel) -> None:
    bad = [model.screen(t).overall for t in ABUSIVE]
    good = [model.screen(t).overall for t in BENIGN]
    assert min(bad) > max(good), (bad, good)
    assert all(b >= model.thresholds.review for b in bad)
    assert all(g < model.thresholds.review for g in good)


@pytest.mark.parametrize(
    "evasion",
    [
        "sh1t f4ce you are a l0ser",
        "s h i t face you are a l o s e r",
        "ｓｈｉｔ ｆａｃｅ you are a loser",
        "sh\u200bit face you are a lo\u200bser",
        "ѕһіt face you are a loѕer",
    ],
)
def test_evasions_score_like_the_plain_phrase(model: ScreeningModel, evasion: str) -> None:
    plain = model.screen("shit face you are a loser").overall
    assert plain >= model.thresholds.review
    assert model.screen(evasion).overall == pytest.approx(plain, abs=1e-6)


def test_threat_category_ranks_threat_first(model: ScreeningModel) -> None:
    threat = model.screen("I will find where you live and kill you").categories
    benign = model.screen("I will find where you live and visit you").categories
    assert threat[HarmCategory.THREAT] > benign[HarmCategory.THREAT]


def test_deterministic_and_batch_matches_single(model: ScreeningModel) -> None:
    texts = ABUSIVE + BENIGN + ["", "a" * 5000]
    first = [model.screen(t) for t in texts]
    again = [model.screen(t) for t in texts]
    batch = model.screen_batch(texts)
    for a, b, c in zip(first, again, batch, strict=True):
        assert a == b
        # int8 dynamic quantisation scales activations per batch, so batched scores differ slightly.
        assert c.overall == pytest.approx(a.overall, abs=0.05)
        assert float(np.dot(c.embedding, a.embedding)) > 0.95


def test_thresholds_file_is_sane(model: ScreeningModel) -> None:
    thr = json.loads((DEFAULT_MODEL_DIR / "thresholds.json").read_text())
    assert 0.0 < thr["review"] <= thr["act"] < 1.0
    assert set(thr["categories"]) == set(CATEGORIES)
    assert all(0.0 < v < 1.0 for v in thr["categories"].values())
    assert model.thresholds.review == thr["review"]
    meta = json.loads((DEFAULT_MODEL_DIR / "model.json").read_text())
    assert meta["embedding_dim"] == 384 and meta["categories"] == list(CATEGORIES)
    assert meta["version"] == model.version


def test_missing_model_dir_says_what_to_do(tmp_path: object) -> None:
    with pytest.raises(FileNotFoundError, match="model train"):
        ScreeningModel.load(tmp_path)  # type: ignore[arg-type]


def test_numpy_metrics_match_known_values() -> None:
    from ops.training.screening_eval import average_precision, binary_metrics, roc_auc

    y = [0, 0, 1, 1]
    s = [0.1, 0.4, 0.35, 0.8]
    assert roc_auc(y, s) == pytest.approx(0.75)
    assert average_precision(y, s) == pytest.approx(0.8333333)  # scikit-learn's value
    assert roc_auc([0, 1], [0.5, 0.5]) == pytest.approx(0.5)  # ties count half
    m = binary_metrics(y, s, 0.35)
    assert (m.precision, m.recall) == (pytest.approx(2 / 3), 1.0)


# A right-to-left override displays the typed-backwards run forwards: the reader sees the plain text.
RLO_PLAIN = "nobody wants you here, you pathetic loser"
RLO_EVASIONS = [
    "\u202e" + RLO_PLAIN[::-1] + "\u202c",  # RLO ... PDF around the whole message
    "\u2067\u202e" + RLO_PLAIN[::-1] + "\u202c\u2069",  # inside an RTL isolate
    "nobody wants you here, \u202e" + "you pathetic loser"[::-1] + "\u202c",  # only the insult overridden
    "&#x202e;" + RLO_PLAIN[::-1],  # as an HTML entity, override left open
]


@pytest.mark.parametrize("evasion", RLO_EVASIONS)
def test_a_right_to_left_override_scores_like_the_text_the_reader_sees(model: ScreeningModel,
                                                                        evasion: str) -> None:
    plain = model.screen(RLO_PLAIN)
    assert plain.overall > 0.5
    evaded = model.screen(evasion)
    assert abs(evaded.overall - plain.overall) < 0.02, (evaded.overall, plain.overall)
    [batched] = model.screen_batch([evasion])
    assert batched.overall == pytest.approx(evaded.overall, abs=1e-6)


def test_benign_text_with_an_override_stays_benign(model: ScreeningModel) -> None:
    text = "\u202e" + "thanks for the stream, had a great time!"[::-1] + "\u202c"
    assert model.screen(text).overall < 0.5
