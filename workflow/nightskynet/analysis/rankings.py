"""Scores that rank galaxies for one class, read as curves: ROC and precision-recall over every threshold, with their
areas, by scikit-learn (``roc_curve``, ``precision_recall_curve``, ``average_precision_score``). Tied scores move
together (one threshold each), so the same scores give the same areas in whatever order the galaxies come. The
evaluate stage scores its classes with them; the similarity stage and the benchmarks its mergers by example."""

from __future__ import annotations

import numpy as np
from sklearn import metrics


def roc_curve(scores: np.ndarray, positive: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """False/true positive rates over all thresholds and the area under the curve (one-vs-rest); NaN without both
    positives and negatives."""
    positive = np.asarray(positive, bool)
    if positive.all() or not positive.any():
        return np.zeros(1), np.zeros(1), float("nan")
    fpr, tpr, _ = metrics.roc_curve(positive, scores, drop_intermediate=False)
    return fpr, tpr, float(metrics.auc(fpr, tpr))


def precision_recall(scores: np.ndarray, positive: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """Precision and recall over all thresholds, highest threshold first, and the average precision (one-vs-rest);
    NaN without a positive."""
    positive = np.asarray(positive, bool)
    if not positive.any():
        return np.array([1.0]), np.array([0.0]), float("nan")
    precision, recall, _ = metrics.precision_recall_curve(positive, scores, drop_intermediate=False)
    # scikit-learn lists them lowest threshold first, ending at (recall 0, precision 1): the curve from the top down
    return precision[-2::-1], recall[-2::-1], float(metrics.average_precision_score(positive, scores))
