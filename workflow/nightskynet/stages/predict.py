"""``nightskynet predict MODEL INPUT... -o OUT``: classify galaxies the network never saw.

INPUT is a folder of JPEG/PNG cutouts, one or more JPEG/PNG files (``a.jpg b.png``, ``cutouts/*.jpg``), or a
catalog with ``objid, ra, dec`` as CSV, ECSV, FITS or VOTable (by its extension; the columns under their usual
names, ``tables.USUAL_NAMES``, or named with options; ra/dec in decimal degrees or sexagesimal, ``positions``).

* A folder or image files: each image is taken to be a cutout framed like the ones the model was trained on
  (its field of view is in the model file and in the log), resampled whole to the training cutout's size
  (120 x 120 by default, as a default SkyServer cutout is), then centre-cropped to the network's input. A
  folder's images come in the order of their names, files in the order given (a file given twice: its second
  row is a ``duplicate``). Images smaller than ``MIN_IMAGE_PX`` on a side cannot hold a resolved galaxy
  (``too_small``); unreadable files are ``unreadable``; an image whose centre holds no galaxy is ``no_source``,
  ``point_source`` or ``artefact`` (``sources.inspect``).
* A catalog: every row's cutout is requested at its own position with the model's cutout
  geometry, through the scrape stage's client and its request-keyed cache, so a row's answer
  depends only on its position. An objid that appears at two different positions is refused,
  with the rows named: the output could not tell the two apart.

OUT (CSV, ECSV, FITS or VOTable by its extension; the last three with each column's unit and
description) has one row per input: ``source`` (the file name in the folder, the path as given, or the
objid as a 64-bit integer), the four calibrated class probabilities, ``predicted`` (the most probable
class), ``merger_candidate`` (p_merger at or above the model's merger threshold, chosen on the val split
for a target recall), ``status`` and ``note`` (``STATUSES``); for a catalog also ``ra, dec`` (degrees,
ICRS). Each galaxy's probabilities are the mean over the first ``views`` D4 views (config predict.views). Bad input stops the
command with one line naming the row, the column and the value.

Speed: the network runs in ONNX Runtime on a CPU (``inference.open_engine``; PyTorch only on a GPU),
which starts in a tenth of a second, so a few images take under a second from the command line;
images are read and looked at in worker processes while the engine works on the batch before
(``looking.classify_cutouts``, as the morphology stage does).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ..core.architecture import model_geometry
from ..core.errors import InputError
from ..core.files import write_npy_atomic
from ..core.prediction_columns import prediction_columns
from ..core.tables import FORMAT_NAMES, ColumnInfo, table_format, write_table
from ..core.vocabulary import CLASS_NAMES, PROB_COLUMNS, STATUSES
from ..images.cutouts import IMAGE_SUFFIXES, image_files
from ..images.sources import psf_fwhm_px
from ..net.looking import Cutout
from ..sky.input_catalog import read_catalog

log = logging.getLogger(__name__)


@dataclass
class InputRow:
    """One input of ``predict`` (a file of the folder, a row of the catalog) and what became of it: ``status`` is
    ``classified`` or why not (STATUSES), ``note`` what reading it took or why it was refused."""

    source: str | int
    path: Path | None  # the image to classify; None when there is none (the status says why)
    status: str = ""
    note: str = ""
    petro_r90: float = float("nan")


def folder_rows(folder: Path) -> list[InputRow]:
    """A row for every JPEG/PNG entry of the folder, sorted by name; the other files are counted in the log."""
    other = sorted(p.name for p in folder.iterdir() if p.is_file() and p.suffix.lower() not in IMAGE_SUFFIXES)
    if other:
        log.info("ignored %d files that are not JPEG/PNG by name, e.g. %s", len(other), other[0])
    return [InputRow(p.name, p) for p in image_files(folder)]


def catalog_rows(catalog: pd.DataFrame, settings: dict, geometry: dict, client: dict, cache_dir: Path) -> list[InputRow]:
    """A row for every row of the catalog, its cutout fetched into the request-keyed cache (once for a row repeated
    at the same position, whose later copies are ``duplicate``)."""
    from ..sky.cutout_client import cutout_cache, download_all
    from ..sky.sky_source import skyserver_base_url

    repeated = catalog.duplicated(subset=["objid", "ra", "dec"], keep="first").to_numpy()
    unique = catalog[~repeated]
    cache = cutout_cache(settings, cache_dir)
    with skyserver_base_url(settings) as base_url:
        import asyncio  # here, not at the top: 0.1 s of every command's start-up

        outcomes = asyncio.run(download_all(base_url, unique, cache, geometry, client, job=f"predict-pid{os.getpid()}"))
    first_row = {}
    rows = []
    for outcome, index in zip(outcomes, unique.index, strict=True):
        got = outcome.status in ("ok", "cached")
        row = InputRow(int(outcome.objid), outcome.path if got else None, petro_r90=float(catalog.at[index, "petroR90_r"]))
        if not got:
            row.status, row.note = outcome.status, outcome.reason
        first_row[(row.source, catalog.at[index, "ra"], catalog.at[index, "dec"])] = index
        rows.append(row)
    by_index = dict(zip(unique.index, rows, strict=True))
    out = []
    for index, again in zip(catalog.index, repeated, strict=True):
        if again:
            key = (int(catalog.at[index, "objid"]), catalog.at[index, "ra"], catalog.at[index, "dec"])
            note = f"the same objid and position as input row {first_row[key] + 1} (rows counted from 1)"
            out.append(InputRow(key[0], None, "duplicate", note))
        else:
            out.append(by_index[index])
    return out


INPUT_KINDS = f"a folder of JPEG/PNG cutouts, JPEG/PNG files, or a catalog (objid, ra, dec) in {FORMAT_NAMES}"


@dataclass(frozen=True)
class Inputs:
    """What INPUT names: a folder, a catalog, or image files (each as given, in the order given)."""

    folder: Path | None = None
    catalog: Path | None = None
    files: tuple[Path, ...] = ()

    @property
    def paths(self) -> list[Path]:
        return [self.folder] if self.folder else [self.catalog] if self.catalog else list(self.files)

    def __str__(self) -> str:
        return str(self.paths[0]) if len(self.paths) == 1 else f"the {len(self.files)} image files"


def expanded(given: list[str | Path]) -> list[Path]:
    """The paths as given, a pattern that names no file (``'cutouts/*.jpg'`` quoted, or a shell that left it as it was)
    replaced by the files it matches, sorted; a pattern that matches nothing is an error."""
    import glob

    out = []
    for item in given:
        path = Path(item)
        if not path.exists() and not path.is_symlink() and glob.has_magic(str(item)):
            matches = sorted(glob.glob(str(item)))
            if not matches:
                raise InputError(f"{item}: no file matches this pattern; INPUT must be {INPUT_KINDS}")
            out += [Path(m) for m in matches]
        else:
            out.append(path)
    return out


def classify_inputs(given: list[str | Path]) -> Inputs:
    """Inputs of INPUT (one folder, one catalog, or any number of image files), checked; a line naming the first problem."""
    paths = expanded(given)
    for path in paths:
        if not path.exists() and not path.is_symlink():
            raise InputError(f"{path} does not exist; INPUT must be {INPUT_KINDS}")
    if len(paths) == 1 and paths[0].is_dir():
        return Inputs(folder=paths[0])
    if len(paths) == 1 and table_format(paths[0]) and paths[0].suffix.lower() not in IMAGE_SUFFIXES:
        return Inputs(catalog=paths[0])
    for path in paths:
        if path.is_dir() or table_format(path):
            raise InputError(f"{path}: a folder or a catalog is INPUT alone; give it by itself, or give image files only")
        if path.suffix.lower() not in IMAGE_SUFFIXES:
            kind = path.suffix or "file without extension"
            raise InputError(f"{path}: INPUT must be {INPUT_KINDS}, not a {kind}")
    return Inputs(files=tuple(paths))


def file_rows(files: tuple[Path, ...]) -> list[InputRow]:
    """A row for every file given, in the order given, named as given; a file given again is a ``duplicate``."""
    first: dict[Path, int] = {}
    rows = []
    for i, path in enumerate(files):
        key = path.resolve() if path.exists() else path.absolute()
        if key in first:
            note = f"the same file as input {first[key] + 1} (counted from 1)"
            rows.append(InputRow(str(path), None, "duplicate", note))
        else:
            first[key] = i
            rows.append(InputRow(str(path), path))
    return rows


def check_output_path(out: Path) -> None:
    if out.is_dir():
        raise InputError(f"-o {out} is a folder; give the path of the table to write, e.g. {out / 'predictions.csv'}")
    if table_format(out) is None:
        raise InputError(f"-o {out}: the output is a table; name it {FORMAT_NAMES}")
    parent = out.parent if str(out.parent) else Path(".")
    if parent.exists() and not parent.is_dir():
        raise InputError(f"-o {out}: {parent} is not a folder")


def _is_one_of(path: Path, others: list[Path]) -> bool:
    return path.exists() and any(other.exists() and os.path.samefile(path, other) for other in others)


def check_representations_path(path: Path, inputs: Inputs, out: Path) -> None:
    if path.suffix.lower() != ".npy":
        raise InputError(f"--representations {path}: the representations are a NumPy array; name the file .npy")
    if path.is_dir():
        raise InputError(f"--representations {path} is a folder; give the path of the .npy to write")
    if _is_one_of(path, [*inputs.paths, out]):
        raise InputError(f"--representations {path} is an input or the output table; name another file")


def check_output(inputs: Inputs, out: Path) -> None:
    check_output_path(out)
    if _is_one_of(out, inputs.paths):
        what = "the input catalog" if inputs.catalog else "an input"
        raise InputError(f"-o {out} is {what} itself: writing the predictions there would destroy it; name another file")


def gather_inputs(inputs: Inputs, geometry: dict, settings: dict, client: dict, cache_dir: Path, columns: dict):
    """(rows, positions or None): one InputRow per file of a folder, per file given, or per row of a catalog (its cutout
    downloaded)."""
    if inputs.folder is not None:
        return folder_rows(inputs.folder), None
    if inputs.files:
        return file_rows(inputs.files), None
    catalog = read_catalog(inputs.catalog, needs_radius=geometry["scale_mode"] == "adaptive", columns=columns)
    return catalog_rows(catalog, settings, geometry, client, cache_dir), catalog[["ra", "dec"]].reset_index(drop=True)


def cutout_batches(rows: list[InputRow], geometry: dict, batch: int) -> Iterator[tuple[np.ndarray, list[Cutout]]]:
    """(indices into ``rows``, their Cutouts) for each batch of the rows that have an image to read."""
    readable = [i for i, row in enumerate(rows) if row.path is not None]
    for start in range(0, len(readable), batch):
        indices = readable[start : start + batch]
        yield np.array(indices, dtype=np.int64), [Cutout(rows[i].path, psf_fwhm_px(geometry, rows[i].petro_r90)) for i in indices]


def classify(
    engine, info: dict, rows: list[InputRow], geometry: dict, crop_size: int, views: int, batch_size: int, threads: int
) -> tuple[np.ndarray, np.ndarray]:
    """((N, 4) calibrated probabilities, (N, F) representations: the network's penultimate features averaged over the
    views as the probabilities are), NaN where not classified; every row read gets its status and note. The model's
    engine (``inference.open_engine``: ONNX Runtime on a CPU, no PyTorch to start) over batches that worker processes
    read and look at while it works on the batch before (``looking.classify_cutouts``, as the morphology stage does),
    with a progress bar."""
    from tqdm import tqdm

    from ..net.inference import CPU_BATCH, Calibration
    from ..net.looking import classify_cutouts, default_workers

    batch = min(batch_size, CPU_BATCH) if engine.on_cpu else batch_size
    probs = np.full((len(rows), len(CLASS_NAMES)), np.nan)
    features: np.ndarray | None = None
    workers = default_workers(threads, len(rows), batch)
    batches = cutout_batches(rows, geometry, batch)
    stream = classify_cutouts(engine, Calibration.of(info), batches, geometry["size"], crop_size, views, workers)
    with tqdm(total=len(rows), desc="classifying", unit="img", mininterval=2.0, disable=len(rows) <= batch) as bar:
        for indices, looked, answers in stream:
            for i, status, note in zip(indices, looked.status, looked.notes, strict=True):
                rows[i].status, rows[i].note = status, note
            done = indices[looked.classified]
            probs[done] = answers.probabilities
            if features is None:
                features = np.full((len(rows), answers.features.shape[1]), np.nan, np.float32)
            features[done] = answers.features
            bar.update(len(indices))
    return probs, features if features is not None else np.zeros((len(rows), 0), np.float32)


def column_info(from_catalog: bool, views_averaged: int, threshold: float | None) -> dict[str, ColumnInfo]:
    """Units and descriptions of the predictions table's columns (kept in ECSV, FITS and VOTable outputs)."""
    views = f"mean over {views_averaged} D4 views" if views_averaged > 1 else "one view"
    info = {
        "source": ColumnInfo(
            None, "objid of the catalog row" if from_catalog else "the image: its file name in the folder, or its path as given"
        ),
        "predicted": ColumnInfo(None, "the most probable class; empty when not classified"),
        "merger_candidate": ColumnInfo(
            None,
            f"p_merger at or above the model's merger threshold ({threshold:.4g})"
            if threshold is not None
            else "always false: the model has no merger threshold (its val split held no merger)",
        ),
        "status": ColumnInfo(None, "classified, or why not: " + ", ".join(k for k in STATUSES if k != "classified")),
        "note": ColumnInfo(None, "what reading the image took (a grey or 16-bit image...), or why it was not classified"),
        "ra": ColumnInfo("deg", "right ascension (ICRS) of the cutout's centre"),
        "dec": ColumnInfo("deg", "declination (ICRS) of the cutout's centre"),
    }
    for name, column in zip(CLASS_NAMES, PROB_COLUMNS, strict=True):
        info[column] = ColumnInfo(None, f"calibrated probability of class {name} ({views}); empty when not classified")
    return info


def predictions_table(rows: list[InputRow], probs: np.ndarray, positions: pd.DataFrame | None, threshold: float | None) -> pd.DataFrame:
    """One row per input row, in input order: source, p_*, predicted, merger_candidate, status, note (+ ra, dec)."""
    sources = [r.source for r in rows]
    out = pd.concat(
        [
            pd.DataFrame({"source": np.array(sources, dtype=np.int64) if positions is not None else sources}),
            prediction_columns(probs, threshold, classified=np.array([r.status == "classified" for r in rows], dtype=bool)),
        ],
        axis=1,
    )
    out["status"] = [r.status for r in rows]
    out["note"] = [r.note for r in rows]
    if positions is not None:
        out["ra"], out["dec"] = positions["ra"].to_numpy(), positions["dec"].to_numpy()
    return out


def run(
    *,
    model_path: str | Path,
    input_path: str | Path | list[str | Path],
    out_csv: str | Path,
    settings: dict,
    client: dict,
    cache_dir: str | Path,
    views: int,
    threads: int,
    batch_size: int,
    device: str,
    columns: dict[str, str | None] | None = None,
    representations: str | Path | None = None,
) -> pd.DataFrame:
    """Classify ``input_path`` (a folder, a catalog, or a list of image files) with the model; write and return the
    predictions table (one row per input row, per image file given).

    ``representations``: also write there (a ``.npy``) each classified row's representation, the network's penultimate
    features averaged over the views the probabilities were: float32, one row per classified row of the table, in its order.

    ``settings``: the source (``source`` with ``sdss`` or ``demo``), read only for a catalog;
    ``client`` and ``cache_dir``: how a catalog's cutouts are fetched and where they are kept;
    ``columns``: a catalog's objid/ra/dec column names where they are not the usual ones. The
    output's format follows its extension (CSV, ECSV, FITS, VOTable). Raises InputError (after
    writing the table) when no input could be classified.
    """
    out_csv, model_path = Path(out_csv), Path(model_path)
    inputs = classify_inputs(input_path if isinstance(input_path, list) else [input_path])
    check_output(inputs, out_csv)
    if representations is not None:
        check_representations_path(Path(representations), inputs, out_csv)
    from ..net.inference import open_engine

    engine, saved = open_engine(model_path, device, threads)  # one read of the model file: its engine and what it says of itself
    geometry, crop_size = model_geometry(saved)
    log.info(
        "model %s: cutouts of %d x %d px at %s, network input %d x %d",
        *(model_path, geometry["size"], geometry["size"], _scale_text(geometry), crop_size, crop_size),
    )
    rows, positions = gather_inputs(inputs, geometry, settings, client, Path(cache_dir), columns or {})
    if not rows:
        raise InputError(f"{inputs}: no JPEG/PNG image in the folder; {out_csv} not written")
    probs, features = classify(engine, saved, rows, geometry, crop_size, views, batch_size, threads)
    for row in rows:
        if row.status != "classified":
            log.warning("not classified %s (%s): %s", row.source, row.status, row.note)
        elif row.note:
            log.warning("%s: %s", row.source, row.note)
    out = predictions_table(rows, probs, positions, saved.get("merger_threshold"))
    write_table(out_csv, out, column_info(positions is not None, views, saved.get("merger_threshold")))
    if representations is not None:
        classified = (out["status"] == "classified").to_numpy()
        write_npy_atomic(representations, np.ascontiguousarray(features[classified], dtype=np.float32))
        log.info("representations of the %d classified rows (%d features each) -> %s", classified.sum(), features.shape[1], representations)
    counts = out["status"].value_counts()
    summary = ", ".join(f"{status} {counts[status]}" for status in STATUSES if status in counts)
    if "classified" not in counts:
        raise InputError(
            f"{inputs}: nothing to classify: none of the {len(out)} inputs holds a galaxy ({summary}); {out_csv} says why for each"
        )
    log.info("predicted %d of %d inputs (%d D4 views) -> %s; %s", counts["classified"], len(out), views, out_csv, summary)
    return out


def _scale_text(geometry: dict) -> str:
    if geometry["scale_mode"] == "fixed":
        return f'{geometry["scale"]:g}"/px (a {geometry["scale"] * geometry["size"]:g}" field)'
    return f"{geometry['adaptive_k']:g} x petroR90_r per px"
