"""Scores that rank galaxies for one class, read as curves: ROC and precision-recall over every threshold, with their
areas. Tied scores move together (one threshold each), so the same scores give the same areas in whatever order the
galaxies come. The evaluate stage scores its classes with them; the similarity stage its mergers by example."""

from __future__ import annotations

import numpy as np


def _counts_at_thresholds(scores: np.ndarray, positive: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """True and false positives at each distinct score threshold, highest first (ties move together)."""
    order = np.argsort(-scores, kind="stable")
    s, pos = scores[order], positive[order].astype(float)
    last_of_each = np.r_[np.flatnonzero(np.diff(s)), len(s) - 1] if len(s) else np.zeros(0, dtype=int)
    tp = np.cumsum(pos)[last_of_each]
    return tp, (last_of_each + 1) - tp


def roc_curve(scores: np.ndarray, positive: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """False/true positive rates over all thresholds and the area under the curve (one-vs-rest)."""
    tp, fp = _counts_at_thresholds(scores, positive)
    tp, fp = np.r_[0.0, tp], np.r_[0.0, fp]
    if tp[-1] == 0 or fp[-1] == 0:
        return fp, tp, float("nan")
    tpr, fpr = tp / tp[-1], fp / fp[-1]
    return fpr, tpr, float(np.trapezoid(tpr, fpr))


def precision_recall(scores: np.ndarray, positive: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """Precision and recall over all thresholds and the average precision (one-vs-rest)."""
    tp, fp = _counts_at_thresholds(scores, positive)
    if not len(tp) or tp[-1] == 0:
        return np.array([1.0]), np.array([0.0]), float("nan")
    precision, recall = tp / (tp + fp), tp / tp[-1]
    ap = float(np.sum(np.diff(np.r_[0.0, recall]) * precision))
    return precision, recall, ap
