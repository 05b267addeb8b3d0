"""The prediction columns every table of the network's answers shares (evaluate, catalog, predict).

Plain NumPy and pandas, so that ``predict`` can write them without importing PyTorch.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .vocabulary import CLASS_NAMES, MERGER, PROB_COLUMNS


def merger_candidates(probs: np.ndarray, threshold: float | None) -> np.ndarray:
    """p_merger at or above the model's merger threshold (all False for a model without one)."""
    return probs[:, MERGER] >= threshold if threshold is not None and len(probs) else np.zeros(len(probs), dtype=bool)


def prediction_columns(probs: np.ndarray, merger_threshold: float | None, classified: np.ndarray | None = None) -> pd.DataFrame:
    """The prediction columns of every table: p_* (calibrated, 5 decimals), predicted (the most probable class), merger_candidate.

    Rows not ``classified`` (default: all are) get no class: empty p_* and predicted, merger_candidate false.
    """
    classified = np.ones(len(probs), dtype=bool) if classified is None else np.asarray(classified, dtype=bool)
    known = np.where(classified[:, None], probs, 0.0)
    out = pd.DataFrame({col: np.where(classified, known[:, k].round(5), np.nan) for k, col in enumerate(PROB_COLUMNS)})
    out["predicted"] = [CLASS_NAMES[i] if ok else "" for i, ok in zip(known.argmax(1), classified, strict=True)] if len(probs) else []
    out["merger_candidate"] = merger_candidates(known, merger_threshold) & classified
    return out
