"""Metrics for the screening model, in numpy only (runs with the runtime dependencies).

ROC-AUC and PR-AUC (average precision) match scikit-learn's definitions, ties included.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

__all__ = [
    "BinaryMetrics",
    "average_precision",
    "binary_metrics",
    "read_labeled_csv",
    "roc_auc",
    "threshold_for_precision",
    "threshold_for_recall",
]


def roc_auc(y_true: Sequence[int] | np.ndarray, scores: Sequence[float] | np.ndarray) -> float:
    """Area under the ROC curve (Mann-Whitney U with average ranks for ties). NaN if one class."""
    y = np.asarray(y_true).astype(bool)
    s = np.asarray(scores, dtype=np.float64)
    n_pos = int(y.sum())
    n_neg = len(y) - n_pos
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    order = np.argsort(s, kind="mergesort")
    ranks = np.empty(len(s), dtype=np.float64)
    sorted_s = s[order]
    # average ranks over ties
    _, first, counts = np.unique(sorted_s, return_index=True, return_counts=True)
    avg = first + (counts + 1) / 2.0
    ranks[order] = np.repeat(avg, counts)
    return float((ranks[y].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def _pr_points(y: np.ndarray, s: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Precision, recall and threshold at each distinct score, from high to low."""
    order = np.argsort(-s, kind="mergesort")
    s_sorted = s[order]
    y_sorted = y[order]
    distinct = np.where(np.diff(s_sorted))[0]
    idx = np.r_[distinct, len(s_sorted) - 1]
    tp = np.cumsum(y_sorted)[idx]
    fp = (idx + 1) - tp
    precision = tp / np.maximum(tp + fp, 1)
    recall = tp / max(int(y.sum()), 1)
    return precision, recall, s_sorted[idx]


def average_precision(y_true: Sequence[int] | np.ndarray, scores: Sequence[float] | np.ndarray) -> float:
    """PR-AUC as average precision (sum over thresholds of precision x recall increase)."""
    y = np.asarray(y_true).astype(np.int64)
    s = np.asarray(scores, dtype=np.float64)
    if y.sum() == 0:
        return float("nan")
    precision, recall, _ = _pr_points(y, s)
    recall_prev = np.r_[0.0, recall[:-1]]
    return float(np.sum((recall - recall_prev) * precision))


def threshold_for_recall(y_true: np.ndarray, scores: np.ndarray, recall: float) -> float:
    """The highest threshold (``score >= t`` flags) whose recall is at least ``recall``."""
    precision, rec, thr = _pr_points(np.asarray(y_true).astype(np.int64), np.asarray(scores, float))
    ok = np.where(rec >= recall)[0]
    return float(thr[ok[0]]) if len(ok) else float(thr[-1])


def threshold_for_precision(
    y_true: np.ndarray, scores: np.ndarray, precision: float, *, min_support: int = 20
) -> float:
    """The lowest threshold whose precision is at least ``precision`` (with >= ``min_support`` flagged).

    Returns 1.0 (never act) if no threshold reaches the precision.
    """
    s = np.asarray(scores, dtype=np.float64)
    prec, _, thr = _pr_points(np.asarray(y_true).astype(np.int64), s)
    flagged = np.searchsorted(np.sort(-s), -thr, side="right")  # rows with score >= each threshold
    ok = np.where((prec >= precision) & (flagged >= min_support))[0]
    return float(thr[ok[-1]]) if len(ok) else 1.0


@dataclass(frozen=True)
class BinaryMetrics:
    n: int
    positives: int
    roc_auc: float
    pr_auc: float
    threshold: float
    precision: float
    recall: float
    f1: float

    def as_dict(self) -> dict[str, float | int]:
        return asdict(self)


def binary_metrics(
    y_true: Sequence[int] | np.ndarray, scores: Sequence[float] | np.ndarray, threshold: float
) -> BinaryMetrics:
    """ROC-AUC, PR-AUC, and precision/recall/F1 when flagging ``score >= threshold``."""
    y = np.asarray(y_true).astype(bool)
    s = np.asarray(scores, dtype=np.float64)
    pred = s >= threshold
    tp = int((pred & y).sum())
    fp = int((pred & ~y).sum())
    fn = int((~pred & y).sum())
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return BinaryMetrics(
        n=len(y),
        positives=int(y.sum()),
        roc_auc=roc_auc(y, s),
        pr_auc=average_precision(y, s),
        threshold=float(threshold),
        precision=precision,
        recall=recall,
        f1=f1,
    )


def read_labeled_csv(
    path: Path, *, text_column: str = "text", label_column: str | None = "label"
) -> tuple[list[str], list[int] | None, list[dict[str, str]]]:
    """Read a CSV into texts, integer labels (if a label column is given) and the raw rows.

    Raises ``ValueError`` naming the missing column and the columns that exist.
    """
    with Path(path).open(newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        fields = reader.fieldnames or []
        for col in (text_column, label_column):
            if col is not None and col not in fields:
                raise ValueError(f"{path}: no column {col!r}; columns are {', '.join(fields)}")
        rows = list(reader)
    texts = [r[text_column] or "" for r in rows]
    labels = None
    if label_column is not None:
        labels = [int(float(r[label_column])) for r in rows]
    return texts, labels, rows
