"""Stage ``shards``: decode the cutouts, augment the training galaxies, write uint8 .npz shards.

Training set: every training galaxy gets a number of augmented copies chosen so the classes reach
the target mixture (``shards.total`` images, ``shards.merger_fraction`` of them mergers, the rest
split equally over the other three classes). A class with n galaxies and a target of t images
gives each galaxy floor(t / n) copies and a seeded random t mod n of them one more. Each copy is a
60 x 60 crop at full resolution (as the study: no downsampling) around the centre shifted by up
to ``shards.max_shift`` px, then one of the 8 D4 elements. Copies are shuffled and dealt into
``shards.train_shards`` files. Val, test and uncertain sets: one centre crop per galaxy.

Every shard holds ``images`` (N, 60, 60, 3) uint8, ``labels`` (N,) int8 (class index, -1 where
unknown), ``objids`` (N,) int64 and ``augmentation`` (N, 3) int16 (g, dy, dx). Shards are
byte-identical for identical inputs, settings and seed; ``manifest.json`` records counts, copies
per class, settings and each shard's sha256.
"""

from __future__ import annotations

import hashlib
import io
import logging
import tarfile
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image
from tqdm import tqdm

from .augment import augment, draw_augmentations
from .classes import CLASS_INDEX, CLASS_NAMES
from .files import write_json_atomic, write_npz_atomic

log = logging.getLogger(__name__)


def read_chunks(tar_paths: list[str | Path], wanted: set[int]) -> dict[int, bytes]:
    """JPEG bytes of the wanted objids found in the chunk tars."""
    found: dict[int, bytes] = {}
    for path in tar_paths:
        with tarfile.open(path) as tar:
            for member in tar:
                stem = member.name.rsplit("/", 1)[-1].removesuffix(".jpg")
                if member.isfile() and stem.isdigit() and int(stem) in wanted:
                    found[int(stem)] = tar.extractfile(member).read()
    return found


def decode(jpeg: bytes, size: int) -> np.ndarray:
    with Image.open(io.BytesIO(jpeg)) as im:
        img = im.convert("RGB")
        if img.size != (size, size):
            img = img.resize((size, size), Image.Resampling.LANCZOS)
        return np.asarray(img, dtype=np.uint8)


def copies_per_class(class_counts: dict[str, int], total: int, merger_fraction: float) -> dict[str, int]:
    """Target number of training images per class: mergers at ``merger_fraction``, the rest equal.

    A class without galaxies gets no images; its share goes to the others.
    """
    present = [c for c in CLASS_NAMES if class_counts.get(c, 0) > 0]
    targets = {c: 0 for c in CLASS_NAMES}
    if "merger" in present:
        targets["merger"] = int(round(total * merger_fraction)) if len(present) > 1 else total
    others = [c for c in present if c != "merger"]
    rest = total - targets["merger"]
    for i, c in enumerate(others):
        targets[c] = rest // len(others) + (1 if i < rest % len(others) else 0)
    return targets


def plan_copies(train: pd.DataFrame, targets: dict[str, int], rng: np.random.Generator) -> np.ndarray:
    """Row positions into ``train`` (one per augmented copy) meeting ``targets`` per class."""
    picks = []
    for c in CLASS_NAMES:
        rows = np.flatnonzero(train["label"].to_numpy() == c)
        if not len(rows) or not targets[c]:
            continue
        base, extra = divmod(targets[c], len(rows))
        counts = np.full(len(rows), base)
        counts[rng.permutation(len(rows))[:extra]] += 1
        picks.append(np.repeat(rows, counts))
    return np.concatenate(picks) if picks else np.zeros(0, dtype=np.int64)


def sha256_file(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def run(labels_csv: str | Path, chunk_tars: list[str], train_paths: list[str], val_path: str, test_path: str, uncertain_path: str, manifest_path: str, settings: dict) -> dict:
    cfg = settings["shards"]
    size, max_shift, source_size = cfg["crop"], cfg["max_shift"], settings["scrape"]["width"]
    if size + 2 * max_shift > source_size:
        raise ValueError(f"shards.crop ({size}) + 2 x shards.max_shift ({max_shift}) exceeds the {source_size} px cutouts; lower one of them")
    labels = pd.read_csv(labels_csv, dtype={"objid": "int64"})
    jpegs = read_chunks(chunk_tars, set(labels["objid"]))
    have = labels["objid"].isin(jpegs.keys())
    if (~have).any():
        log.warning("%d labelled galaxies have no image (see the scrape manifests); left out", int((~have).sum()))
    labels = labels[have].sort_values("objid").reset_index(drop=True)
    rng = np.random.default_rng(cfg["seed"])
    images = {}
    for objid in tqdm(labels["objid"], desc="decode", unit="img", mininterval=2.0):
        images[int(objid)] = decode(jpegs[int(objid)], source_size)

    manifest: dict = {"settings": {k: cfg[k] for k in sorted(cfg)}, "crop_at": "full resolution", "files": {}, "galaxies": {}, "images": {}}

    def write(path: str, rows: pd.DataFrame, augmentation: np.ndarray, name: str) -> None:
        arr = np.stack([augment(images[int(o)], int(g), int(dy), int(dx), size) for o, (g, dy, dx) in zip(rows["objid"], augmentation)]) if len(rows) else np.zeros((0, size, size, 3), np.uint8)
        labs = np.array([CLASS_INDEX[c] for c in rows["label"]], dtype=np.int8) if name != "uncertain" else np.full(len(rows), -1, np.int8)
        write_npz_atomic(path, images=arr, labels=labs, objids=rows["objid"].to_numpy(np.int64), augmentation=augmentation.astype(np.int16))
        manifest["files"][Path(path).name] = {"images": int(len(rows)), "sha256": sha256_file(path), "by_class": {c: int((rows["label"] == c).sum()) for c in CLASS_NAMES}}

    train = labels[labels["split"] == "train"].reset_index(drop=True)
    counts = train["label"].value_counts().to_dict()
    targets = copies_per_class(counts, cfg["total"], cfg["merger_fraction"])
    picks = plan_copies(train, targets, rng)
    picks = picks[rng.permutation(len(picks))]
    augmentation = draw_augmentations(len(picks), max_shift, rng)
    manifest["copies_per_class"] = {c: {"galaxies": int(counts.get(c, 0)), "images": targets[c], "copies_per_galaxy": round(targets[c] / counts[c], 2) if counts.get(c) else 0} for c in CLASS_NAMES}
    for k, (part, path) in enumerate(zip(np.array_split(np.arange(len(picks)), len(train_paths)), train_paths)):
        write(path, train.iloc[picks[part]].reset_index(drop=True), augmentation[part], f"train_{k}")
        log.info("wrote %s (%d images)", path, len(part))
    for split, path in (("val", val_path), ("test", test_path), ("uncertain", uncertain_path)):
        rows = labels[labels["split"] == split].reset_index(drop=True)
        write(path, rows, np.zeros((len(rows), 3), np.int16), split)
        log.info("wrote %s (%d galaxies, centre crop)", path, len(rows))
    manifest["galaxies"] = {s: int((labels["split"] == s).sum()) for s in ("train", "val", "test", "uncertain")}
    manifest["images"] = {"train": int(len(picks)), "train_mixture": {c: round(targets[c] / max(1, len(picks)), 4) for c in CLASS_NAMES}}
    write_json_atomic(manifest_path, manifest)
    return manifest
