"""Stage ``shards``: decode the cutouts, augment the training galaxies, write uint8 .npz shards.

Training set: every training galaxy gets a number of augmented copies chosen so the classes reach
the target mixture (``shards.total`` images, ``shards.merger_fraction`` of them mergers, the rest
split equally over the other three classes). A class with n galaxies and a target of t images
gives each galaxy floor(t / n) copies and a seeded random t mod n of them one more. Each copy is a
60 x 60 crop at full resolution (as the study: no downsampling) around the centre shifted by up
to ``shards.max_shift`` px, then one of the 8 D4 elements. Copies are shuffled and dealt into
``shards.train_shards`` files.

The plan (which galaxy, which augmentation, which shard and row) is a pure function of the labels
and the settings, so every shard job computes it alike and writes only its own shard: the jobs run
in parallel, and each streams (decodes a galaxy once, writes its copies into place), holding one
shard's array and the compressed JPEGs rather than every decoded image. Val, test and uncertain
sets: one centre crop per galaxy.

Every shard holds ``images`` (N, 60, 60, 3) uint8, ``labels`` (N,) int8 (class index, -1 where
unknown), ``targets`` (N, 4) float32 (the galaxy's renormalised vote fractions, what
``train.targets: votes`` learns), ``objids`` (N,) int64 and ``augmentation`` (N, 3) int16
(g, dy, dx). Shards are
byte-identical for identical inputs, settings and seed; ``manifest.json`` records counts, copies
per class, settings and each shard's sha256.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm import tqdm

from ..core.commands import File, Files, Settings, Wildcard
from ..core.errors import SettingsError
from ..core.files import sha256_file, write_json_atomic, write_npz_atomic
from ..core.vocabulary import CLASS_INDEX, CLASS_NAMES, EVAL_SPLITS, PROB_COLUMNS, SPLITS
from ..images.augment import augment, draw_augmentations
from ..images.cutouts import decode, read_chunks

log = logging.getLogger(__name__)


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


def available_labels(labels_csv: str | Path, manifests: list[str | Path]) -> pd.DataFrame:
    """The labelled galaxies whose cutout downloaded (per the scrape manifests), sorted by objid."""
    labels = pd.read_csv(labels_csv, dtype={"objid": "int64"})
    ok = set()
    for path in manifests:
        m = pd.read_csv(path, dtype={"objid": "int64"})
        ok.update(m.loc[m["status"] == "ok", "objid"].tolist())
    have = labels["objid"].isin(ok)
    if (~have).any():
        log.warning("%d labelled galaxies have no image (see the scrape manifests); left out", int((~have).sum()))
    return labels[have].sort_values("objid").reset_index(drop=True)


def plan_training_set(labels: pd.DataFrame, cfg: dict) -> tuple[pd.DataFrame, dict]:
    """Every augmented training image: objid, label, g, dy, dx, shard, row. Pure function of its inputs."""
    rng = np.random.default_rng(cfg["seed"])
    train = labels[labels["split"] == "train"].reset_index(drop=True)
    counts = train["label"].value_counts().to_dict()
    targets = copies_per_class(counts, cfg["total"], cfg["merger_fraction"])
    picks = []
    for c in CLASS_NAMES:
        rows = np.flatnonzero(train["label"].to_numpy() == c)
        if not len(rows) or not targets[c]:
            continue
        base, extra = divmod(targets[c], len(rows))
        per_galaxy = np.full(len(rows), base)
        per_galaxy[rng.permutation(len(rows))[:extra]] += 1
        picks.append(np.repeat(rows, per_galaxy))
    picks = np.concatenate(picks) if picks else np.zeros(0, dtype=np.int64)
    picks = picks[rng.permutation(len(picks))]
    aug = draw_augmentations(len(picks), cfg["max_shift"], rng)
    shard = np.zeros(len(picks), dtype=np.int64)
    row = np.zeros(len(picks), dtype=np.int64)
    for k, part in enumerate(np.array_split(np.arange(len(picks)), cfg["train_shards"])):
        shard[part], row[part] = k, np.arange(len(part))
    plan = pd.DataFrame(
        {
            "objid": train["objid"].to_numpy()[picks],
            "label": train["label"].to_numpy()[picks],
            "g": aug[:, 0],
            "dy": aug[:, 1],
            "dx": aug[:, 2],
            "shard": shard,
            "row": row,
        }
    )
    for col in PROB_COLUMNS:
        plan[col] = train[col].to_numpy()[picks]
    copies = {
        c: {
            "galaxies": int(counts.get(c, 0)),
            "images": int(targets[c]),
            "copies_per_galaxy": round(targets[c] / counts[c], 2) if counts.get(c) else 0,
        }
        for c in CLASS_NAMES
    }
    return plan, copies


def check_geometry(cfg: dict, source_size: int) -> None:
    if cfg["crop"] + 2 * cfg["max_shift"] > source_size:
        raise SettingsError(
            f"shards.crop ({cfg['crop']}) + 2 x shards.max_shift ({cfg['max_shift']}) exceeds the {source_size} px cutouts; "
            "lower one of them"
        )


def write_shard(
    path: str | Path, items: pd.DataFrame, jpegs: dict[int, bytes], size: int, source_size: int, label_known: bool = True
) -> int:
    """Write one shard, decoding each galaxy once and placing its copies at their rows."""
    n = len(items)
    images = np.zeros((n, size, size, 3), dtype=np.uint8)
    rows = items["row"].to_numpy() if "row" in items else np.arange(n)
    aug = items[["g", "dy", "dx"]].to_numpy(np.int16) if "g" in items else np.zeros((n, 3), np.int16)
    order = np.argsort(items["objid"].to_numpy(), kind="stable")
    objids = items["objid"].to_numpy()
    last, img = None, None
    for i in tqdm(order, desc=Path(path).name, unit="img", mininterval=5.0, disable=n < 1000):
        if objids[i] != last:
            last, img = objids[i], decode(jpegs[int(objids[i])], source_size)
        g, dy, dx = aug[i]
        images[rows[i]] = augment(img, int(g), int(dy), int(dx), size)
    out_objids = np.empty(n, np.int64)
    out_labels = np.empty(n, np.int8)
    out_aug = np.empty((n, 3), np.int16)
    out_objids[rows] = objids
    out_labels[rows] = [CLASS_INDEX[c] for c in items["label"]] if label_known else -1
    out_aug[rows] = aug
    out_targets = np.empty((n, len(PROB_COLUMNS)), np.float32)
    out_targets[rows] = items[list(PROB_COLUMNS)].to_numpy(np.float32)
    write_npz_atomic(path, images=images, labels=out_labels, targets=out_targets, objids=out_objids, augmentation=out_aug)
    return n


def run_train_shard(
    *, labels: File, scrape_manifests: Files, chunk_tars: Files, train_shard: File, shard: Wildcard, settings: Settings
) -> int:
    """Stage ``shards``, one training shard: its share of the augmented training images (``train_shard``)."""
    cfg, source_size = settings["shards"], settings["scrape"]["size"]
    check_geometry(cfg, source_size)
    available = available_labels(labels, scrape_manifests)
    plan, _ = plan_training_set(available, cfg)
    mine = plan[plan["shard"] == shard].reset_index(drop=True)
    jpegs = read_chunks(chunk_tars, set(mine["objid"].tolist()))
    n = write_shard(train_shard, mine, jpegs, cfg["crop"], source_size)
    log.info("wrote %s: %d augmented images of %d galaxies", train_shard, n, mine["objid"].nunique())
    return n


def run_eval_shards(
    *, labels: File, scrape_manifests: Files, chunk_tars: Files, val: File, test: File, uncertain: File, settings: Settings
) -> None:
    """Stage ``shards``, the evaluation sets: the centre crops of the ``val``, ``test`` and ``uncertain`` galaxies."""
    cfg, source_size = settings["shards"], settings["scrape"]["size"]
    available = available_labels(labels, scrape_manifests)
    wanted = available[available["split"].isin(EVAL_SPLITS)]
    jpegs = read_chunks(chunk_tars, set(wanted["objid"].tolist()))
    for split, path in zip(EVAL_SPLITS, (val, test, uncertain), strict=True):
        rows = available[available["split"] == split].reset_index(drop=True)
        write_shard(path, rows, jpegs, cfg["crop"], source_size, label_known=split != "uncertain")
        log.info("wrote %s: %d galaxies, centre crop", path, len(rows))


def run_manifest(*, labels: File, scrape_manifests: Files, shards: Files, shards_manifest: File, settings: Settings) -> dict:
    """Stage ``shards``, the ``shards_manifest``: counts, copies per class, settings and sha256 of every shard (train and eval)."""
    cfg = settings["shards"]
    available = available_labels(labels, scrape_manifests)
    plan, copies = plan_training_set(available, cfg)
    files = {}
    for path in shards:
        with np.load(path) as z:
            lab = z["labels"]
        files[Path(path).name] = {
            "images": int(len(lab)),
            "sha256": sha256_file(path),
            "by_class": {c: int((lab == i).sum()) for i, c in enumerate(CLASS_NAMES)},
        }
    manifest = {
        "settings": {k: cfg[k] for k in sorted(cfg)},
        "cutout": {k: settings["scrape"][k] for k in ("size", "scale_mode", "scale", "adaptive_k") if k in settings["scrape"]},
        "crop_at": "full resolution",
        "galaxies": {s: int((available["split"] == s).sum()) for s in SPLITS},
        "copies_per_class": copies,
        "images": {
            "train": int(len(plan)),
            "train_mixture": {c: round(float((plan["label"] == c).mean()), 4) if len(plan) else 0.0 for c in CLASS_NAMES},
        },
        "files": files,
    }
    write_json_atomic(shards_manifest, manifest)
    log.info("manifest: %s", json.dumps(manifest["images"]))
    return manifest
