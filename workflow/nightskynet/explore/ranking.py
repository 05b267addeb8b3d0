"""More like these: every galaxy of the catalog ranked by a model of a person's marks on the representations.

The model is scikit-learn's logistic regression (classes balanced) on the L2-normalised representations: the
galaxies marked yes against those marked no and a seeded background sample of the unmarked galaxies (``BACKGROUND``,
weighted ``BACKGROUND_WEIGHT`` each: most galaxies are not the rare kind looked for, so a handful of yes marks alone
already ranks), fitted anew at every mark. The score is the model's probability of yes; the galaxies it is least
sure of (probability nearest 0.5) are the ones whose mark would teach it most (uncertainty sampling).
benchmarks/marks.py measures how many marks it takes, against the catalog's merger_likeness and p_merger.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

BACKGROUND = 2000  # unmarked galaxies taken as weak "no"s
BACKGROUND_WEIGHT = 0.2  # each counts this much of a marked "no"
C = 1.0  # scikit-learn's inverse regularisation strength, on unit-length representations


@dataclass
class Ranking:
    """A score per catalog row (NaN where not classified) and what the model was fitted on."""

    scores: np.ndarray
    yes: int
    no: int

    def best_unmarked(self, marked: np.ndarray, k: int) -> np.ndarray:
        """Rows of the k best-ranked galaxies not marked yet."""
        return _top(np.where(marked, np.nan, self.scores), k)

    def most_informative(self, marked: np.ndarray, k: int, exclude: np.ndarray) -> np.ndarray:
        """Rows of the k unmarked galaxies the model is least sure of (not among ``exclude``)."""
        doubt = -np.abs(self.scores - 0.5)
        doubt[marked] = np.nan
        doubt[exclude] = np.nan
        return _top(doubt, k)


def _top(values: np.ndarray, k: int) -> np.ndarray:
    finite = np.flatnonzero(np.isfinite(values))
    if len(finite) <= k:
        return finite[np.argsort(-values[finite], kind="stable")]
    part = finite[np.argpartition(-values[finite], k)[:k]]
    return part[np.argsort(-values[part], kind="stable")]


def unmarked(ok: np.ndarray, marked: np.ndarray) -> np.ndarray:
    """The rows of ``ok`` (sorted) that are not in ``marked`` (any order, maybe outside ``ok``), in order: what
    ``np.setdiff1d`` gives, without sorting the whole catalog again at every mark."""
    at = np.searchsorted(ok, marked)
    inside = at < len(ok)
    at = at[inside][ok[at[inside]] == marked[inside]]
    return np.delete(ok, np.unique(at))


def rank(unit: np.ndarray, classified: np.ndarray, yes_rows: np.ndarray, no_rows: np.ndarray, seed: int = 0) -> Ranking:
    """Every row's score by a model fitted on the yes and no rows of ``unit`` (L2-normalised representations, (n, F),
    in memory); NaN where not ``classified``. Without a yes mark there is nothing to look for: every score NaN."""
    n = len(unit)
    if not len(yes_rows):
        return Ranking(np.full(n, np.nan, dtype=np.float32), 0, len(no_rows))
    from scipy.special import expit
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(seed)
    ok = np.flatnonzero(classified)
    pool = unmarked(ok, np.concatenate([yes_rows, no_rows]).astype(np.int64))
    background = rng.choice(pool, size=min(BACKGROUND, len(pool)), replace=False) if len(pool) else pool
    rows = np.concatenate([yes_rows, no_rows, background])
    y = np.concatenate([np.ones(len(yes_rows)), np.zeros(len(no_rows) + len(background))])
    weight = np.concatenate([np.ones(len(yes_rows) + len(no_rows)), np.full(len(background), BACKGROUND_WEIGHT)])
    model = LogisticRegression(C=C, class_weight="balanced", max_iter=1000)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a handful of marks can leave the optimiser short of its tolerance; the ranking stands
        model.fit(np.asarray(unit[rows], dtype=np.float32), y, sample_weight=weight)
    w, b = model.coef_[0].astype(np.float32), np.float32(model.intercept_[0])
    scores = expit(np.asarray(unit, dtype=np.float32) @ w + b).astype(np.float32)  # one pass over the catalog, no copy
    scores[~classified] = np.nan
    return Ranking(scores, len(yes_rows), len(no_rows))
