"""``nightskynet explore`` at Galaxy Zoo 1's size: start-up, memory, and page latency under 8 clients at once.

A run of --galaxies galaxies (893,000 by default) is built from a finished run (default results/demo) as the scaled
demo sky gives one (benchmarks/similarity_scale.py): its catalog rows, representations and scores repeated under
new objids (positions moved by up to half a degree, each representation by noise of 0.3 x each feature's spread),
its cutouts repeated in 32 chunk tars, and the similarity stage's HNSW index built over them (config.yaml's
settings). Built once into --work and reused.

Then the explorer is started on it (a child process, as a person starts it) and measured:

* start-up: from the command to its printed address; resident memory then, and its peak (VmHWM) at the end;
* an HTTP load of --clients clients for --seconds, each in turn asking for a galaxy's page (with its 12
  neighbours), a page of a list (a random list, filter and page), and marking a galaxy and asking for the
  ranking page (a new model of the marks over the whole catalog): the 95th percentile of each, and failures;
* the baseline, how a person reached a galaxy's neighbours before: one ``nightskynet similar --objid`` command
  (start, read the run, search), median of three.

    .venv/bin/python benchmarks/explore_scale.py                      # 893,000 galaxies (the build: ~10 minutes)
    .venv/bin/python benchmarks/explore_scale.py --galaxies 100000 --seconds 20
"""

from __future__ import annotations

import argparse
import asyncio
import io
import random
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from nightskynet.analysis import representations
from nightskynet.analysis.neighbours import IndexSettings, build_index, write_index
from nightskynet.core import layout
from nightskynet.core.config import load_config
from nightskynet.core.layout import RunFiles
from nightskynet.images.cutouts import iter_chunk

REPO = Path(__file__).resolve().parent.parent
CHUNKS = 32


def build(base: Path, out: Path, n: int, seed: int = 0) -> None:
    """The scaled run in ``out`` (skipped when it is there already)."""
    if (out / "done").exists():
        return
    rng = np.random.default_rng(seed)
    source = RunFiles(base)
    catalog = pd.read_csv(source.catalog, dtype={"objid": "int64"})
    scores = pd.read_csv(source.scores, dtype={"objid": "int64"})
    _, x = representations.read(source.representations, source.representations_objid, catalog["objid"].to_numpy())
    take = np.arange(n) % len(catalog)
    objids = (10**18 + np.arange(n)).astype(np.int64)  # new, unique, sorted: the catalog is in objid order
    big = catalog.iloc[take].reset_index(drop=True)
    big["objid"] = objids
    big["ra"] = (big["ra"] + rng.uniform(-0.5, 0.5, n)) % 360
    big["dec"] = np.clip(big["dec"] + rng.uniform(-0.5, 0.5, n), -90, 90)
    (out / "morphology").mkdir(parents=True, exist_ok=True)
    (out / "similarity").mkdir(parents=True, exist_ok=True)
    big.to_csv(out / layout.CATALOG, index=False)
    spread = np.nanstd(x, axis=0)
    features = x[take] + rng.normal(0, 1, (n, x.shape[1])).astype(np.float32) * 0.3 * spread
    features[~np.isfinite(x[take]).all(axis=1)] = np.nan
    representations.write(out / layout.REPRESENTATIONS, out / layout.REPRESENTATIONS_OBJID, objids, features.astype(np.float32))
    big_scores = scores.iloc[take].reset_index(drop=True)
    big_scores["objid"] = objids
    big_scores.to_csv(out / layout.SCORES, index=False)
    ok = np.isfinite(features).all(axis=1)
    t0 = time.monotonic()
    index = build_index(objids[ok], features[ok], IndexSettings.from_config(load_config()["similarity"]["index"]))
    write_index(index, out / layout.INDEX)
    print(f"index of {ok.sum():,} galaxies built in {time.monotonic() - t0:.0f} s", flush=True)
    jpegs = {}
    for tar in source.chunk_tars():
        jpegs.update(dict(iter_chunk(tar)))
    base_ids = catalog["objid"].to_numpy()
    from nightskynet.core.chunks import chunk_of

    (out / "images").mkdir(exist_ok=True)
    chunk = np.array([chunk_of(int(o), CHUNKS) for o in objids])
    for k in range(CHUNKS):
        with tarfile.open(out / layout.CHUNK_TAR.format(chunk=k), "w", format=tarfile.USTAR_FORMAT) as tar:
            for i in np.flatnonzero(chunk == k):
                data = jpegs.get(int(base_ids[take[i]]))
                if data is None:
                    continue
                info = tarfile.TarInfo(f"{objids[i]}.jpg")
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    (out / layout.MODEL).parent.mkdir(exist_ok=True)
    (out / layout.MODEL).write_bytes(source.model.read_bytes())
    (out / layout.COMPARISON).write_bytes(source.comparison.read_bytes())  # how many views its catalog averaged
    (out / "done").write_text("built\n")


def memory_mb(pid: int) -> tuple[float, float]:
    """(resident, peak resident) MB of a process, from /proc."""
    fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line)
    return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024


async def load(url: str, objids: np.ndarray, clients: int, seconds: float) -> dict[str, list[float]]:
    import aiohttp

    lists = ["unusual", "merger_likeness", "disagreement", "p_merger", "p_elliptical"]
    filters = [
        {},
        {"predicted": "merger"},
        {"split": "test"},
        {"p_class": "merger", "p_min": "0.3", "p_max": "1"},
        {"status": "classified"},
    ]
    times: dict[str, list[float]] = {"galaxy page": [], "list page": [], "mark, then the ranking page": [], "failed": []}
    stop = time.monotonic() + seconds

    async def client(k: int) -> None:
        rng = random.Random(k)
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as session:
            turn = 0
            while time.monotonic() < stop:
                objid = str(objids[rng.randrange(len(objids))])
                kind = ("galaxy page", "list page", "mark, then the ranking page")[turn % 3]
                turn += 1
                t0 = time.perf_counter()
                try:
                    if kind == "galaxy page":
                        ok = [(await session.get(f"{url}/galaxy/{objid}")).status]
                    elif kind == "list page":
                        params = {**rng.choice(filters), "page": str(rng.randint(1, 20))}
                        ok = [(await session.get(f"{url}/list/{rng.choice(lists)}", params=params)).status]
                    else:
                        mark = await session.post(f"{url}/api/marks", json={"objid": objid, "mark": rng.choice(["yes", "no"])})
                        ok = [mark.status, (await session.get(f"{url}/ranking")).status]
                except (aiohttp.ClientError, asyncio.TimeoutError):
                    ok = [0]
                elapsed = time.perf_counter() - t0
                times[kind if all(s == 200 for s in ok) else "failed"].append(elapsed)

    await asyncio.gather(*(client(k) for k in range(clients)))
    return times


def similar_command_seconds(folder: Path, objids: np.ndarray, runs: int = 3) -> float:
    """Median wall seconds of one ``nightskynet similar --objid`` command on the run (the explorer not running)."""
    rng = np.random.default_rng(1)
    seconds = []
    for objid in rng.choice(objids, runs):
        t0 = time.monotonic()
        subprocess.run(
            [sys.executable, "-m", "nightskynet", "similar", "--results", str(folder), "--objid", str(objid), "-k", "12"],
            check=True,
            capture_output=True,
        )
        seconds.append(time.monotonic() - t0)
    return float(np.median(seconds))


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--base", type=Path, default=REPO / "results" / "demo", help="a finished run to repeat")
    p.add_argument("--galaxies", type=int, default=893_000)
    p.add_argument("--work", type=Path, default=REPO / "results" / "benchmarks" / "explore_scale")
    p.add_argument("--clients", type=int, default=8)
    p.add_argument("--seconds", type=float, default=60.0)
    args = p.parse_args()
    if not (args.base / layout.SCORES).exists():
        p.error(f"{args.base} is not a finished run (no {layout.SCORES}): run make demo first, or give --base")
    folder = args.work / f"run-{args.galaxies}"
    t0 = time.monotonic()
    build(args.base, folder, args.galaxies)
    print(f"the scaled run: {folder} ({time.monotonic() - t0:.0f} s)", flush=True)
    (folder / layout.MARKS).unlink(missing_ok=True)
    t0 = time.monotonic()
    proc = subprocess.Popen(
        [sys.executable, "-m", "nightskynet", "explore", "--results", str(folder), "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    line = proc.stdout.readline()
    started = time.monotonic() - t0
    if "http://" not in line:
        proc.kill()
        raise SystemExit(f"the explorer did not start: {line!r}")
    url = "http://" + line.split("http://", 1)[1].split("/", 1)[0]
    rss_start, _ = memory_mb(proc.pid)
    objids = pd.read_csv(folder / layout.CATALOG, usecols=["objid"], dtype={"objid": "int64"})["objid"].to_numpy()
    try:
        times = asyncio.run(load(url, objids, args.clients, args.seconds))
        rss_end, peak = memory_mb(proc.pid)
    finally:
        proc.kill()
    baseline = similar_command_seconds(folder, objids)
    print(f"\n{args.galaxies:,} galaxies; {args.clients} clients for {args.seconds:.0f} s\n")
    print("| measure | value |\n|---|---|")
    print(f"| start-up (command to address) | {started:.1f} s |")
    print(f"| resident memory after start / at the end / peak | {rss_start:,.0f} / {rss_end:,.0f} / {peak:,.0f} MB |")
    for kind in ("galaxy page", "list page", "mark, then the ranking page"):
        t = np.array(times[kind]) * 1000
        if len(t):
            print(f"| {kind}: median / 95th percentile ({len(t)} requests) | {np.median(t):.0f} / {np.percentile(t, 95):.0f} ms |")
    print(f"| failed requests | {len(times['failed'])} |")
    print(f"| baseline: one `nightskynet similar --objid ... -k 12` command, median of 3 | {baseline:.1f} s |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
