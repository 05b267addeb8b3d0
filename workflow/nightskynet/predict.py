"""``python -m nightskynet predict MODEL INPUT -o OUT.csv``: classify galaxies the network never saw.

INPUT is a folder of JPEG/PNG cutouts or a catalog CSV with ``objid, ra, dec``.

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

OUT.csv has one row per classified input: ``source`` (file name or objid), the four calibrated
class probabilities, ``predicted`` (the most probable class) and ``merger_candidate`` (p_merger at
or above the model's merger threshold, chosen on the val split for a target recall); for a
catalog also ``ra, dec``. Test-time augmentation (the mean
over the 8 D4 views) is on by default. Bad input stops the command with one line naming the row,
the column and the value.
"""

from __future__ import annotations

import asyncio
import logging
import os
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from PIL import Image, UnidentifiedImageError

from .cutouts import IMAGE_SUFFIXES, has_central_source, image_files, load_cutout
from .errors import InputError
from .files import write_csv_atomic
from .inference import pick_device, predict_proba, prediction_columns
from .model import load_model, model_geometry

log = logging.getLogger(__name__)


def load_folder(folder: Path, size: int, crop_size: int) -> tuple[list[str], np.ndarray, list[tuple[str, str]]]:
    names, images, bad = [], [], []
    for path in image_files(folder):
        try:
            image = load_cutout(path, size, crop_size)
        except (OSError, UnidentifiedImageError, ValueError, Image.DecompressionBombError) as err:
            bad.append((path.name, str(err)))
            continue
        names.append(path.name)
        images.append(image)
    skipped_other = sorted(p.name for p in folder.iterdir() if p.is_file() and p.suffix.lower() not in IMAGE_SUFFIXES)
    if skipped_other:
        log.info("ignored %d files that are not JPEG/PNG by name, e.g. %s", len(skipped_other), skipped_other[0])
    return names, np.stack(images) if images else np.zeros((0, crop_size, crop_size, 3), np.uint8), bad


def read_catalog(catalog_csv: Path, needs_radius: bool) -> pd.DataFrame:
    """The catalog's objid, ra, dec (and petroR90_r), each value checked; one line naming the first bad one."""
    try:
        frame = pd.read_csv(catalog_csv, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError) as err:
        raise InputError(f"{catalog_csv}: not a readable CSV catalog ({err})") from None
    needed = ["objid", "ra", "dec"] + (["petroR90_r"] if needs_radius else [])
    missing = [c for c in needed if c not in frame.columns]
    if missing:
        extra = " (the model's cutouts are framed by each galaxy's petroR90_r)" if "petroR90_r" in missing else ""
        raise InputError(f"{catalog_csv}: a catalog to predict needs columns {', '.join(needed)}; missing {', '.join(missing)}{extra}")
    if frame.empty:
        raise InputError(f"{catalog_csv}: the catalog has no rows")
    out = pd.DataFrame(index=frame.index)
    for column, parse, lo, hi in (
        ("objid", _parse_objid, None, None),
        ("ra", float, 0.0, 360.0),
        ("dec", float, -90.0, 90.0),
        ("petroR90_r", float, None, None),
    ):
        if column not in frame:
            continue
        values = []
        for row, text in zip(frame.index, frame[column]):
            line = row + 2  # the header is line 1
            try:
                value = parse(text.strip())
            except ValueError:
                raise InputError(f"{catalog_csv}: line {line}, column {column}: {text!r} is not a number") from None
            if lo is not None and not (lo <= value <= hi):
                raise InputError(f"{catalog_csv}: line {line}, column {column}: {value:g} is outside [{lo:g}, {hi:g}] degrees")
            values.append(value)
        out[column] = np.array(values, dtype=np.int64 if column == "objid" else np.float64)
    if "petroR90_r" not in out:
        out["petroR90_r"] = np.nan
    _refuse_ambiguous_objids(out, catalog_csv)
    return out.reset_index(drop=True)


def _parse_objid(text: str) -> int:
    value = int(text)  # exact for 64-bit SDSS objids, which a float would round
    if not -(2**63) <= value < 2**63:
        raise ValueError(text)
    return value


def _refuse_ambiguous_objids(frame: pd.DataFrame, catalog_csv: Path) -> None:
    positions = frame.groupby("objid")[["ra", "dec"]].nunique()
    clash = positions[(positions["ra"] > 1) | (positions["dec"] > 1)].index
    if len(clash):
        objid = clash[0]
        lines = [str(i + 2) for i in frame.index[frame["objid"] == objid]]
        raise InputError(
            f"{catalog_csv}: objid {objid} appears at different positions (lines {', '.join(lines)}); "
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


def check_output_path(out: Path) -> None:
    if out.is_dir():
        raise InputError(f"-o {out} is a folder; give the path of the CSV file to write, e.g. {out / 'predictions.csv'}")
    if out.suffix.lower() != ".csv":
        raise InputError(f"-o {out}: the output is a CSV table; name it with .csv")
    parent = out.parent if str(out.parent) else Path(".")
    if parent.exists() and not parent.is_dir():
        raise InputError(f"-o {out}: {parent} is not a folder")


def check_paths(input_path: Path, out_csv: Path) -> None:
    if not input_path.exists():
        raise InputError(f"{input_path} does not exist; INPUT must be a folder of JPEG/PNG cutouts or a catalog .csv (objid, ra, dec)")
    if not (input_path.is_dir() or input_path.suffix.lower() == ".csv"):
        kind = input_path.suffix or "file without extension"
        raise InputError(f"{input_path}: INPUT must be a folder of JPEG/PNG cutouts or a catalog .csv (objid, ra, dec), not a {kind}")
    check_output_path(out_csv)


def gather_images(input_path: Path, geometry: dict, crop_size: int, settings: dict, client: dict, cache_dir: Path):
    """(names, crops, positions or None, skipped (name, reason)) for a folder or a catalog."""
    size = geometry["size"]
    if input_path.is_dir():
        names, images, bad = load_folder(input_path, size, crop_size)
        return names, images, None, bad
    catalog = read_catalog(input_path, needs_radius=geometry["scale_mode"] == "adaptive")
    outcomes, bad = download_catalog(catalog, settings, geometry, client, cache_dir)
    names = [str(o.objid) for o, _ in outcomes]
    positions = catalog.loc[[row for _, row in outcomes], ["ra", "dec"]].reset_index(drop=True)
    crops = [load_cutout(o.path, size, crop_size) for o, _ in outcomes]
    return names, np.stack(crops) if crops else np.zeros((0, crop_size, crop_size, 3), np.uint8), positions, bad


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
) -> pd.DataFrame:
    """Classify ``input_path`` with the model; write and return the predictions table.

    ``settings``: the source (``source`` with ``sdss`` or ``demo``), read only for a catalog;
    ``client`` and ``cache_dir``: how a catalog's cutouts are fetched and where they are kept.
    """
    input_path, out_csv = Path(input_path), Path(out_csv)
    check_paths(input_path, out_csv)
    torch_device = pick_device(device)
    torch.set_num_threads(max(1, threads))
    model, saved = load_model(model_path, torch_device)
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
    names, images, positions, bad = gather_images(input_path, geometry, crop, settings, client, Path(cache_dir))
    keep = np.array([has_central_source(im) for im in images], dtype=bool)
    bad += [(name, "no_galaxy: no source brighter than the sky at the centre of the image") for name, ok in zip(names, keep) if not ok]
    for name, reason in bad:
        log.warning("skipped %s: %s", name, reason)
    if not keep.any():
        raise InputError(f"{input_path}: no image to classify ({len(bad)} skipped, see above); {out_csv} not written")
    probs = predict_proba(model, images[keep], torch_device, tta=tta, batch_size=batch_size)
    out = pd.concat(
        [pd.DataFrame({"source": [n for n, ok in zip(names, keep) if ok]}), prediction_columns(probs, saved.get("merger_threshold"))],
        axis=1,
    )
    if positions is not None:
        out["ra"], out["dec"] = positions.loc[keep, "ra"].to_numpy(), positions.loc[keep, "dec"].to_numpy()
    write_csv_atomic(out_csv, out)
    log.info("predicted %d galaxies (TTA %s) -> %s; %d skipped", len(out), "on" if tta else "off", out_csv, len(bad))
    return out


def _scale_text(geometry: dict) -> str:
    if geometry["scale_mode"] == "fixed":
        return f'{geometry["scale"]:g}"/px (a {geometry["scale"] * geometry["size"]:g}" field)'
    return f"{geometry['adaptive_k']:g} x petroR90_r per px"
