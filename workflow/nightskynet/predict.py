"""``python -m nightskynet predict MODEL INPUT -o OUT``: classify galaxies the network never saw.

INPUT is a folder of JPEG/PNG cutouts or a catalog with ``objid, ra, dec`` as CSV, ECSV, FITS or
VOTable (by its extension; the columns under their usual names, ``tables.USUAL_NAMES``, or named
with options; ra/dec in decimal degrees or sexagesimal, ``positions``).

* A folder: each image is taken to be a cutout framed like the ones the model was trained on (its
  field of view is in the model file and in the log), resampled whole to the training cutout's
  size (120 x 120 by default, as a default SkyServer cutout is), then centre-cropped to the
  network's input. Images smaller than ``MIN_IMAGE_PX`` on a side cannot hold a resolved galaxy:
  they are skipped, named and counted, as are unreadable files. An image whose centre holds no
  source brighter than its sky is not classified either (``no_galaxy`` in the log).
* A catalog: every row's cutout is requested at its own position with the model's cutout
  geometry, through the scrape stage's client and its request-keyed cache, so a row's answer
  depends only on its position. An objid that appears at two different positions is refused,
  with the rows named: the output could not tell the two apart.

OUT (CSV, ECSV, FITS or VOTable by its extension; the last three with each column's unit and
description) has one row per classified input: ``source`` (file name, or the objid as a 64-bit
integer), the four calibrated class probabilities, ``predicted`` (the most probable class) and
``merger_candidate`` (p_merger at or above the model's merger threshold, chosen on the val split
for a target recall); for a catalog also ``ra, dec`` (degrees, ICRS). Test-time augmentation (the
mean over the 8 D4 views) is on by default. Bad input stops the command with one line naming the
row, the column and the value.

Speed: up to ``numpy_network.SMALL_INPUT`` images are classified by the network in NumPy, on the
CPU, without importing PyTorch (which alone takes longer than the answer), so a few images take
about a second from the command line; more go through PyTorch (the configured device), read and
decoded in a background thread while the model works, as the catalog stage does. Both compute the
same probabilities to ~1e-6 (tests/test_predict.py).
"""

from __future__ import annotations

import asyncio
import logging
import os
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image, UnidentifiedImageError

from .architecture import model_geometry
from .classes import CLASS_NAMES
from .cutouts import IMAGE_SUFFIXES, central_sources, image_files, load_cutout
from .errors import InputError
from .numpy_network import SMALL_INPUT, ModelFileUnreadable, NumpyClassifier, read_model_file
from .prediction_columns import prediction_columns
from .tables import FORMAT_NAMES, ColumnInfo, TextTable, find_column, read_text_table, table_format, write_table

log = logging.getLogger(__name__)


def load_batch(paths: list[Path], size: int, crop_size: int) -> tuple[np.ndarray, np.ndarray, list[str | None]]:
    """(crops of the readable images, has_source for each crop, the reason each path failed or None), for one batch."""
    crops, errors = [], []
    for path in paths:
        try:
            crops.append(load_cutout(path, size, crop_size))
            errors.append(None)
        except (OSError, UnidentifiedImageError, ValueError, Image.DecompressionBombError) as err:
            errors.append(str(err))
    images = np.stack(crops) if crops else np.zeros((0, crop_size, crop_size, 3), np.uint8)
    return images, central_sources(images), errors


def folder_images(folder: Path) -> list[Path]:
    """The folder's JPEG/PNG files, sorted by name; the other files are counted in the log."""
    skipped_other = sorted(p.name for p in folder.iterdir() if p.is_file() and p.suffix.lower() not in IMAGE_SUFFIXES)
    if skipped_other:
        log.info("ignored %d files that are not JPEG/PNG by name, e.g. %s", len(skipped_other), skipped_other[0])
    return image_files(folder)


CATALOG_KEYS = ("objid", "ra", "dec", "petroR90_r")


def read_catalog(path: Path, needs_radius: bool, columns: dict[str, str | None] | None = None) -> pd.DataFrame:
    """The catalog's objid, ra, dec in degrees (and petroR90_r in arcsec), each value checked; one line naming the first bad one.

    ``path`` is CSV, ECSV, FITS or VOTable; ``columns`` maps objid/ra/dec to the user's column names
    (default: the usual names, ``tables.USUAL_NAMES``). Numeric columns with a unit are converted from it.
    """
    from .positions import check_angle_unit, position_problem, sky_coordinates  # astropy: only for a catalog, not at start-up

    table = read_text_table(path)
    columns = columns or {}
    needed = ["objid", "ra", "dec"] + (["petroR90_r"] if needs_radius else [])
    found = {key: find_column(table.names, key, columns.get(key), str(path)) for key in CATALOG_KEYS}
    missing = [key for key in needed if found[key] is None]
    if missing:
        extra = " (the model's cutouts are framed by each galaxy's petroR90_r)" if "petroR90_r" in missing else ""
        raise InputError(
            f"{path}: a catalog to predict needs columns {', '.join(needed)} (or their usual names, or --id-column, "
            f"--ra-column, --dec-column); missing {', '.join(missing)}{extra}. Its columns: {', '.join(table.names)}"
        )
    if table.n_rows == 0:
        raise InputError(f"{path}: the catalog has no rows")
    out = pd.DataFrame(index=range(table.n_rows))
    for key in CATALOG_KEYS:
        name = found[key]
        if name is None:
            continue
        unit = table.unit(name)
        if key in ("ra", "dec") and check_angle_unit(unit):
            raise InputError(f"{path}: column {name} {check_angle_unit(unit)}")
        parse = _cell_parser(key, unit)
        values = []
        for row, text in enumerate(table.text(name)):
            try:
                values.append(parse(text))
            except ValueError as err:
                raise InputError(f"{path}: {table.row_name(row)}, column {name}: {text!r} {err}") from None
        out[key] = np.array(values, dtype=np.int64 if key == "objid" else np.float64)
    for row, ra, dec in zip(out.index, out["ra"], out["dec"]):
        problem = position_problem(ra, dec)
        if problem:
            raise InputError(f"{path}: {table.row_name(row)}, column {found[problem[0]]}: {problem[1]}")
    coords = sky_coordinates(out["ra"], out["dec"])
    out["ra"], out["dec"] = coords.ra.deg, coords.dec.deg
    if "petroR90_r" not in out:
        out["petroR90_r"] = np.nan
    _refuse_ambiguous_objids(out, path, table)
    return out


def _cell_parser(key: str, unit: str | None):
    """How one cell of the ``key`` column becomes a value; each raises ValueError saying what is wrong."""
    from .positions import arcsec, decimal, parse_angle

    if key == "objid":
        return _parse_objid
    if key in ("ra", "dec"):
        return lambda text: parse_angle(text, key, unit)

    def radius(text: str) -> float:
        number = decimal(text)
        if number is None:
            raise ValueError("is not a number" if text else "is empty (a masked or missing value)")
        return arcsec(number, unit)

    return radius


def _parse_objid(text: str) -> int:
    from .positions import decimal

    if not text:
        raise ValueError("is empty (a masked or missing value)")
    try:
        value = int(text)  # exact for 64-bit SDSS objids, which a float would round
    except ValueError:
        if decimal(text) is not None:
            raise ValueError("is a floating-point value; objids need an integer column (a float cannot hold an SDSS objid)") from None
        raise ValueError("is not an integer") from None
    if not -(2**63) <= value < 2**63:
        raise ValueError("is outside the signed 64-bit range of an objid")
    return value


def _refuse_ambiguous_objids(frame: pd.DataFrame, path: Path, table: TextTable) -> None:
    positions = frame.groupby("objid")[["ra", "dec"]].nunique()
    clash = positions[(positions["ra"] > 1) | (positions["dec"] > 1)].index
    if len(clash):
        objid = clash[0]
        rows = [str(i + table.first_row) for i in frame.index[frame["objid"] == objid]]
        raise InputError(
            f"{path}: objid {objid} appears at different positions ({table.row_word}s {', '.join(rows)}); "
            f"{len(clash)} objid(s) are ambiguous like this. Give each galaxy its own objid."
        )


def download_catalog(
    catalog: pd.DataFrame, settings: dict, geometry: dict, client: dict, cache_dir: Path
) -> tuple[list, list[tuple[str, str]]]:
    """Fetch the catalog's cutouts into the request-keyed cache.

    Returns ((outcome, catalog row) for each cutout in hand, in catalog order; (objid, reason) for the others).
    """
    from .cutout_client import cutout_cache, download_all
    from .sky_source import skyserver_base_url

    cache = cutout_cache(settings, cache_dir)
    with skyserver_base_url(settings) as base_url:
        outcomes = asyncio.run(download_all(base_url, catalog, cache, geometry, client, job=f"predict-pid{os.getpid()}"))
    good = [(o, row) for row, o in enumerate(outcomes) if o.status in ("ok", "cached")]
    bad = [(str(o.objid), f"no cutout ({o.status}): {o.reason}") for o in outcomes if o.status not in ("ok", "cached")]
    return good, bad


INPUT_KINDS = f"a folder of JPEG/PNG cutouts or a catalog (objid, ra, dec) in {FORMAT_NAMES}"


def check_output_path(out: Path) -> None:
    if out.is_dir():
        raise InputError(f"-o {out} is a folder; give the path of the table to write, e.g. {out / 'predictions.csv'}")
    if table_format(out) is None:
        raise InputError(f"-o {out}: the output is a table; name it {FORMAT_NAMES}")
    parent = out.parent if str(out.parent) else Path(".")
    if parent.exists() and not parent.is_dir():
        raise InputError(f"-o {out}: {parent} is not a folder")


def check_paths(input_path: Path, out: Path) -> None:
    if not input_path.exists():
        raise InputError(f"{input_path} does not exist; INPUT must be {INPUT_KINDS}")
    if not (input_path.is_dir() or table_format(input_path)):
        kind = input_path.suffix or "file without extension"
        raise InputError(f"{input_path}: INPUT must be {INPUT_KINDS}, not a {kind}")
    check_output_path(out)


def gather_inputs(input_path: Path, geometry: dict, settings: dict, client: dict, cache_dir: Path, columns: dict):
    """(names, image paths, positions or None, skipped (name, reason)) for a folder or a catalog; a catalog's
    names are its objids, its images the downloaded cutouts in the request-keyed cache."""
    if input_path.is_dir():
        paths = folder_images(input_path)
        return [p.name for p in paths], paths, None, []
    catalog = read_catalog(input_path, needs_radius=geometry["scale_mode"] == "adaptive", columns=columns)
    outcomes, bad = download_catalog(catalog, settings, geometry, client, cache_dir)
    names = [int(o.objid) for o, _ in outcomes]
    positions = catalog.loc[[row for _, row in outcomes], ["ra", "dec"]].reset_index(drop=True)
    return names, [o.path for o, _ in outcomes], positions, bad


NO_GALAXY = "no_galaxy: no source brighter than the sky at the centre of the image"


def classify_paths(batches_classified, n: int):
    """(probabilities (N, 4), NaN rows where not classified; the reason each image was not, or None) from
    ((start, (crops, has_source, errors)), probabilities of the crops with a source) per batch."""
    probs = np.full((n, len(CLASS_NAMES)), np.nan)
    reasons: list[str | None] = [None] * n
    for (start, (_, source, errors)), p in batches_classified:
        rows = start + np.flatnonzero([e is None for e in errors])
        probs[rows[source]] = p
        for k, error in enumerate(errors):
            reasons[start + k] = error
        for row in rows[~source]:
            reasons[row] = NO_GALAXY
    return probs, reasons


def loaded_batches(paths: list[Path], size: int, crop: int, batch: int):
    for start in range(0, len(paths), batch):
        yield start, load_batch(paths[start : start + batch], size, crop)


def with_source(batch) -> np.ndarray:
    """The crops of a ``loaded_batches`` item that hold a source: what the model classifies."""
    _, (crops, source, _) = batch
    return crops[source]


def classify_with_numpy(saved: dict, paths: list[Path], size: int, crop: int, tta: bool):
    """A handful of images: the network in NumPy (``numpy_network``), no PyTorch to start."""
    classifier = NumpyClassifier(saved)
    done = ((b, classifier.probabilities(with_source(b), tta)) for b in loaded_batches(paths, size, crop, SMALL_INPUT))
    return classify_paths(done, len(paths))


def classify_with_torch(model_path, paths: list[Path], size: int, crop: int, tta: bool, device: str, threads: int, batch_size: int):
    """Many images: PyTorch, images read and decoded in a background thread while the model works
    on the batch before (``inference.classify_stream``, as the catalog stage does)."""
    import torch

    from .inference import CPU_BATCH, classify_stream, pick_device
    from .model import load_model

    torch.set_num_threads(max(1, threads))
    torch_device = pick_device(device)
    model, _ = load_model(model_path, torch_device)
    batch = min(batch_size, CPU_BATCH) if torch_device.type == "cpu" else batch_size
    done = classify_stream(model, loaded_batches(paths, size, crop, batch), with_source, torch_device, tta)
    return classify_paths(done, len(paths))


def read_saved(model_path: Path) -> dict:
    """What the model file holds, read without PyTorch; a file that reader cannot read goes to ``model.load_model``,
    which names what is wrong with it (or reads it)."""
    try:
        saved = read_model_file(model_path)
        if isinstance(saved, dict) and {"network", "architecture", "input_size", "state_dict", "cutout"} <= set(saved):
            return saved
    except ModelFileUnreadable:
        pass
    from .model import load_model

    return load_model(model_path)[1]


def column_info(from_catalog: bool, tta: bool, threshold: float | None) -> dict[str, ColumnInfo]:
    """Units and descriptions of the predictions table's columns (kept in ECSV, FITS and VOTable outputs)."""
    views = "mean over the 8 D4 views" if tta else "one view"
    info = {
        "source": ColumnInfo(None, "objid of the catalog row" if from_catalog else "file name of the cutout"),
        "predicted": ColumnInfo(None, "the most probable class"),
        "merger_candidate": ColumnInfo(
            None,
            f"p_merger at or above the model's merger threshold ({threshold:.4g})"
            if threshold is not None
            else "always false: the model has no merger threshold (its val split held no merger)",
        ),
        "ra": ColumnInfo("deg", "right ascension (ICRS) of the cutout's centre"),
        "dec": ColumnInfo("deg", "declination (ICRS) of the cutout's centre"),
    }
    for name in CLASS_NAMES:
        info[f"p_{name}"] = ColumnInfo(None, f"calibrated probability of class {name} ({views})")
    return info


def run(
    model_path: str | Path,
    input_path: str | Path,
    out_csv: str | Path,
    settings: dict,
    client: dict,
    cache_dir: str | Path,
    tta: bool = True,
    threads: int = 1,
    batch_size: int = 256,
    device: str = "auto",
    columns: dict[str, str | None] | None = None,
) -> pd.DataFrame:
    """Classify ``input_path`` with the model; write and return the predictions table.

    ``settings``: the source (``source`` with ``sdss`` or ``demo``), read only for a catalog;
    ``client`` and ``cache_dir``: how a catalog's cutouts are fetched and where they are kept;
    ``columns``: a catalog's objid/ra/dec column names where they are not the usual ones. The
    output's format follows its extension (CSV, ECSV, FITS, VOTable).
    """
    input_path, out_csv = Path(input_path), Path(out_csv)
    check_paths(input_path, out_csv)
    columns = columns or {}
    saved = read_saved(Path(model_path))
    geometry, crop = model_geometry(saved)
    log.info(
        "model %s: cutouts of %d x %d px at %s, network input %d x %d",
        model_path,
        geometry["size"],
        geometry["size"],
        _scale_text(geometry),
        crop,
        crop,
    )
    names, paths, positions, bad = gather_inputs(input_path, geometry, settings, client, Path(cache_dir), columns)
    if len(paths) <= SMALL_INPUT and device != "cuda":
        log.info("%d images: classified in NumPy on the CPU (more than %d would start PyTorch)", len(paths), SMALL_INPUT)
        probs, reasons = classify_with_numpy(saved, paths, geometry["size"], crop, tta)
    else:
        probs, reasons = classify_with_torch(model_path, paths, geometry["size"], crop, tta, device, threads, batch_size)
    keep = np.array([r is None for r in reasons], dtype=bool)
    bad += [(str(name), reason) for name, reason in zip(names, reasons) if reason is not None]
    for name, reason in bad:
        log.warning("skipped %s: %s", name, reason)
    if not keep.any():
        raise InputError(f"{input_path}: no image to classify ({len(bad)} skipped, see above); {out_csv} not written")
    sources = [n for n, ok in zip(names, keep) if ok]
    out = pd.concat(
        [
            pd.DataFrame({"source": np.array(sources, dtype=np.int64) if positions is not None else sources}),
            prediction_columns(probs[keep], saved.get("merger_threshold")),
        ],
        axis=1,
    )
    if positions is not None:
        out["ra"], out["dec"] = positions.loc[keep, "ra"].to_numpy(), positions.loc[keep, "dec"].to_numpy()
    write_table(out_csv, out, column_info(positions is not None, tta, saved.get("merger_threshold")))
    log.info("predicted %d galaxies (TTA %s) -> %s; %d skipped", len(out), "on" if tta else "off", out_csv, len(bad))
    return out


def _scale_text(geometry: dict) -> str:
    if geometry["scale_mode"] == "fixed":
        return f'{geometry["scale"]:g}"/px (a {geometry["scale"] * geometry["size"]:g}" field)'
    return f"{geometry['adaptive_k']:g} x petroR90_r per px"
