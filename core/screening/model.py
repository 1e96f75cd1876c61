"""Runtime for the shipped screening model: one ONNX graph, run by onnxruntime.

The graph (``models/screening/screening.onnx``) is the int8-quantised all-MiniLM-L6-v2 encoder with mean
pooling and L2 normalisation, plus linear heads on the embedding. It takes ``input_ids`` and
``attention_mask`` (int64, ``[batch, seq]``) and returns ``sentence_embedding`` (``[batch, 384]``) and
``scores`` (``[batch, 1 + n_categories]``: overall harm probability first, then one probability per
category in the order listed in ``model.json``).

Imports only numpy, onnxruntime, tokenizers, the stdlib and ``domain``, so workers do not need torch.
"""

from __future__ import annotations

import html
import json
import math
import re
import zlib
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnxruntime as ort
from tokenizers import Tokenizer

from core.screening.lexicon import LEXICON_FEATURES, Lexicon
from domain.models import HarmCategory, ScreeningThresholds
from domain.normalize import has_bidi_override, normalize, readings

__all__ = [
    "CATEGORIES",
    "DEFAULT_MODEL_DIR",
    "ScreenScores",
    "ScreeningModel",
    "char_ngrams",
    "prepare_text",
]

DEFAULT_MODEL_DIR = Path(__file__).resolve().parents[2] / "models" / "screening"
CATEGORIES: tuple[str, ...] = (
    HarmCategory.TARGETED_INSULT.value,
    HarmCategory.IDENTITY_HATE.value,
    HarmCategory.THREAT.value,
    HarmCategory.PROFANITY.value,
)
# Longer messages are truncated to this many word pieces (MiniLM was trained on 128; abuse is early).
MAX_TOKENS = 128
# Upper bound on characters looked at; keeps tokenisation cheap on megabyte-long pastes.
MAX_CHARS = 2000

_URL = re.compile(r"https?://\S+|www\.\S+", re.I)
_MENTION = re.compile(r"(?<!\w)@\w+")
_MANY_MENTIONS = re.compile(r"(?:@USER\s*){3,}")
_RT = re.compile(r"^\s*RT\b:?\s*")


def prepare_text(text: str) -> str:
    """The exact text the model sees: HTML entities decoded, URLs/mentions replaced, ``normalize``d.

    Training uses the same function, so train and serve agree. Mentions become ``@USER`` and links
    ``URL`` (as in OLID), so handles and links carry no signal of their own.
    """
    return _prepare(html.unescape(text[:MAX_CHARS]))


def prepare_readings(text: str) -> list[str]:
    """The texts the model scores for one message: ``prepare_text``'s, and when the message uses a bidi
    override also the reading a person sees on screen (``domain.normalize.readings``). The message's
    score is the highest of them, so reversing text inside an override hides nothing."""
    return list(dict.fromkeys(_prepare(r) for r in readings(html.unescape(text[:MAX_CHARS]))))


def _prepare(t: str) -> str:
    t = _URL.sub("URL", t)
    t = _MENTION.sub("@USER", t)
    t = _RT.sub("", t)
    t = _MANY_MENTIONS.sub("@USER @USER ", t)
    t = " ".join(t.split())
    return normalize(t)


@dataclass(frozen=True)
class NgramConfig:
    """Hashed character n-grams fed to the heads beside the embedding (see ``char_ngrams``)."""

    buckets: int = 1 << 18
    n_min: int = 2
    n_max: int = 5


def char_ngrams(text: str, cfg: NgramConfig) -> tuple[list[int], list[float]]:
    """Hashed character n-grams of each lower-cased word (padded with spaces, like sklearn's char_wb).

    Returns bucket ids in ``[1, buckets)`` (0 is reserved for padding) and sublinear-tf values
    ``1 + log(count)``, L2-normalised. crc32 keeps the hash stable across processes and versions.
    """
    counts: Counter[int] = Counter()
    mod = cfg.buckets - 1
    for word in text.lower().split():
        w = f" {word[:40]} "
        for n in range(cfg.n_min, cfg.n_max + 1):
            for i in range(len(w) - n + 1):
                counts[zlib.crc32(w[i : i + n].encode("utf-8")) % mod + 1] += 1
    if not counts:
        return [], []
    vals = [1.0 + math.log(c) for c in counts.values()]
    norm = math.sqrt(sum(v * v for v in vals))
    return list(counts.keys()), [v / norm for v in vals]


@dataclass(frozen=True)
class _Feats:
    """One prepared message's model inputs: word-piece ids, optional char n-grams and lexicon features."""

    ids: list[int]
    ngrams: tuple[list[int], list[float]] | None = None
    lexicon: list[float] | None = None


def _load_lexicon(model_dir: Path, meta: dict[str, object]) -> Lexicon | None:
    """The model's lexicon (``model.json`` names its file), or None for a model trained without one."""
    spec = meta.get("lexicon")
    if not isinstance(spec, dict):
        return None
    if tuple(spec.get("features", ())) != LEXICON_FEATURES:
        raise ValueError(f"{model_dir}/model.json lexicon features {spec.get('features')} do not match this "
                         f"runtime's {list(LEXICON_FEATURES)}: retrain the model or update the code")
    path = model_dir / str(spec.get("file", "lexicon.json"))
    if not path.is_file():
        raise FileNotFoundError(f"screening model file missing: {path}")
    return Lexicon.load(path)


@dataclass(frozen=True)
class ScreenScores:
    overall: float  # harm probability 0..1
    categories: dict[str, float]  # keys = the four HarmCategory values (not "none")
    embedding: list[float]  # L2-normalised sentence embedding (embedding_dim floats)


class ScreeningModel:
    """The screening model: load once per process, then ``screen`` per message.

    A session is not thread-affine; onnxruntime ``run`` is thread-safe, so one instance can serve a
    worker's activity threads.
    """

    def __init__(
        self,
        *,
        session: ort.InferenceSession,
        tokenizer: Tokenizer,
        version: str,
        embedding_dim: int,
        categories: tuple[str, ...],
        thresholds: ScreeningThresholds,
        category_thresholds: dict[str, float],
        model_dir: Path,
        ngrams: NgramConfig | None = None,
        lexicon: Lexicon | None = None,
    ) -> None:
        self._session = session
        self._ngrams = ngrams
        self._lexicon = lexicon
        self._tokenizer = tokenizer
        self.version = version
        self.embedding_dim = embedding_dim
        self.categories = categories
        self.thresholds = thresholds
        self.category_thresholds = category_thresholds
        self.model_dir = model_dir

    @classmethod
    def load(cls, model_dir: Path | None = None, *, intra_op_threads: int = 1) -> ScreeningModel:
        """Load the model from ``model_dir`` (default: the one shipped in ``models/screening``).

        ``intra_op_threads=1`` is the measured best on the 2-core target: two threads are slower at
        batch 1 (thread hand-off costs more than the split saves) and compete with the worker's other
        work. Raises ``FileNotFoundError`` naming the missing file if the folder is incomplete.
        """
        model_dir = Path(model_dir) if model_dir is not None else DEFAULT_MODEL_DIR
        meta_path = model_dir / "model.json"
        if not meta_path.is_file():
            raise FileNotFoundError(
                f"screening model metadata not found at {meta_path}; "
                "run `model train --data DIR --out DIR` or pass the folder that holds model.json"
            )
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        onnx_path = model_dir / meta.get("onnx_file", "screening.onnx")
        tok_path = model_dir / meta.get("tokenizer_file", "tokenizer.json")
        thr_path = model_dir / "thresholds.json"
        for p in (onnx_path, tok_path, thr_path):
            if not p.is_file():
                raise FileNotFoundError(f"screening model file missing: {p}")

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = intra_op_threads
        opts.inter_op_num_threads = 1
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        session = ort.InferenceSession(str(onnx_path), opts, providers=["CPUExecutionProvider"])

        tokenizer = Tokenizer.from_file(str(tok_path))
        tokenizer.enable_truncation(max_length=int(meta.get("max_tokens", MAX_TOKENS)))
        tokenizer.no_padding()

        thr = json.loads(thr_path.read_text(encoding="utf-8"))
        categories = tuple(meta.get("categories", CATEGORIES))
        return cls(
            session=session,
            tokenizer=tokenizer,
            version=str(meta["version"]),
            embedding_dim=int(meta["embedding_dim"]),
            categories=categories,
            thresholds=ScreeningThresholds(review=float(thr["review"]), act=float(thr["act"])),
            category_thresholds={c: float(thr["categories"][c]) for c in categories},
            model_dir=model_dir,
            ngrams=NgramConfig(**meta["char_ngrams"]) if meta.get("char_ngrams") else None,
            lexicon=_load_lexicon(model_dir, meta),
        )

    # -- inference -----------------------------------------------------------------------------

    def _features(self, prepared: str) -> _Feats:
        ids = self._tokenizer.encode(prepared).ids
        return _Feats(ids=ids, ngrams=char_ngrams(prepared, self._ngrams) if self._ngrams else None,
                      lexicon=self._lexicon.features(prepared) if self._lexicon else None)

    def _run(self, feats: list[_Feats]) -> tuple[np.ndarray, np.ndarray]:
        """Run one padded batch; returns (embeddings [n, d], scores [n, 1 + n_categories])."""
        n = len(feats)
        width = max(len(f.ids) for f in feats)
        input_ids = np.zeros((n, width), dtype=np.int64)
        mask = np.zeros((n, width), dtype=np.int64)
        for i, f in enumerate(feats):
            input_ids[i, : len(f.ids)] = f.ids
            mask[i, : len(f.ids)] = 1
        inputs = {"input_ids": input_ids, "attention_mask": mask}
        if self._ngrams is not None:
            k = max([1] + [len(f.ngrams[0]) for f in feats if f.ngrams is not None])
            ng_ids = np.zeros((n, k), dtype=np.int64)
            ng_vals = np.zeros((n, k), dtype=np.float32)
            for i, f in enumerate(feats):
                if f.ngrams is not None and f.ngrams[0]:
                    ng_ids[i, : len(f.ngrams[0])] = f.ngrams[0]
                    ng_vals[i, : len(f.ngrams[1])] = f.ngrams[1]
            inputs["ngram_ids"] = ng_ids
            inputs["ngram_vals"] = ng_vals
        if self._lexicon is not None:
            inputs["lexicon_feats"] = np.array([f.lexicon for f in feats], dtype=np.float32)
        emb, scores = self._session.run(["sentence_embedding", "scores"], inputs)
        return emb, scores

    def _to_scores(self, emb: np.ndarray, scores: np.ndarray) -> ScreenScores:
        return ScreenScores(
            overall=float(scores[0]),
            categories={c: float(scores[1 + j]) for j, c in enumerate(self.categories)},
            embedding=emb.astype(np.float64).tolist(),
        )

    def screen(self, text: str) -> ScreenScores:
        """Score one message (batch 1; normalisation and tokenisation included). A message with a bidi
        override is scored as typed and as displayed, each at batch 1; the higher score is its score."""
        best: ScreenScores | None = None
        for reading in prepare_readings(text):
            emb, scores = self._run([self._features(reading)])
            scored = self._to_scores(emb[0], scores[0])
            if best is None or scored.overall > best.overall:
                best = scored
        assert best is not None
        return best

    def screen_batch(self, texts: list[str], *, max_batch: int = 16) -> list[ScreenScores]:
        """Score many messages: sorted by token length and run in micro-batches of similar length.

        Grouping by length keeps padding (wasted compute) small; results come back in input order.
        """
        if not texts:
            return []
        if any(has_bidi_override(html.unescape(t[:MAX_CHARS])) for t in texts):  # rare; scored one by one
            return [self.screen(t) for t in texts]
        feats = [self._features(prepare_text(t)) for t in texts]
        ids = [f.ids for f in feats]
        order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
        out: list[ScreenScores | None] = [None] * len(ids)
        start = 0
        while start < len(order):
            # Cap the padded cell count as well as the row count: long messages go in small batches.
            end = start + 1
            base = len(ids[order[start]])
            while end < len(order) and end - start < max_batch:
                longest = len(ids[order[end]])
                if longest > base * 1.25 + 4 or longest * (end - start + 1) > 1024:
                    break
                end += 1
            chunk = order[start:end]
            emb, scores = self._run([feats[i] for i in chunk])
            for k, i in enumerate(chunk):
                out[i] = self._to_scores(emb[k], scores[k])
            start = end
        return [s for s in out if s is not None]

    def scores_only(self, texts: list[str]) -> np.ndarray:
        """Overall+category probabilities as an array ``[n, 1 + n_categories]`` (evaluation helper)."""
        res = self.screen_batch(texts)
        return np.array([[r.overall, *(r.categories[c] for c in self.categories)] for r in res], dtype=np.float64)
