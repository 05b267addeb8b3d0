"""Shard building throughput and memory at the study's scale (105,000 augmented images).

Builds a synthetic catalog the size of the study's (14,275 confident galaxies, 80% of them for
training) from the demo sky's real cutouts (re-used under made-up objids), packs it into chunk
tars, then runs one ``shards-train`` job of the real stage in a child process and reports its
images per second (the job is single-threaded: that is per core) and its peak RSS. The baseline
in the same run is the plain way, one job for the whole training set: decode every galaxy into
memory, augment all copies into one array, write the shards.

    .venv/bin/python benchmarks/shards_throughput.py                 # 105,000 images, 8 shards
    .venv/bin/python benchmarks/shards_throughput.py --shards 4      # fewer, larger shards
"""

from __future__ import annotations

import argparse
import io
import json
import os
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from nightskynet.core.files import write_npz_atomic
from nightskynet.core.vocabulary import CLASS_NAMES
from nightskynet.images.augment import augment
from nightskynet.images.cutouts import decode, read_chunks
from nightskynet.sky.demo_server import DemoSkyServer
from nightskynet.sky.demo_sky import build_demo_sky
from nightskynet.stages.shards import plan_training_set

REPO = Path(__file__).resolve().parent.parent

SKY = REPO / "resources" / "demo_sky"


def make_inputs(folder: Path, galaxies: int, chunks: int) -> tuple[Path, list[str], list[str]]:
    sky = build_demo_sky(SKY, seed=1)
    server = DemoSkyServer(sky)
    cat = sky.catalog
    cutouts = [server.cutout(r.ra, r.dec, 0.4, 120, 120) for r in cat.itertuples()]
    rng = np.random.default_rng(0)
    objids = np.arange(galaxies, dtype=np.int64) + 10**15
    source = rng.integers(0, len(cat), galaxies)
    # the study's confident sample: mergers rare; 80/20 train/test
    label = rng.choice(CLASS_NAMES, size=galaxies, p=[0.40, 0.30, 0.27, 0.03])
    split = np.where(rng.random(galaxies) < 0.8, "train", "test")
    labels = pd.DataFrame({"objid": objids, "label": label, "split": split})
    labels.to_csv(folder / "labels.csv", index=False)
    tars, manifests = [], []
    for k in range(chunks):
        ids = objids[k::chunks]
        tar_path, man_path = folder / f"chunk_{k}.tar", folder / f"chunk_{k}.manifest.csv"
        with tarfile.open(tar_path, "w") as tar:
            for o, s in zip(ids, source[k::chunks], strict=False):
                info = tarfile.TarInfo(f"{o}.jpg")
                info.size = len(cutouts[s])
                tar.addfile(info, io.BytesIO(cutouts[s]))
        pd.DataFrame({"objid": ids, "status": "ok"}).to_csv(man_path, index=False)
        tars.append(str(tar_path))
        manifests.append(str(man_path))
    return folder / "labels.csv", tars, manifests


def baseline(folder: Path, cfg: dict) -> None:
    """The plain way: everything decoded in memory, one array of all copies, then the shards."""
    labels = pd.read_csv(folder / "labels.csv")
    plan, _ = plan_training_set(labels, cfg)
    jpegs = read_chunks(sorted(str(p) for p in folder.glob("chunk_*.tar")), set(plan["objid"].tolist()))
    decoded = {o: decode(b, 120) for o, b in jpegs.items()}
    images = np.stack([augment(decoded[r.objid], r.g, r.dy, r.dx, 60) for r in plan.itertuples()])
    for k in range(cfg["train_shards"]):
        part = (plan["shard"] == k).to_numpy()
        write_npz_atomic(folder / f"baseline_{k}.npz", images=images[part], objids=plan["objid"].to_numpy()[part])


def timed(cmd: list[str]) -> tuple[float, float]:
    """(seconds, peak RSS in MB) of a child process."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    if status != 0:
        raise SystemExit(f"{cmd[:4]} failed")
    return time.perf_counter() - t0, usage.ru_maxrss / 1024


def main() -> None:
    if len(sys.argv) == 4 and sys.argv[1] == "--baseline-child":
        baseline(Path(sys.argv[2]), json.loads(sys.argv[3]))
        return
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--galaxies", type=int, default=14275)
    p.add_argument("--total", type=int, default=105000)
    p.add_argument("--shards", type=int, default=8)
    args = p.parse_args()
    cfg = {"total": args.total, "merger_fraction": 0.01, "crop": 60, "max_shift": 4, "train_shards": args.shards, "seed": 1}
    settings = {"shards": cfg, "scrape": {"size": 120}}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        labels_csv, tars, manifests = make_inputs(folder, args.galaxies, 8)
        size_mb = sum(Path(t).stat().st_size for t in tars) / 1e6
        print(f"{args.galaxies} galaxies in 8 chunk tars ({size_mb:.0f} MB); {args.total} training images in {args.shards} shards")
        cmd = [
            sys.executable,
            "-m",
            "nightskynet",
            "shards-train",
            "--settings",
            json.dumps(settings),
            "--labels",
            str(labels_csv),
            "--scrape-manifests",
            *manifests,
            "--chunk-tars",
            *tars,
            "--shard",
            "0",
            "--out",
            str(folder / "train_0.npz"),
        ]
        wall, rss_mb = timed(cmd)
        with np.load(folder / "train_0.npz") as z:
            n = len(z["labels"])
        base_wall, base_rss = timed([sys.executable, __file__, "--baseline-child", str(folder), json.dumps(cfg)])
    print("\n| shards job | images | seconds | img/s (one core) | peak RSS |")
    print("|---|---|---|---|---|")
    print(
        f"| nightskynet shards-train (1 of {args.shards}, whole job incl. start-up, tar reading, npz write) | {n} | {wall:.1f} "
        f"| {n / wall:.0f} | {rss_mb:.0f} MB |"
    )
    print(
        f"| baseline: one job, all decoded in memory, all {args.shards} shards | {args.total} | {base_wall:.1f} | "
        f"{args.total / base_wall:.0f} | {base_rss:.0f} MB |"
    )
    print(f"\nall {args.shards} shards on one core: {args.total / (n / wall):.0f} s; goal >= 2,000 img/s per core, peak RSS < 1.5 GB")


if __name__ == "__main__":
    main()
