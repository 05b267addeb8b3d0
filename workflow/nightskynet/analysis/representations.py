"""Each galaxy's representation on disk: the network's penultimate features, averaged over the views its
probabilities are (the first ``morphology.views`` D4 rotations and flips).

A table's representations are two NumPy arrays beside it, so that any tool reads them without this
package (``numpy.load``; ``mmap_mode="r"`` for a catalog of a million galaxies):

* ``<name>.npy``: float32, shape (rows, features), row i the representation of the table's row i;
  a row without probabilities (a star, a trail, no cutout) is NaN;
* ``<name>_objid.npy`` (``objid_path``): int64, shape (rows,), the objid of each row, the table's own objid column.

Whoever reads them checks the objids against the table's (``read``): a representation that is not its
galaxy's is the worst answer this package could give, so a mismatch is an error, never a guess.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ..core.errors import InputError
from ..core.files import write_npy_atomic
from ..core.vocabulary import HUMAN_COLUMNS, PROB_COLUMNS

CATALOG_COLUMNS = ("objid", "ra", "dec", "nvote", "split", "status", "predicted", *PROB_COLUMNS, *HUMAN_COLUMNS)


def objid_path(path: str | Path) -> Path:
    """The objid array beside a representations array: ``representations.npy`` -> ``representations_objid.npy``."""
    path = Path(path)
    return path.with_name(f"{path.stem}_objid.npy")


def write(path: str | Path, objid_file: str | Path, objids: np.ndarray, features: np.ndarray) -> None:
    """The pair of arrays for a table whose rows have ``objids``: ``features`` (rows, F), NaN rows for the unclassified,
    to ``path`` and the objids to ``objid_file``."""
    objids = np.asarray(objids, dtype=np.int64)
    features = np.asarray(features, dtype=np.float32)
    if features.ndim != 2 or len(features) != len(objids):
        raise ValueError(f"{len(objids)} objids but representations of shape {features.shape}")
    write_npy_atomic(objid_file, objids)
    write_npy_atomic(path, np.ascontiguousarray(features))


def read(
    path: str | Path, objid_file: str | Path | None = None, objids: np.ndarray | None = None, mmap: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """(objids, representations) of ``path`` and its ``objid_file`` (default: ``objid_path(path)``); with ``objids``,
    checked to be exactly those rows in that order."""
    path = Path(path)
    objid_file = Path(objid_file) if objid_file is not None else objid_path(path)
    for p in (path, objid_file):
        if not p.is_file():
            raise InputError(f"{p}: no such file; the morphology stage writes the catalog's representations (run the workflow)")
    ids = np.load(objid_file)
    features = np.load(path, mmap_mode="r" if mmap else None)
    if ids.dtype != np.int64 or ids.ndim != 1 or features.ndim != 2 or len(features) != len(ids):
        raise InputError(f"{path}: {features.shape} representations for {ids.shape} objids; write them again (run the morphology stage)")
    if objids is not None:
        objids = np.asarray(objids, dtype=np.int64)
        if len(objids) != len(ids) or not np.array_equal(objids, ids):
            differ = len(ids) if len(objids) != len(ids) else int(np.flatnonzero(objids != ids)[0])
            raise InputError(
                f"{path}: its rows are not the catalog's ({len(ids)} representations for {len(objids)} rows; first difference at row "
                f"{differ}); the two were written by different runs: run the morphology stage again"
            )
    return ids, features


def catalog_with_representations(
    catalog_csv: str | Path, representations: str | Path, representations_objid: str | Path, mmap: bool = False, columns=CATALOG_COLUMNS
) -> tuple[pd.DataFrame, np.ndarray]:
    """(the morphology catalog's ``columns``, its representations row for row), checked to be the same galaxies."""
    table = pd.read_csv(
        catalog_csv,
        usecols=lambda c: c in columns,
        dtype={"objid": "int64", "split": str, "status": str, "predicted": str},
        keep_default_na=False,
        na_values={c: [""] for c in (*PROB_COLUMNS, *HUMAN_COLUMNS)},
    )
    _, features = read(representations, representations_objid, table["objid"].to_numpy(), mmap=mmap)
    return table, features
