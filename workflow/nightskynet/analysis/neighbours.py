"""Galaxies like this one: a vector index over the representations, and the two scores read from it.

Representations are compared by cosine similarity (the inner product of L2-normalised vectors, 1 for
the same direction). The index is faiss (``IndexHNSWFlat`` under an ``IndexIDMap2``: a graph search
that serves a million galaxies on one machine, its ids the galaxies' objids, so a neighbour is named
by its objid and never by a row number that another file could shift).

* ``unusual``: 1 - the similarity of a galaxy's k-th nearest other galaxy of the catalog. A galaxy in a
  crowded part of the space (many like it) scores near 0, one with no close company high.
* ``merger_likeness``: how much a galaxy looks like the training set's mergers, by example: the
  similarity-weighted share of mergers among its nearest labelled training galaxies
  (``knn``), or its mean similarity to the nearest training mergers themselves (``examples``).
  docs/benchmarks.md measures both against the classifier's p_merger on the yardstick folds.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..core.errors import InputError
from ..core.files import atomic_path

logging.getLogger("faiss.loader").setLevel(logging.WARNING)  # its "loading" lines on every start say nothing
import faiss  # noqa: E402


@dataclass(frozen=True)
class IndexSettings:
    """The graph's shape: ``m`` links per galaxy, ``ef_construction`` and ``ef_search`` candidates kept while building and
    searching (more: closer to the exact neighbours, slower)."""

    m: int = 32
    ef_construction: int = 80
    ef_search: int = 96

    @classmethod
    def from_config(cls, section: dict) -> IndexSettings:
        return cls(m=int(section["m"]), ef_construction=int(section["ef_construction"]), ef_search=int(section["ef_search"]))


def normalised(features: np.ndarray) -> np.ndarray:
    """float32 rows scaled to unit length (a copy), so that inner product is cosine similarity; an all-zero row stays zero."""
    x = np.array(features, dtype=np.float32, copy=True, order="C")
    if x.ndim != 2:
        raise ValueError(f"representations must be (rows, features), not {x.shape}")
    if not np.isfinite(x).all():
        raise ValueError("a representation holds NaN or infinity: only classified galaxies go into the index")
    faiss.normalize_L2(x)
    return x


def build_index(objids: np.ndarray, features: np.ndarray, settings: IndexSettings) -> faiss.Index:
    """The HNSW index of these galaxies (ids: their objids), cosine similarity."""
    objids = np.asarray(objids, dtype=np.int64)
    if len(np.unique(objids)) != len(objids):
        raise InputError("two galaxies share an objid: the index names neighbours by objid")
    x = normalised(features)
    graph = faiss.IndexHNSWFlat(x.shape[1], settings.m, faiss.METRIC_INNER_PRODUCT)
    graph.hnsw.efConstruction = settings.ef_construction
    graph.hnsw.efSearch = settings.ef_search
    index = faiss.IndexIDMap2(graph)
    index.add_with_ids(x, objids)
    return index


def write_index(index: faiss.Index, path: str | Path) -> None:
    with atomic_path(path) as tmp:
        faiss.write_index(index, str(tmp))


def read_index(path: str | Path) -> faiss.Index:
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such index; the similarity stage builds it (run the workflow)")
    try:
        return faiss.read_index(str(path))
    except RuntimeError as err:
        raise InputError(f"{path}: not a faiss index ({str(err).splitlines()[-1][:200]})") from None


def search(index: faiss.Index, features: np.ndarray, k: int, exclude: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(similarities (n, k), objids (n, k)) of the k galaxies most like each row of ``features``, most similar first;
    with ``exclude`` (n objids), each row's own objid is left out (a galaxy is not its own neighbour). Where the index
    holds fewer than k others, the row ends in similarity NaN and objid -1."""
    x = normalised(features)
    extra = 1 if exclude is not None else 0
    sims, ids = index.search(x, min(k + extra, index.ntotal))
    if exclude is not None:
        own = ids == np.asarray(exclude, dtype=np.int64)[:, None]
        # drop each row's own objid where found, else its last neighbour: k left either way
        drop = np.where(own.any(axis=1), own.argmax(axis=1), ids.shape[1] - 1)
        keep = np.ones(ids.shape, bool)
        keep[np.arange(len(ids)), drop] = False
        sims = sims[keep].reshape(len(ids), -1)
        ids = ids[keep].reshape(len(ids), -1)
    sims = sims.astype(np.float64)
    sims[ids < 0] = np.nan
    if ids.shape[1] < k:  # a tiny index: pad to k
        pad = k - ids.shape[1]
        sims = np.pad(sims, ((0, 0), (0, pad)), constant_values=np.nan)
        ids = np.pad(ids, ((0, 0), (0, pad)), constant_values=-1)
    return sims, ids


def unusual_scores(index: faiss.Index, objids: np.ndarray, features: np.ndarray, k: int, batch: int = 4096) -> np.ndarray:
    """1 - the similarity of each galaxy's k-th nearest other galaxy in ``index`` (NaN when the index holds k or fewer)."""
    out = np.empty(len(objids))
    for start in range(0, len(objids), batch):
        sims, _ = search(index, features[start : start + batch], k, exclude=objids[start : start + batch])
        out[start : start + batch] = 1.0 - sims[:, k - 1]
    return out


def exact_index(objids: np.ndarray, features: np.ndarray) -> faiss.Index:
    """A brute-force index (exact neighbours) for a small reference set: the labelled training galaxies."""
    x = normalised(features)
    index = faiss.IndexIDMap2(faiss.IndexFlatIP(x.shape[1]))
    index.add_with_ids(x, np.asarray(objids, dtype=np.int64))
    return index


EXACT_UP_TO = 50_000  # reference galaxies searched exactly; above, through an HNSW graph (a search of all would take hours)


def reference_index(objids: np.ndarray, features: np.ndarray) -> faiss.Index:
    """The index of a reference set (the labelled training galaxies): exact while small, HNSW when large."""
    if len(objids) <= EXACT_UP_TO:
        return exact_index(objids, features)
    return build_index(objids, features, IndexSettings())


MERGER_METHODS = ("knn", "examples")


def merger_likeness(
    features: np.ndarray,
    objids: np.ndarray,
    reference_objids: np.ndarray,
    reference_features: np.ndarray,
    reference_is_merger: np.ndarray,
    method: str,
    k: int,
) -> np.ndarray:
    """Each galaxy's likeness to the reference (training) mergers, in [0, 1] for ``knn``, [-1, 1] for ``examples``.

    ``knn``: among the k reference galaxies most like it (itself left out), the share of mergers, each weighted by its
    similarity. ``examples``: the mean similarity of the k reference mergers most like it (itself left out)."""
    if method not in MERGER_METHODS:
        raise ValueError(f"merger likeness method {method!r}: one of {', '.join(MERGER_METHODS)}")
    reference_is_merger = np.asarray(reference_is_merger, bool)
    if method == "knn":
        index = reference_index(reference_objids, reference_features)
        merger_ids = set(np.asarray(reference_objids, np.int64)[reference_is_merger].tolist())
    else:
        if not reference_is_merger.any():
            return np.full(len(objids), np.nan)
        index = reference_index(np.asarray(reference_objids)[reference_is_merger], np.asarray(reference_features)[reference_is_merger])
    sims, ids = search(index, features, k, exclude=objids)
    if method == "examples":
        found = np.isfinite(sims)
        with np.errstate(invalid="ignore"):
            return np.where(found.any(axis=1), np.nansum(sims, axis=1) / found.sum(axis=1), np.nan)
    weights = np.clip(np.nan_to_num(sims, nan=0.0), 0.0, None)
    is_merger = np.isin(ids, list(merger_ids))
    total = weights.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, (weights * is_merger).sum(axis=1) / total, np.nan)


def neighbour_purity(
    query_features: np.ndarray,
    query_classes: np.ndarray,
    reference_features: np.ndarray,
    reference_classes: np.ndarray,
    classes: tuple[str, ...],
    k: int = 10,
) -> dict:
    """The share of each query galaxy's k nearest reference galaxies (exact) with the query's own class: per class and
    balanced (the mean over ``classes``), the yardstick of a representation."""
    index = exact_index(np.arange(len(reference_features)), reference_features)
    _, ids = search(index, query_features, k)
    reference_classes = np.asarray(reference_classes)
    query_classes = np.asarray(query_classes)
    same = reference_classes[ids] == query_classes[:, None]
    share = same.mean(axis=1)
    per_class = {c: float(share[query_classes == c].mean()) if (query_classes == c).any() else None for c in classes}
    present = [v for v in per_class.values() if v is not None]
    return {"per_class": per_class, "balanced": float(np.mean(present)) if present else None, "k": k}


def pca_2d(features: np.ndarray, sample: int = 50_000, seed: int = 0) -> np.ndarray:
    """The representations projected on their first two principal axes (scikit-learn's PCA, fitted on at most
    ``sample`` rows), (n, 2), each axis pointing the way that makes its first coefficient positive, so that the same
    data always gives the same picture."""
    from sklearn.decomposition import PCA

    x = normalised(features).astype(np.float64)
    rng = np.random.default_rng(seed)
    fit = x[rng.choice(len(x), sample, replace=False)] if len(x) > sample else x
    pca = PCA(n_components=2, svd_solver="full").fit(fit)
    flip = np.sign(pca.components_[:, :1] + 1e-12).T
    return pca.transform(x) * flip
