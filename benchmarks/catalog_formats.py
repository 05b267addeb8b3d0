"""``predict`` on a catalog as FITS against the same catalog as CSV (the baseline), cutouts already cached.

A catalog of N rows (default 10,000) cycling through the demo sky's 1,500 galaxies at their
positions is written as CSV and as FITS (objID, RAJ2000, DEJ2000 as a TOPCAT user would have
it); one run of the real ``nightskynet predict`` fills a cutout cache from the demo SkyServer, then
each format is predicted by the same command against that cache and timed whole, and its
catalog reading (``predict.read_catalog``: every cell parsed and checked) is timed alone.

    .venv/bin/python benchmarks/catalog_formats.py                  # after make demo (needs results/demo/model/model.pt)
    .venv/bin/python benchmarks/catalog_formats.py --rows 2000 --views 4
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from astropy.table import Table

from nightskynet.sky.demo_sky import build_demo_sky
from nightskynet.sky.input_catalog import read_catalog

REPO = Path(__file__).resolve().parent.parent
SKY = REPO / "resources" / "demo_sky"


def predict(model: str, catalog: Path, out: Path, cache: Path, views: int, threads: int) -> float:
    """Seconds the real command takes, start-up included."""
    command = [sys.executable, "-m", "nightskynet", "predict", model, str(catalog), "-o", str(out), "--cache-dir", str(cache)]
    command += ["--threads", str(threads), "--views", str(views)]
    t0 = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True)
    return time.perf_counter() - t0


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default=str(REPO / "results/demo/model/model.pt"))
    p.add_argument("--rows", type=int, default=10_000)
    p.add_argument("--views", type=int, choices=(1, 2, 4, 8), default=1, help="D4 views per galaxy (default 1, so the table's share shows)")
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args()
    if not Path(args.model).is_file():
        sys.exit(f"{args.model} not found: run make demo first, or give --model")
    sky = build_demo_sky(SKY, seed=1).catalog[["objid", "ra", "dec"]]
    rows = sky.iloc[np.arange(args.rows) % len(sky)].reset_index(drop=True)
    # the copies get objids of their own: a row repeating another's objid and position is answered once (a duplicate)
    copy = rows.index >= len(sky)
    rows.loc[copy, "objid"] = 9_000_000_000_000_000_000 + rows.index[copy]
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        cache = tmp / "cache"
        rows.to_csv(tmp / "catalog.csv", index=False)
        Table({"objID": rows["objid"].to_numpy(np.int64), "RAJ2000": rows["ra"], "DEJ2000": rows["dec"]}).write(tmp / "catalog.fits")
        sky.to_csv(tmp / "warm.csv", index=False)
        warm = predict(args.model, tmp / "warm.csv", tmp / "warm_out.csv", cache, False, args.threads)
        print(f"cache filled with {len(sky)} cutouts from the demo SkyServer in {warm:.1f} s")
        print(f"\n{args.rows:,} rows, {args.views} D4 views, {args.threads} threads\n")
        print("| catalog | read and check the table (s) | per row (us) | whole predict command (s) | per galaxy (ms) |")
        print("|---|---|---|---|---|")
        for name in ("catalog.csv", "catalog.fits"):
            t0 = time.perf_counter()
            catalog = read_catalog(tmp / name, needs_radius=False)
            read_s = time.perf_counter() - t0
            assert len(catalog) == args.rows
            whole = predict(args.model, tmp / name, tmp / f"out_{name}", cache, args.views, args.threads)
            label = "CSV (baseline)" if name.endswith(".csv") else "FITS"
            print(f"| {label} | {read_s:.2f} | {1e6 * read_s / args.rows:.0f} | {whole:.1f} | {1e3 * whole / args.rows:.2f} |")
        same = Table.read(tmp / "out_catalog.csv", format="csv")["p_merger"] == Table.read(tmp / "out_catalog.fits")["p_merger"]
        print(f"\nthe same probabilities from both: {bool(np.all(same))}")


if __name__ == "__main__":
    main()
