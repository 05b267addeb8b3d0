"""The similarity stage at Galaxy Zoo 1's size: index build time, memory, query latency, and the scores' cost.

The representations of a finished run (default results/demo: 1,500 real galaxies, 128 features each) are
repeated to --galaxies (893,000: the scaled demo sky, whose copies of the 1,500 images give exactly these
representations again), as the scaled sky gives them (``--jitter 0``: each vector ~595 times over) and, as
real galaxies would be, each copy moved by Gaussian noise of --jitter times each feature's spread. Then, on
--threads threads (faiss's OpenMP):

* the HNSW index (the stage's settings, config.yaml ``similarity.index``): build time, its size on disk,
  and the process's peak resident memory;
* the simple baseline in the same run: an exact (brute-force) ``IndexFlatIP`` of the same vectors;
* query latency for k = 20, one query at a time as ``nightskynet similar`` asks (median and 95th
  percentile of --queries), HNSW and exact, and the HNSW answers' recall of the exact 20;
* the scores of every galaxy: ``unusual`` (one k-NN search per galaxy) and ``merger_likeness``
  (the reference set: the run's share of confident training galaxies, with its share of mergers);
* what the representations add to the morphology stage's merge job: placing 32 chunks' representations
  (893,000 / 32 rows each) in the catalog's order through a memory map (``morphology.merge_representations``).

    .venv/bin/python benchmarks/similarity_scale.py                        # 893,000 galaxies, jitter 0.3 and 0
    .venv/bin/python benchmarks/similarity_scale.py --galaxies 100000 --jitter 0.3
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

import faiss
import numpy as np
import pandas as pd

from nightskynet.analysis import representations
from nightskynet.analysis.neighbours import (
    IndexSettings,
    build_index,
    merger_likeness,
    normalised,
    search,
    unusual_scores,
    write_index,
)
from nightskynet.core.config import load_config
from nightskynet.core.vocabulary import TRAINED_ON, is_confident

REPO = Path(__file__).resolve().parent.parent


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def sky(base: np.ndarray, n: int, jitter: float, seed: int = 0) -> np.ndarray:
    """``n`` representations: ``base`` repeated, each copy moved by noise of ``jitter`` x each feature's spread."""
    rng = np.random.default_rng(seed)
    x = base[np.arange(n) % len(base)].astype(np.float32)
    if jitter:
        spread = base.std(axis=0).astype(np.float32)
        for start in range(0, n, 100_000):  # in blocks: the noise of a million rows at once would double the memory
            stop = min(n, start + 100_000)
            x[start:stop] += rng.normal(0, 1, (stop - start, base.shape[1])).astype(np.float32) * spread * jitter
    return x


def latency_ms(index, x: np.ndarray, rows: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-query milliseconds (one query at a time) and the objids found."""
    times, found = [], []
    for r in rows:
        t0 = time.perf_counter()
        _, ids = search(index, x[r : r + 1], k)
        times.append((time.perf_counter() - t0) * 1000)
        found.append(ids[0])
    return np.array(times), np.array(found)


def measure(base: np.ndarray, n: int, jitter: float, args, settings: IndexSettings, confident: float, merger_share: float) -> dict:
    t0 = time.monotonic()
    x = sky(base, n, jitter)
    objids = np.arange(n, dtype=np.int64) + 587_722_000_000_000_000
    made = time.monotonic() - t0
    rss0 = peak_rss_mb()
    t0 = time.monotonic()
    index = build_index(objids, x, settings)
    build_s = time.monotonic() - t0
    rss_index = peak_rss_mb()
    with tempfile.TemporaryDirectory() as tmp:
        write_index(index, Path(tmp) / "index.faiss")
        index_mb = os.path.getsize(Path(tmp) / "index.faiss") / 2**20
    exact = faiss.IndexIDMap2(faiss.IndexFlatIP(x.shape[1]))
    exact.add_with_ids(normalised(x), objids)
    rows = np.random.default_rng(1).choice(n, args.queries, replace=False)
    hnsw_ms, hnsw_ids = latency_ms(index, x, rows, 20)
    exact_rows = rows[: min(len(rows), 100)]
    exact_ms, exact_ids = latency_ms(exact, x, exact_rows, 20)
    sims_exact = np.array([search(exact, x[r : r + 1], 20)[0][0] for r in exact_rows[:20]])
    # recall against the exact answer; ties (identical copies) make the exact ids arbitrary, so count by similarity
    recall = []
    for j, r in enumerate(exact_rows[:20]):
        found = search(index, x[r : r + 1], 20)[0][0]
        recall.append(np.mean(found >= sims_exact[j][-1] - 1e-6))
    del exact
    t0 = time.monotonic()
    unusual_scores(index, objids, x, k=10)
    unusual_s = time.monotonic() - t0
    reference = np.random.default_rng(2).random(n) < confident
    is_merger = np.random.default_rng(3).random(int(reference.sum())) < merger_share
    t0 = time.monotonic()
    merger_likeness(x, objids, objids[reference], x[reference], is_merger, "knn", 20)
    likeness_s = time.monotonic() - t0
    return {
        "galaxies": n,
        "jitter": jitter,
        "make_s": round(made, 1),
        "build_s": round(build_s, 1),
        "index_mb": round(index_mb),
        "rss_before_mb": round(rss0),
        "rss_after_build_mb": round(rss_index),
        "rss_peak_mb": round(peak_rss_mb()),
        "query_ms_median": round(float(np.median(hnsw_ms)), 2),
        "query_ms_p95": round(float(np.percentile(hnsw_ms, 95)), 2),
        "exact_query_ms_median": round(float(np.median(exact_ms)), 1),
        "recall_at_20": round(float(np.mean(recall)), 3),
        "unusual_s": round(unusual_s, 1),
        "merger_likeness_s": round(likeness_s, 1),
        "reference_galaxies": int(reference.sum()),
    }


def merge_cost(base: np.ndarray, n: int, chunks: int = 32) -> dict:
    """Seconds for the merge job to put ``chunks`` chunk files' representations in catalog order (no jitter: the
    values do not matter, the bytes moved do)."""
    from nightskynet.core.chunks import chunk_of
    from nightskynet.stages.morphology import merge_representations

    objids = np.arange(n, dtype=np.int64) * 3 + 587_722_000_000_000_000
    which = np.fromiter((chunk_of(o, chunks) for o in objids), np.int64, n)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        tables, arrays = [], []
        for k in range(chunks):
            ids = objids[which == k]
            tables.append(str(tmp / f"chunk_{k}.csv"))
            pd.DataFrame({"objid": ids}).to_csv(tables[-1], index=False)
            arrays.append(str(tmp / f"chunk_{k}.representations.npy"))
            representations.write(arrays[-1], representations.objid_path(arrays[-1]), ids, base[np.arange(len(ids)) % len(base)])
        pd.DataFrame({"objid": objids}).to_csv(tmp / "catalog.csv", index=False)
        t0 = time.monotonic()
        merge_representations(tables, arrays, tmp / "catalog.csv", tmp / "representations.npy")
        seconds = time.monotonic() - t0
        size = os.path.getsize(tmp / "representations.npy") / 2**20
    return {"galaxies": n, "chunks": chunks, "merge_s": round(seconds, 1), "file_mb": round(size)}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--results", default=str(REPO / "results" / "demo"), help="a finished run's folder")
    p.add_argument("--galaxies", type=int, default=893_000)
    p.add_argument("--jitter", type=float, nargs="+", default=[0.3, 0.0])
    p.add_argument("--queries", type=int, default=1000)
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args()
    faiss.omp_set_num_threads(args.threads)
    run = Path(args.results)
    catalog = pd.read_csv(run / "morphology" / "catalog.csv", usecols=["objid", "status", "split"], dtype={"objid": "int64"})
    _, features = representations.read(run / "morphology" / "representations.npy", objids=catalog["objid"].to_numpy())
    base = np.asarray(features)[np.isfinite(features).all(axis=1)]
    labels = pd.read_csv(run / "labels" / "labels.csv", usecols=["label", "confidence", "split"])
    threshold = load_config()["labels"]["threshold"]
    known = labels[labels["split"].isin(TRAINED_ON) & is_confident(labels["confidence"], threshold)]
    confident, merger_share = len(known) / len(catalog), float((known["label"] == "merger").mean())
    settings = IndexSettings.from_config(load_config()["similarity"]["index"])
    print(f"{len(base)} representations of {base.shape[1]} features from {run}; {settings}; {args.threads} threads", flush=True)
    print("the merge job's representations:", merge_cost(base, args.galaxies), flush=True)
    rows = []
    for jitter in args.jitter:
        r = measure(base, args.galaxies, jitter, args, settings, confident, merger_share)
        rows.append(r)
        print(r, flush=True)
    print(
        "\n| galaxies | jitter | build (s) | index on disk (MB) | peak RSS (MB) | k=20 query median / p95 (ms) | exact query (ms) "
        "| recall@20 | unusual, all (s) | merger_likeness, all (s) |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['galaxies']:,} | {r['jitter']} | {r['build_s']} | {r['index_mb']} | {r['rss_peak_mb']:,} | {r['query_ms_median']} / "
            f"{r['query_ms_p95']} | {r['exact_query_ms_median']} | {r['recall_at_20']} | {r['unusual_s']} | {r['merger_likeness_s']} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
