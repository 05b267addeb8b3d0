"""The vote fractions: the four classes made of them, and where they come from, said the same way everywhere.

Galaxy Zoo 1 votes -> four classes: elliptical (p_el), face-on spiral (p_cw + p_acw), edge-on
spiral (p_edge), merger (p_mg); don't-know and the combined-spiral column are dropped and the four
renormalised (``class_probabilities``: the labels and the morphology stages). The demo sky's votes are
simulated (``demo_sky``); on the real SDSS they are Galaxy Zoo 1's. Tables carry the word in a
``votes`` column, figures and pages the phrase.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..core.vocabulary import CLASS_NAMES, PROB_COLUMNS

SIMULATED, GALAXY_ZOO_1 = "simulated", "galaxy_zoo_1"


def votes_kind(source: str) -> str:
    """The ``votes`` column's value for data from ``source`` (demo or sdss)."""
    return SIMULATED if source == "demo" else GALAXY_ZOO_1


def votes_phrase(source: str) -> str:
    """How figures and pages name the votes of data from ``source``."""
    return "simulated votes" if source == "demo" else "Galaxy Zoo 1 votes"


def class_probabilities(catalog: pd.DataFrame) -> pd.DataFrame:
    """Renormalised four-class probabilities, ``label`` (argmax) and ``confidence`` (max).

    Rows whose four raw fractions sum to 0 (all don't-know) get NaN probabilities and no label.
    """
    raw = np.stack([catalog["p_el"], catalog["p_cw"] + catalog["p_acw"], catalog["p_edge"], catalog["p_mg"]], axis=1).astype(np.float64)
    total = raw.sum(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        probs = np.where(total > 0, raw / np.where(total > 0, total, 1.0), np.nan)
    out = pd.DataFrame(probs, columns=list(PROB_COLUMNS), index=catalog.index)
    defined = total[:, 0] > 0
    out["label"] = pd.Series(
        [CLASS_NAMES[i] for i in np.nanargmax(np.where(defined[:, None], probs, 0.0), axis=1)], index=catalog.index
    ).where(defined)
    out["confidence"] = np.where(defined, np.nanmax(np.where(defined[:, None], probs, 0.0), axis=1), np.nan)
    return out
