"""The screening graph built by training: pooled intermediate layers feed the MLP heads inside the one ONNX
graph, the sentence embedding (what Qdrant stores) stays the encoder's own, and the runtime's inputs and
outputs do not change. Built from the shipped model's encoder, so these run on the real graph."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from core.screening.lexicon import LEXICON_FEATURES
from core.screening.model import DEFAULT_MODEL_DIR, ScreeningModel, prepare_text
from ops.training.screening_train import (
    EMBEDDING_DIM,
    MLPHead,
    add_pooled_layers,
    attach_heads,
    embed_onnx,
    extract_encoder,
    pooled_output,
)

TEXTS = [prepare_text(t) for t in ("gg ez noob team", "see you tomorrow", "i will find where you live")]
POOLING = (("mean", 1), ("max", 5))


@pytest.fixture(scope="module")
def encoders(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    work = tmp_path_factory.mktemp("graph")
    plain = extract_encoder(DEFAULT_MODEL_DIR, work / "encoder.onnx")
    return plain, add_pooled_layers(plain, work / "encoder.pooled.onnx", POOLING)


def _tokenizer() -> Path:
    return DEFAULT_MODEL_DIR / "tokenizer.json"


def test_extracting_the_encoder_drops_heads_and_pooling(encoders: tuple[Path, Path]) -> None:
    plain, _ = encoders
    sess = ort.InferenceSession(str(plain), providers=["CPUExecutionProvider"])
    assert [o.name for o in sess.get_outputs()] == ["sentence_embedding"]
    assert [i.name for i in sess.get_inputs()] == ["input_ids", "attention_mask"]


def test_pooled_layers_leave_the_sentence_embedding_unchanged(encoders: tuple[Path, Path]) -> None:
    plain, pooled = encoders
    outputs = ("sentence_embedding", *(pooled_output(kind, k) for kind, k in POOLING))
    base = embed_onnx(plain, _tokenizer(), TEXTS)
    both = embed_onnx(pooled, _tokenizer(), TEXTS, outputs=outputs)
    assert both.shape == (len(TEXTS), EMBEDDING_DIM * 3)
    np.testing.assert_array_equal(both[:, :EMBEDDING_DIM], base)
    for j in (1, 2):
        part = both[:, EMBEDDING_DIM * j : EMBEDDING_DIM * (j + 1)]
        np.testing.assert_allclose(np.linalg.norm(part, axis=1), 1.0, atol=1e-5)
        assert np.abs(part - base).max() > 0.1  # another layer or pooling, not a copy of the embedding


def test_max_pooling_ignores_padding(encoders: tuple[Path, Path]) -> None:
    """A message scored alone and padded inside a batch of longer ones pools the same tokens."""
    _, pooled = encoders
    outputs = (pooled_output("max", 5),)
    alone = embed_onnx(pooled, _tokenizer(), TEXTS[:1], outputs=outputs)
    padded = embed_onnx(pooled, _tokenizer(), [TEXTS[0], "a much longer message " * 8], outputs=outputs)[:1]
    np.testing.assert_allclose(alone, padded, atol=0.05)  # int8 activation scales differ per batch, padding not


def test_heads_on_pooled_layers_compute_what_training_computed(encoders: tuple[Path, Path], tmp_path: Path) -> None:
    """attach_heads wires [embedding, pooled layers, lexicon] into the MLP in the order training uses."""
    _, pooled = encoders
    rng = np.random.default_rng(0)
    dim = EMBEDDING_DIM * 3 + len(LEXICON_FEATURES)
    mlp = MLPHead(W1=rng.normal(0, 0.1, (dim, 16)), b1=rng.normal(0, 0.1, 16), W2=rng.normal(0, 0.5, (16, 5)),
                  b2=rng.normal(0, 0.1, 5))
    target = tmp_path / "model"
    shutil.copytree(DEFAULT_MODEL_DIR, target)
    attach_heads(pooled, np.zeros((EMBEDDING_DIM, 5)), np.zeros(5), target / "screening.onnx",
                 lexicon_weights=np.zeros((len(LEXICON_FEATURES), 5)), mlp=mlp, pooled=POOLING)
    meta = json.loads((target / "model.json").read_text())
    meta["pooling"] = [list(p) for p in POOLING]
    (target / "model.json").write_text(json.dumps(meta))

    model = ScreeningModel.load(target)
    outputs = ("sentence_embedding", *(pooled_output(kind, k) for kind, k in POOLING))
    for text in TEXTS:
        x = embed_onnx(pooled, _tokenizer(), [text], outputs=outputs)[0]
        lex = np.array(model._lexicon.features(text))  # type: ignore[union-attr]
        expected = 1 / (1 + np.exp(-mlp.logit(np.r_[x, lex][None, :])[0]))
        got = model.screen(text)
        assert got.overall == pytest.approx(expected[0], abs=1e-4)
        assert [got.categories[c] for c in model.categories] == pytest.approx(expected[1:], abs=1e-4)
        np.testing.assert_allclose(got.embedding, x[:EMBEDDING_DIM], atol=1e-6)
    sess = ort.InferenceSession(str(target / "screening.onnx"), providers=["CPUExecutionProvider"])
    assert [o.name for o in sess.get_outputs()] == ["sentence_embedding", "scores"]


def test_pooling_spec_is_parsed_or_refused_with_a_message() -> None:
    from ops.training.screening_train import parse_pooling

    assert parse_pooling("") == ()
    assert parse_pooling("max5, mean1") == (("max", 5), ("mean", 1))
    for bad in ("median3", "max9", "max"):
        with pytest.raises(ValueError, match="mean<layer> or max<layer>"):
            parse_pooling(bad)
