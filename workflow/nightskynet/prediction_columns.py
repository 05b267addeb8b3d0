"""The prediction columns every table of the network's answers shares (evaluate, catalog, predict).

Plain NumPy and pandas, so that ``predict`` can write them without importing PyTorch.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .classes import CLASS_NAMES, PROB_COLUMNS


def merger_candidates(probs: np.ndarray, threshold: float | None) -> np.ndarray:
    """p_merger at or above the model's merger threshold (all False for a model without one)."""
    return probs[:, 3] >= threshold if threshold is not None and len(probs) else np.zeros(len(probs), dtype=bool)


def prediction_columns(probs: np.ndarray, merger_threshold: float | None) -> pd.DataFrame:
    """The prediction columns of every table: p_* (calibrated, 5 decimals), predicted (the most probable class), merger_candidate."""
    out = pd.DataFrame({col: probs[:, k].round(5) for k, col in enumerate(PROB_COLUMNS)})
    out["predicted"] = [CLASS_NAMES[i] for i in probs.argmax(1)] if len(probs) else []
    out["merger_candidate"] = merger_candidates(probs, merger_threshold)
    return out
