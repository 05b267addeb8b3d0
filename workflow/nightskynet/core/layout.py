"""Where a run's files lie, written once: the workflow's rules name their outputs from here, and every command that
reads a finished run (``similar``, ``explore``) finds them here.

Every output of a run lies under ``results/<run>/``, ``<run>`` the config key ``run`` or, by default, the source
(``demo``, ``sdss``), so a run of another source or another name never touches this one's files. The caches under
``results/cache/`` are shared by every run, keyed by what they hold.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

RESULTS = "results"

# relative to the run's folder; {chunk} and {shard} are the chunk and shard jobs' numbers
QUERY_CATALOG = "catalog/gz1_votes.csv"
QUERY_CATALOG_FITS = "catalog/gz1_votes.fits"
LABELS = "labels/labels.csv"
LABELS_FITS = "labels/labels.fits"
LABELS_SUMMARY = "labels/summary.json"
CHUNK_TAR = "images/chunk_{chunk}.tar"
CHUNK_MANIFEST = "images/chunk_{chunk}.manifest.csv"
MODEL = "model/model.pt"
HISTORY = "model/history.csv"
CATALOG = "morphology/catalog.csv"
CATALOG_FITS = "morphology/catalog.fits"
COMPARISON = "morphology/comparison.json"
REPRESENTATIONS = "morphology/representations.npy"
REPRESENTATIONS_OBJID = "morphology/representations_objid.npy"
INDEX = "similarity/index.faiss"
SCORES = "similarity/scores.csv"
SIMILARITY_SUMMARY = "similarity/summary.json"
REPORT = "report/report.html"
MARKS = "explore/marks.ecsv"  # the explorer's marks: the one file it writes into a run


def run_name(config: dict) -> str:
    """The run's name: config ``run``, or the source's name when it is empty."""
    return config["run"] or config["source"]


def run_folder(config: dict) -> str:
    """``results/<run>``, relative to the checkout (as the workflow's paths are)."""
    return f"{RESULTS}/{run_name(config)}"


@dataclass(frozen=True)
class RunFiles:
    """The files of one finished run that commands read after the workflow, under its folder."""

    folder: Path

    def path(self, relative: str) -> Path:
        return self.folder / relative

    @property
    def catalog(self) -> Path:
        return self.path(CATALOG)

    @property
    def representations(self) -> Path:
        return self.path(REPRESENTATIONS)

    @property
    def representations_objid(self) -> Path:
        return self.path(REPRESENTATIONS_OBJID)

    @property
    def index(self) -> Path:
        return self.path(INDEX)

    @property
    def scores(self) -> Path:
        return self.path(SCORES)

    @property
    def model(self) -> Path:
        return self.path(MODEL)

    @property
    def labels(self) -> Path:
        return self.path(LABELS)

    @property
    def marks(self) -> Path:
        return self.path(MARKS)

    @property
    def comparison(self) -> Path:
        return self.path(COMPARISON)

    def views(self) -> int:
        """The D4 views the run's catalog and representations were averaged over (its morphology summary says)."""
        import json

        path = self.comparison
        if not path.is_file():
            from .errors import InputError

            raise InputError(f"{path}: no such file; run the workflow's morphology rule first (snakemake morphology)")
        summary = json.loads(path.read_text())
        return int(summary["views"]) if "views" in summary else (8 if summary.get("tta", True) else 1)

    def chunk_tars(self) -> list[Path]:
        """Every chunk tar of the run, in chunk order."""
        pattern = CHUNK_TAR.replace("{chunk}", "*")
        return sorted(self.folder.glob(pattern), key=lambda p: int(p.stem.rsplit("_", 1)[-1]))
