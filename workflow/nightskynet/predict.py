"""``python -m nightskynet predict MODEL INPUT -o OUT.csv``: classify galaxies the network never saw.

INPUT is a folder of JPEG cutouts (any size: each is resampled whole to the training cutout size,
120 x 120 by default, as a default SkyServer cutout is, then centre-cropped to the network's
input) or a catalog CSV with ``objid, ra, dec`` whose cutouts are downloaded first, with the scrape
stage's client and cache. OUT.csv has one row per input: ``source`` (file name or objid), the four
class probabilities and ``predicted``. Test-time augmentation (the mean over the 8 D4 views) is on
by default. Unreadable images are named in the log, skipped and counted.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from PIL import Image, UnidentifiedImageError

from .augment import crop
from .classes import CLASS_NAMES, PROB_COLUMNS
from .evaluate import predict_proba
from .files import write_csv_atomic
from .model import load_model
from .train import pick_device

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".jpe", ".png"}


def load_cutout(path: Path, size: int, crop_size: int) -> np.ndarray:
    """The whole image resampled to size x size, then the central crop the network takes."""
    with Image.open(path) as im:
        im.load()
        img = im.convert("RGB").resize((size, size), Image.Resampling.LANCZOS)
    return np.ascontiguousarray(crop(np.asarray(img, dtype=np.uint8), crop_size))


def load_folder(folder: Path, size: int, crop_size: int) -> tuple[list[str], np.ndarray, list[tuple[str, str]]]:
    files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    names, images, bad = [], [], []
    for path in files:
        try:
            images.append(load_cutout(path, size, crop_size))
            names.append(path.name)
        except (OSError, UnidentifiedImageError, ValueError) as err:
            bad.append((path.name, str(err)))
    skipped_other = sorted(p.name for p in folder.iterdir() if p.is_file() and p.suffix.lower() not in IMAGE_SUFFIXES)
    if skipped_other:
        log.info("ignored %d files that are not JPEG/PNG by name, e.g. %s", len(skipped_other), skipped_other[0])
    return names, np.stack(images) if images else np.zeros((0, crop_size, crop_size, 3), np.uint8), bad


def download_catalog(catalog_csv: Path, settings: dict) -> Path:
    """Fetch the catalog's cutouts into the scrape cache; return the cache folder."""
    from .scrape import cache_folder, download_all
    from .sky_source import skyserver_base_url

    frame = pd.read_csv(catalog_csv)
    missing = {"objid", "ra", "dec"} - set(frame.columns)
    if missing:
        raise ValueError(f"{catalog_csv}: a catalog to predict needs columns objid, ra, dec; missing {sorted(missing)}")
    if "petroR90_r" not in frame:
        if settings["scrape"]["scale_mode"] == "adaptive":
            raise ValueError(f"{catalog_csv}: scrape.scale_mode is adaptive but the catalog has no petroR90_r column")
        frame["petroR90_r"] = np.nan
    cache = cache_folder(settings)
    with skyserver_base_url(settings) as base_url:
        outcomes = asyncio.run(download_all(base_url, settings["sdss"]["release"], frame[["objid", "ra", "dec", "petroR90_r"]], cache, settings))
    for o in outcomes:
        if o.status not in ("ok", "cached"):
            log.warning("objid %d: no cutout (%s): %s", o.objid, o.status, o.reason)
    return cache, [o.objid for o in outcomes if o.status in ("ok", "cached")], [(str(o.objid), o.reason) for o in outcomes if o.status not in ("ok", "cached")]


def run(model_path: str | Path, input_path: str | Path, out_csv: str | Path, settings: dict, tta: bool = True, threads: int = 1, batch_size: int = 256) -> pd.DataFrame:
    input_path = Path(input_path)
    device = pick_device(settings.get("train", {}).get("device", "auto"))
    torch.set_num_threads(max(1, threads))
    model, _ = load_model(model_path, device)
    size, crop_size = settings["scrape"]["width"], model.input_size
    if input_path.is_dir():
        names, images, bad = load_folder(input_path, size, crop_size)
    elif input_path.is_file() and input_path.suffix.lower() == ".csv":
        cache, objids, bad = download_catalog(input_path, settings)
        names, images = [], []
        for objid in objids:
            images.append(load_cutout(cache / f"{objid}.jpg", size, crop_size))
            names.append(str(objid))
        images = np.stack(images) if images else np.zeros((0, crop_size, crop_size, 3), np.uint8)
    else:
        raise ValueError(f"{input_path}: INPUT must be a folder of JPEG cutouts or a catalog .csv (objid, ra, dec)")
    for name, reason in bad:
        log.warning("skipped %s: %s", name, reason)
    probs = predict_proba(model, images, device, tta=tta, batch_size=batch_size) if len(images) else np.zeros((0, 4))
    out = pd.DataFrame({"source": names})
    for k, col in enumerate(PROB_COLUMNS):
        out[col] = probs[:, k].round(5)
    out["predicted"] = [CLASS_NAMES[i] for i in probs.argmax(1)] if len(probs) else []
    if not len(out):
        raise ValueError(f"{input_path}: no readable image to predict ({len(bad)} skipped); {out_csv} not written")
    write_csv_atomic(out_csv, out)
    log.info("predicted %d galaxies (TTA %s) -> %s; %d skipped", len(out), "on" if tta else "off", out_csv, len(bad))
    return out
