"""Screening: the ONNX model scores each event (CPU-bound, so a sync activity run in a thread pool)."""

from __future__ import annotations

import time

from temporalio import activity

from core.metrics import SCREENING_CONFIDENCE, SCREENING_DURATION_MS
from core.screening import ScreeningModel
from core.screening.model import ScreenScores
from domain.models import HarmCategory, ScreenInput, ScreenResult
from workflows import contract


def top_category(categories: dict[str, float], thresholds: dict[str, float]) -> HarmCategory:
    """The category whose score exceeds its own threshold by the widest margin, or ``none``."""
    best, margin = HarmCategory.NONE, 0.0
    for name, score in categories.items():
        over = score - thresholds.get(name, 0.5)
        if over >= margin:
            best, margin = HarmCategory(name), over
    if best is HarmCategory.NONE and categories:
        # Nothing crossed its own threshold: report the highest-scoring category for context.
        best = HarmCategory(max(categories, key=lambda k: categories[k]))
    return best


def screen_text(model: ScreeningModel, text: str, *, embedding_from: float | None = None) -> ScreenResult:
    """Score one message (normalisation and tokenisation included) and record the screening metrics.

    The embedding is included only when the score reaches ``embedding_from`` (None: always).
    """
    started = time.perf_counter()
    scores = model.screen(text)
    return _result(model, scores, (time.perf_counter() - started) * 1000, embedding_from)


def screen_texts(model: ScreeningModel, texts: list[str]) -> list[ScreenResult]:
    """Score many messages, each at batch 1: exactly the score a worker gives that message alone (int8
    dynamic quantisation scales activations per batch, so micro-batched scores depend on the other
    messages in the batch: on real data 2% of decisions flipped). Embeddings are always included."""
    return [screen_text(model, t) for t in texts]


def _result(model: ScreeningModel, scores: ScreenScores, elapsed: float, embedding_from: float | None) -> ScreenResult:
    SCREENING_DURATION_MS.observe(elapsed)
    SCREENING_CONFIDENCE.observe(scores.overall)
    risk = round(float(scores.overall), 6)
    return ScreenResult(
        risk_score=risk,
        category_scores={k: round(float(v), 6) for k, v in scores.categories.items()},
        top_category=top_category(scores.categories, model.category_thresholds),
        embedding=[round(float(x), 5) for x in scores.embedding]
        if embedding_from is None or risk >= embedding_from else [],
        model_version=model.version,
        duration_ms=round(elapsed, 3),
    )


class ScreeningActivities:
    def __init__(self, model: ScreeningModel) -> None:
        self.model = model

    @activity.defn(name=contract.SCREEN_EVENT)
    def screen_event(self, inp: ScreenInput) -> ScreenResult:
        return screen_text(self.model, inp.content, embedding_from=inp.embedding_from)
