"""Cutout download throughput: the scrape client at several concurrencies vs a sequential client.

The demo SkyServer runs in its own process with an injected latency (default 50 ms per answer);
each configuration downloads the same N distinct cutouts into a fresh cache through the real
``nightskynet.sky.cutout_client.download_all`` (validation included: every JPEG is decoded and size-checked).
The baseline is what the study did: urllib, one request after the other. A run with no injected
latency at the highest concurrency measures the CPU limit of this machine (server + client).

    .venv/bin/python benchmarks/scrape_throughput.py            # 2,000 cutouts, 50 ms latency
    .venv/bin/python benchmarks/scrape_throughput.py --n 500    # quicker
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pandas as pd

from nightskynet.sky.cutout_client import CutoutCache, download_all
from nightskynet.sky.demo_server import running_demo_sky
from nightskynet.sky.demo_sky import build_demo_sky
from nightskynet.sky.sky_source import cutout_url

REPO = Path(__file__).resolve().parent.parent

SKY = REPO / "resources" / "demo_sky"


def targets(n: int) -> pd.DataFrame:
    """n distinct cutout requests: every demo galaxy, then the same ones again 6" to the east, ..."""
    cat = build_demo_sky(SKY, seed=1).catalog[["objid", "ra", "dec", "petroR90_r"]]
    frames, k = [], 0
    while sum(len(f) for f in frames) < n:
        f = cat.copy()
        f["ra"] = f["ra"] + k * 6 / 3600
        f["objid"] = f["objid"] + k
        frames.append(f)
        k += 1
    return pd.concat(frames, ignore_index=True).head(n)


GEOMETRY = {"size": 120, "scale_mode": "fixed", "scale": 0.4, "adaptive_k": 0.0846}


def client(concurrency: int) -> dict:
    return {"concurrency": concurrency, "max_rate": 0, "timeout_s": 60, "max_attempts": 3, "backoff_base_s": 0.1, "backoff_max_s": 1}


def run_async(url: str, frame: pd.DataFrame, concurrency: int) -> float:
    with tempfile.TemporaryDirectory() as cache:
        t0 = time.perf_counter()
        outcomes = asyncio.run(
            download_all(url, frame, CutoutCache(cache, "benchmark", "dr17"), GEOMETRY, client(concurrency), show_progress=False)
        )
        elapsed = time.perf_counter() - t0
    bad = [o for o in outcomes if o.status != "ok"]
    if bad:
        raise SystemExit(f"{len(bad)} downloads failed, e.g. {bad[0]}")
    return len(frame) / elapsed


def run_sequential(url: str, frame: pd.DataFrame) -> float:
    endpoint = cutout_url(url, "dr17")
    t0 = time.perf_counter()
    for row in frame.itertuples():
        q = urllib.parse.urlencode({"ra": f"{row.ra:.6f}", "dec": f"{row.dec:.6f}", "scale": "0.4", "width": "120", "height": "120"})
        with urllib.request.urlopen(f"{endpoint}?{q}", timeout=60) as resp:
            resp.read()
    return len(frame) / (time.perf_counter() - t0)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n", type=int, default=2000, help="cutouts per configuration")
    p.add_argument("--latency-ms", type=float, default=50.0)
    p.add_argument("--concurrency", type=int, nargs="+", default=[1, 8, 32, 64])
    p.add_argument("--sequential-n", type=int, default=300, help="requests for the sequential baseline")
    args = p.parse_args()
    frame = targets(args.n)
    latency = args.latency_ms / 1000
    rows = []
    print(f"{os.cpu_count()} CPU cores; {args.n} cutouts of 120 x 120 px; server latency {args.latency_ms:g} ms", flush=True)
    with running_demo_sky(SKY, latency_s=latency) as url:
        rate = run_sequential(url, frame.head(args.sequential_n))
    rows.append(("sequential urllib (the study's way)", 1, rate, 1 / latency if latency else float("inf")))
    print(f"  sequential: {rate:.1f} img/s", flush=True)
    for c in args.concurrency:
        with running_demo_sky(SKY, latency_s=latency) as url:  # a fresh server: cold caches for each run
            rate = run_async(url, frame, c)
        rows.append((f"nightskynet scrape, concurrency {c}", c, rate, c / latency if latency else float("inf")))
        print(f"  concurrency {c}: {rate:.1f} img/s", flush=True)
    with running_demo_sky(SKY, latency_s=0.0) as url:
        cpu = run_async(url, frame, max(args.concurrency))
    print(f"  CPU limit (no latency, concurrency {max(args.concurrency)}): {cpu:.1f} img/s", flush=True)
    base = rows[0][2]
    print("\n| client | img/s | latency bound | of min(latency bound, CPU limit) | vs sequential |")
    print("|---|---|---|---|---|")
    for name, c, rate, bound in rows:
        ceiling = min(bound, cpu)
        print(f"| {name} | {rate:.1f} | {bound:.0f} | {100 * rate / ceiling:.0f}% | {rate / base:.1f}x |")
    print(f"| CPU limit: no latency, concurrency {max(args.concurrency)} | {cpu:.1f} | - | - | {cpu / base:.1f}x |")


if __name__ == "__main__":
    main()
