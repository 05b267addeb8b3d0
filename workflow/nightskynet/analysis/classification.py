"""How well a classifier's top classes match the true ones, by scikit-learn: accuracy, balanced accuracy,
per-class precision, recall and F1, and the confusion matrix. The evaluate stage reports them; training scores its
validation galaxies with the balanced accuracy."""

from __future__ import annotations

import warnings

import numpy as np
from sklearn import metrics

from ..core.vocabulary import CLASS_NAMES


def balanced_accuracy(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """The mean recall of the classes ``y_true`` holds (scikit-learn's; a class only predicted counts against precision
    alone, as it should, so its warning is not news)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="y_pred contains classes not in y_true")
        return float(metrics.balanced_accuracy_score(y_true, y_pred))


def classification_metrics(y_true: np.ndarray, y_pred: np.ndarray) -> dict:
    """Accuracy, balanced accuracy (the mean recall of the classes present), per-class precision, recall (None for a
    class absent from ``y_true``), F1 and support, and the confusion matrix (rows true, columns predicted), by
    scikit-learn; a class never predicted has precision 0."""
    labels = list(range(len(CLASS_NAMES)))
    cm = metrics.confusion_matrix(y_true, y_pred, labels=labels)
    precision, recall, f1, support = metrics.precision_recall_fscore_support(y_true, y_pred, labels=labels, zero_division=0)
    per_class = {
        name: {
            "precision": round(float(precision[i]), 4),
            "recall": round(float(recall[i]), 4) if support[i] else None,
            "f1": round(float(f1[i]), 4),
            "support": int(support[i]),
        }
        for i, name in enumerate(CLASS_NAMES)
    }
    return {
        "accuracy": round(float(metrics.accuracy_score(y_true, y_pred)), 4) if len(y_true) else None,
        "balanced_accuracy": round(balanced_accuracy(y_true, y_pred), 4) if len(y_true) else None,
        "per_class": per_class,
        "confusion_matrix": cm.tolist(),
    }
