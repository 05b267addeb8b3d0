"""A finished run's galaxies in memory, for the explorer: the catalog's columns as arrays, their scores, the
representations (memory-mapped), the similarity index, and the queries the pages ask of them.

Everything is read once at start; a request only indexes arrays. Lists are sorted by orders computed once per
sortable column (a request filters an order and takes a page: no sort per request), positions are searched by
great-circle distance over the catalog, and neighbours come from the run's faiss index.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ..analysis.neighbours import read_index, search
from ..analysis.representations import catalog_with_representations
from ..core.errors import InputError
from ..core.layout import RunFiles
from ..core.vocabulary import CATALOG_SPLITS, CLASS_NAMES, CLASSIFIED, HUMAN_COLUMNS, PROB_COLUMNS, STATUSES

log = logging.getLogger(__name__)

COLUMNS = ("objid", "ra", "dec", "nvote", "split", "status", "predicted", "merger_candidate", *PROB_COLUMNS, *HUMAN_COLUMNS)
SCORES = ("unusual", "merger_likeness")
# the lists a person pages through: what each ranks by (highest first), in words
LISTS = {
    "unusual": "the most unusual (no close company among the other galaxies)",
    "merger_likeness": "the most like the training mergers, by example",
    "disagreement": "the largest disagreements with the volunteers (the largest gap between a class's probability and its vote fraction)",
    "p_merger": "the highest merger probability",
    **{column: f"the highest {column.removeprefix('p_').replace('_', '-')} probability" for column in PROB_COLUMNS[:3]},
}


class QueryError(ValueError):
    """A request the explorer cannot answer as asked (a malformed or out-of-range parameter); its message says why."""


@dataclass(frozen=True)
class Filters:
    """What a list keeps: a predicted class, a split, a status, and a range of one class's probability."""

    predicted: str | None = None
    split: str | None = None
    status: str | None = None
    p_class: str | None = None
    p_min: float = 0.0
    p_max: float = 1.0


class RunData:
    """One run's catalog, scores, representations and index (``load``), and what the explorer asks of them."""

    def __init__(self, run: RunFiles, table: pd.DataFrame, features: np.ndarray, index, scores: pd.DataFrame):
        self.run = run
        self.n = len(table)
        self.objid = table["objid"].to_numpy(np.int64)
        self.ra, self.dec = table["ra"].to_numpy(float), table["dec"].to_numpy(float)
        self.nvote = table["nvote"].to_numpy()
        self.split = table["split"].astype(str).to_numpy()
        self.status = table["status"].astype(str).to_numpy()
        self.predicted = table["predicted"].fillna("").astype(str).to_numpy()
        self.merger_candidate = table["merger_candidate"].astype(bool).to_numpy()
        self.p = table[list(PROB_COLUMNS)].to_numpy(np.float32)
        self.human = table[list(HUMAN_COLUMNS)].to_numpy(np.float32)
        self.unusual = scores["unusual"].to_numpy(np.float32)
        self.merger_likeness = scores["merger_likeness"].to_numpy(np.float32)
        self.features = features
        self.index = index
        self.unit = unit_rows(features)  # L2-normalised, zero where not classified: what the marks' model reads
        self.classified = (self.status == CLASSIFIED) & np.isfinite(self.p).all(axis=1)
        with np.errstate(invalid="ignore"):
            self.disagreement = np.nanmax(np.abs(self.p - self.human), axis=1, initial=-np.inf)
        self.disagreement[~np.isfinite(self.disagreement)] = np.nan
        self._row = pd.Index(self.objid)
        # for cone searches: unit vectors of every position
        ra, dec = np.radians(self.ra), np.radians(self.dec)
        self._xyz = np.stack([np.cos(dec) * np.cos(ra), np.cos(dec) * np.sin(ra), np.sin(dec)], axis=1).astype(np.float64)
        self._orders = {name: self._order(self.sort_values(name)) for name in LISTS}

    @classmethod
    def load(cls, run: RunFiles) -> RunData:
        """Read the run (refused in one line, naming the rule to run, when its similarity outputs are missing)."""
        for path, rule in (
            (run.catalog, "morphology"),
            (run.representations, "morphology"),
            (run.comparison, "morphology"),
            (run.index, "similarity"),
            (run.scores, "similarity"),
        ):
            if not path.is_file():
                raise InputError(
                    f"{run.folder} has no {path.relative_to(run.folder)}: run the workflow's {rule} rule first (snakemake {rule})"
                )
        table, features = catalog_with_representations(
            run.catalog, run.representations, run.representations_objid, mmap=True, columns=COLUMNS
        )
        scores = pd.read_csv(run.scores, dtype={"objid": "int64"}, usecols=["objid", *SCORES])
        if not np.array_equal(scores["objid"].to_numpy(), table["objid"].to_numpy()):
            raise InputError(f"{run.scores}: its rows are not the catalog's; run the similarity rule again (snakemake similarity)")
        index = read_index(run.index)
        if index.ntotal and index.d != features.shape[1]:
            raise InputError(
                f"{run.index}: {index.d} features, the catalog's representations {features.shape[1]}: not this catalog's index"
            )
        log.info("%s: %d galaxies, %d in the index", run.folder, len(table), index.ntotal)
        return cls(run, table, features, index, scores)

    # ---- single galaxies
    def rows_of(self, objids: list[int]) -> np.ndarray:
        """The rows of those of ``objids`` the catalog holds."""
        rows = self._row.get_indexer(objids)
        return rows[rows >= 0].astype(np.int64)

    def row_of(self, objid: int) -> int:
        rows = self._row.get_indexer([objid])
        if rows[0] < 0:
            raise KeyError(objid)
        return int(rows[0])

    def galaxy(self, row: int) -> dict:
        """Everything the catalog and the scores say of one galaxy."""
        p = {c: _number(self.p[row, k]) for k, c in enumerate(CLASS_NAMES)}
        human = {c: _number(self.human[row, k]) for k, c in enumerate(CLASS_NAMES)}
        return {
            "objid": str(self.objid[row]),
            "ra": float(self.ra[row]),
            "dec": float(self.dec[row]),
            "nvote": int(self.nvote[row]) if np.isfinite(self.nvote[row]) else None,
            "split": str(self.split[row]),
            "status": str(self.status[row]),
            "status_meaning": STATUSES.get(str(self.status[row]), ""),
            "predicted": str(self.predicted[row]),
            "merger_candidate": bool(self.merger_candidate[row]),
            "p": p,
            "human": human,
            "unusual": _number(self.unusual[row]),
            "merger_likeness": _number(self.merger_likeness[row]),
            "disagreement": _number(self.disagreement[row]),
        }

    def neighbours(self, row: int, k: int) -> list[dict]:
        """The k galaxies most like this one (never itself), most similar first; none for a galaxy without a class."""
        if not self.classified[row]:
            return []
        return self.like(np.asarray(self.features[row : row + 1], dtype=np.float32), k, exclude=int(self.objid[row]))

    def like(self, vector: np.ndarray, k: int, exclude: int | None = None) -> list[dict]:
        """The k galaxies whose representation is most like ``vector`` (1, F), most similar first."""
        sims, ids = search(self.index, vector, k, exclude=None if exclude is None else np.array([exclude]))
        out = []
        for sim, objid in zip(sims[0], ids[0], strict=True):
            if objid >= 0:
                out.append({**self.summary(self.row_of(int(objid))), "similarity": round(float(sim), 4)})
        return out

    def summary(self, row: int) -> dict:
        """What a list or a grid shows of a galaxy."""
        return {
            "objid": str(self.objid[row]),
            "ra": round(float(self.ra[row]), 6),
            "dec": round(float(self.dec[row]), 6),
            "predicted": str(self.predicted[row]),
            "status": str(self.status[row]),
            "split": str(self.split[row]),
            "p": {c: _number(self.p[row, k]) for k, c in enumerate(CLASS_NAMES)},
            "human_merger": _number(self.human[row, CLASS_NAMES.index("merger")]),
            "unusual": _number(self.unusual[row]),
            "merger_likeness": _number(self.merger_likeness[row]),
            "disagreement": _number(self.disagreement[row]),
        }

    # ---- positions
    def cone(self, ra: float, dec: float, radius_arcsec: float, limit: int) -> list[dict]:
        """The galaxies within ``radius_arcsec`` of (ra, dec), nearest first, at most ``limit``; each with its separation."""
        ra0, dec0 = np.radians(ra), np.radians(dec)
        centre = np.array([np.cos(dec0) * np.cos(ra0), np.cos(dec0) * np.sin(ra0), np.sin(dec0)])
        cos_limit = np.cos(np.radians(radius_arcsec / 3600.0))
        dots = self._xyz @ centre
        rows = np.flatnonzero(dots >= cos_limit)
        rows = rows[np.argsort(-dots[rows], kind="stable")][:limit]
        seps = np.degrees(np.arccos(np.clip(dots[rows], -1, 1))) * 3600
        return [{**self.summary(int(r)), "separation_arcsec": round(float(s), 2)} for r, s in zip(rows, seps, strict=True)]

    # ---- lists
    def sort_values(self, name: str) -> np.ndarray:
        if name == "unusual":
            return self.unusual
        if name == "merger_likeness":
            return self.merger_likeness
        if name == "disagreement":
            return self.disagreement
        return self.p[:, PROB_COLUMNS.index(name)]

    @staticmethod
    def _order(values: np.ndarray) -> np.ndarray:
        """Rows by value, highest first, NaN last (ties: catalog order)."""
        finite = np.isfinite(values)
        rows = np.flatnonzero(finite)
        return np.concatenate([rows[np.argsort(-values[rows], kind="stable")], np.flatnonzero(~finite)])

    def page(self, name: str, filters: Filters, page: int, per_page: int, ascending: bool = False) -> tuple[list[dict], int]:
        """(one page of the list ``name`` with ``filters``, the number of galaxies the list holds)."""
        if name not in LISTS:
            raise QueryError(f"list {name!r}: one of {', '.join(LISTS)}")
        order = self._orders[name]
        keep = self.mask(filters)
        rows = order[keep[order]]
        if ascending:
            values = self.sort_values(name)[rows]
            finite = np.isfinite(values)
            rows = np.concatenate([rows[finite][::-1], rows[~finite]])
        total = len(rows)
        start = (page - 1) * per_page
        return [self.summary(int(r)) for r in rows[start : start + per_page]], total

    def mask(self, filters: Filters) -> np.ndarray:
        keep = np.ones(self.n, dtype=bool)
        if filters.predicted:
            if filters.predicted not in CLASS_NAMES:
                raise QueryError(f"predicted {filters.predicted!r}: one of {', '.join(CLASS_NAMES)}")
            keep &= self.predicted == filters.predicted
        if filters.split:
            if filters.split not in CATALOG_SPLITS:
                raise QueryError(f"split {filters.split!r}: one of {', '.join(CATALOG_SPLITS)}")
            keep &= self.split == filters.split
        if filters.status:
            if filters.status not in STATUSES:
                raise QueryError(f"status {filters.status!r}: one of {', '.join(STATUSES)}")
            keep &= self.status == filters.status
        if filters.p_class:
            if filters.p_class not in CLASS_NAMES:
                raise QueryError(f"p_class {filters.p_class!r}: one of {', '.join(CLASS_NAMES)}")
            if not 0 <= filters.p_min <= filters.p_max <= 1:
                raise QueryError(f"p_min {filters.p_min:g}, p_max {filters.p_max:g}: a range within [0, 1], the smaller first")
            values = self.p[:, CLASS_NAMES.index(filters.p_class)]
            with np.errstate(invalid="ignore"):
                keep &= (values >= filters.p_min) & (values <= filters.p_max)
        return keep


def unit_rows(features: np.ndarray, block: int = 200_000) -> np.ndarray:
    """The representations scaled to unit length (float32), block by block from a memory map; a row that is NaN (no
    class) becomes zeros."""
    out = np.empty(features.shape, dtype=np.float32)
    for start in range(0, len(features), block):
        x = np.asarray(features[start : start + block], dtype=np.float32)
        norms = np.linalg.norm(x, axis=1, keepdims=True)
        bad = ~(np.isfinite(norms[:, 0]) & (norms[:, 0] > 0))
        norms[bad] = 1.0
        part = out[start : start + block]
        np.divide(x, norms, out=part)  # in place: no copy of the block beyond the one read
        part[bad] = 0.0
    return out


def _number(value) -> float | None:
    """A JSON number, or None for NaN."""
    value = float(value)
    return round(value, 5) if np.isfinite(value) else None


def objid_in(text: str, data: RunData) -> int:
    """The row of the objid ``text`` names; QueryError when it is not a whole number or not in the catalog."""
    try:
        objid = int(text)
    except (TypeError, ValueError):
        raise QueryError(f"objid {text!r} is not a whole number") from None
    try:
        return data.row_of(objid)
    except KeyError:
        raise QueryError(f"objid {objid} is not in this run's catalog ({data.n:,} galaxies)") from None


def run_folder_exists(folder: Path) -> None:
    if not folder.is_dir():
        raise InputError(f"{folder}: no such run folder; give --results results/<run> of a finished run")
