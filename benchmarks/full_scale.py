"""The study's scale, end to end: every stage of the real workflow on a demo sky of N galaxies.

The demo SkyServer serves ``demo.scale_to: N`` galaxies (the 1,500 bundled ones plus copies of
their images under made-up objids, SIMULATED votes; docs/design.md), and the real Snakemake runs
the workflow on it one stage at a time in a copy of the checkout under --work:

    query -> labels -> scrape -> shards -> train (the study's network, ONE epoch over the study's
    105,000 augmented images) -> evaluate -> catalog (every galaxy) -> report

Per stage it records wall time, the largest peak RSS of its jobs (Snakemake's benchmark files),
the files and bytes it wrote, and its jobs; before the run, the DAG's size and how long
``snakemake -n`` takes. With --kill-scrape-after S it kills the scrape (kill -9, every process of
it) S seconds in, and counts how many cutouts the restart fetches again that were already in
the cache (goal: at most those in flight). In the same run, the baseline: the same scrape client
on 2,000 galaxies of the same sky into a fresh cache (the scrape_throughput benchmark's size).

    .venv/bin/python benchmarks/full_scale.py --n 100000                 # ~20 min on 2 cores
    .venv/bin/python benchmarks/full_scale.py --n 893000 --chunks 32     # the whole of Galaxy Zoo 1: hours

Accuracy figures of such a run mean nothing (the same 1,500 images recur in every split). The
table goes to stdout and, as markdown and JSON, into --work.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import yaml

REPO = Path(__file__).resolve().parent.parent
SKY = REPO / "resources" / "demo_sky"
STAGES = (  # (stage, what snakemake is asked for, the rules whose jobs it runs, its outputs under results/)
    ("query", ["results/demo/catalog/gz1_votes.csv"], ["query"], ["catalog"]),
    ("labels", ["results/demo/labels/labels.csv"], ["labels"], ["labels"]),
    ("scrape", ["--until", "scrape"], ["scrape"], ["images"]),
    ("shards", ["--until", "shards"], ["shards_train", "shards_eval", "shards"], ["shards"]),
    ("train", ["--until", "train"], ["train"], ["model"]),
    ("evaluate", ["--until", "evaluate"], ["evaluate"], ["eval"]),
    ("catalog", ["--until", "catalog"], ["morphology_chunk", "catalog"], ["morphology"]),
    ("report", [], ["report"], ["report"]),
)


def scale_config(n: int, chunks: int, work: Path, views: int) -> dict:
    """The run's settings over config.yaml: the scaled sky, the study's shard count and one study epoch."""
    return {
        "evaluate": {"views": views},
        "morphology": {"views": views},
        "demo": {"sky_dir": str(SKY), "scale_to": n},
        "scrape": {"chunks": chunks, "cache_dir": str(work / "cache" / "cutouts")},
        "shards": {"total": 105_000, "train_shards": 8},
        "train": {"recipe": "study", "targets": "hard", "study": {"epochs": 1}, "checkpoint_dir": str(work / "cache" / "train")},
    }


def prepare(work: Path, n: int, chunks: int, views: int) -> Path:
    repo = work / "repo"
    if not repo.exists():
        repo.mkdir(parents=True)
        shutil.copy2(REPO / "config.yaml", repo / "config.yaml")
        shutil.copytree(REPO / "envs", repo / "envs")
        shutil.copytree(REPO / "workflow", repo / "workflow", ignore=shutil.ignore_patterns("__pycache__"))
    (repo / "scale.yaml").write_text(yaml.safe_dump(scale_config(n, chunks, work, views)))
    return repo


def job_env() -> dict[str, str]:
    """This interpreter's environment with its bin/ first on PATH, so the jobs find `nightskynet` (as after `make`)."""
    return {**os.environ, "PATH": os.pathsep.join((str(Path(sys.executable).parent), os.environ.get("PATH", "")))}


def snakemake(repo: Path, *args: str, log: Path) -> tuple[float, subprocess.CompletedProcess]:
    cmd = [sys.executable, "-m", "snakemake", "--cores", "2", *args, "--configfile", "scale.yaml"]  # --configfile takes every word after it
    t0 = time.monotonic()
    with open(log, "a") as out:
        out.write(f"\n$ {' '.join(cmd)}\n")
        out.flush()
        proc = subprocess.run(cmd, cwd=repo, stdout=out, stderr=subprocess.STDOUT, text=True, env=job_env())
    if proc.returncode != 0:
        raise SystemExit(f"snakemake {' '.join(args)} failed (exit {proc.returncode}); see {log}")
    return time.monotonic() - t0, proc


def dry_run(repo: Path) -> tuple[float, int]:
    """Seconds `snakemake -n` takes on a fresh run, and the jobs its DAG holds."""
    t0 = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "snakemake", "-n", "--cores", "2", "--configfile", "scale.yaml"],
        cwd=repo,
        capture_output=True,
        text=True,
        env=job_env(),
        check=True,
    )
    seconds = time.monotonic() - t0
    total = re.search(r"^total\s+(\d+)", proc.stdout + proc.stderr, re.M)
    return seconds, int(total.group(1)) if total else 0


def disk(path: Path) -> tuple[int, int]:
    """(files, bytes) under ``path``."""
    files = size = 0
    for root, _, names in os.walk(path):
        for name in names:
            files += 1
            size += os.path.getsize(os.path.join(root, name))
    return files, size


def peak_rss_mb(repo: Path, rules: list[str]) -> tuple[float, int]:
    """Largest max_rss (MB) over the jobs of these rules, from their benchmark files, and how many there were."""
    peaks, jobs = [], 0
    for rule in rules:
        folder = repo / "results" / "demo" / "benchmarks" / rule
        for tsv in sorted(folder.glob("*.tsv")) if folder.is_dir() else []:
            table = pd.read_csv(tsv, sep="\t")
            peaks.append(float(pd.to_numeric(table["max_rss"], errors="coerce").max()))
            jobs += 1
    single = repo / "results" / "demo" / "benchmarks" / f"{rules[0]}.tsv"
    if not jobs and single.is_file():
        peaks.append(float(pd.to_numeric(pd.read_csv(single, sep="\t")["max_rss"], errors="coerce").max()))
        jobs = 1
    return (max(peaks) if peaks else float("nan")), jobs


def scrape_counts(repo: Path, since: float = 0.0) -> dict[str, int]:
    """Downloaded (ok) and found in the cache (cached) over the scrape logs' summary lines (of the jobs run after ``since``)."""
    counts = {"ok": 0, "cached": 0}
    for log in sorted((repo / "results" / "demo" / "logs" / "scrape").glob("chunk_*.log")):
        if log.stat().st_mtime < since:
            continue
        lines = [ln for ln in log.read_text().splitlines() if re.search(r"chunk \d+: (\w+=\d+)", ln)]
        if lines:
            for key, value in re.findall(r"(\w+)=(\d+)", lines[-1]):
                counts[key] = counts.get(key, 0) + int(value)
    return counts


def killed_scrape(repo: Path, log: Path, after_s: float, cache: Path) -> dict:
    """Start the scrape, kill -9 every process of it ``after_s`` seconds in, start it again; what the restart refetched.

    ``refetched``: cutouts the restart downloaded although they were in the cache at the kill
    (its downloads minus the cutouts the cache gained); an in-flight cutout was not in the cache yet.
    """
    cmd = [sys.executable, "-m", "snakemake", "--cores", "2", "--until", "scrape", "--configfile", "scale.yaml"]
    with open(log, "a") as out:
        proc = subprocess.Popen(cmd, cwd=repo, stdout=out, stderr=subprocess.STDOUT, env=job_env(), start_new_session=True)
        time.sleep(after_s)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    killed_at = time.time()
    in_cache = cached_files(cache)
    # a killed Snakemake leaves its lock and incomplete markers: --unlock, then --rerun-incomplete as a user would
    snakemake(repo, "--unlock", log=log)
    seconds, _ = snakemake(repo, "--until", "scrape", "--rerun-incomplete", log=log)
    after = scrape_counts(repo, since=killed_at)
    gained = cached_files(cache) - in_cache
    return {
        "killed_after_s": after_s,
        "in_cache_at_kill": in_cache,
        "restart_downloaded": after["ok"],
        "restart_found_in_cache": after["cached"],
        "refetched": after["ok"] - gained,
        "restart_s": round(seconds, 1),
    }


def cached_files(cache: Path) -> int:
    return sum(1 for p in cache.rglob("*.jpg") if not p.parent.name.startswith(".incoming"))


def baseline_2000(n: int, work: Path) -> dict:
    """The scrape client alone on 2,000 galaxies (or all, if fewer) of the same sky, fresh cache, one chunk job's concurrency x 2."""
    from nightskynet.core.config import load_config, merge
    from nightskynet.sky.cutout_client import cutout_cache, download_all
    from nightskynet.sky.demo_server import running_demo_sky
    from nightskynet.sky.demo_sky import build_demo_sky

    config = merge(load_config(), scale_config(n, 1, work))
    galaxies = build_demo_sky(SKY, config["demo"]["seed"], n).catalog.sample(min(2000, n), random_state=0)
    cache_dir = work / "baseline_cache"
    shutil.rmtree(cache_dir, ignore_errors=True)
    client = {k: config["scrape"][k] for k in ("concurrency", "max_rate", "timeout_s", "max_attempts", "backoff_base_s", "backoff_max_s")}
    client["concurrency"] *= 2  # the workflow runs two chunk jobs at once on --cores 2
    with running_demo_sky(SKY, seed=config["demo"]["seed"], scale_to=n) as url:
        t0 = time.monotonic()
        outcomes = asyncio.run(download_all(url, galaxies, cutout_cache(config, cache_dir), config["scrape"], client, show_progress=False))
        seconds = time.monotonic() - t0
    shutil.rmtree(cache_dir, ignore_errors=True)
    ok = sum(o.status == "ok" for o in outcomes)
    return {"cutouts": ok, "seconds": round(seconds, 1), "img_per_s": round(ok / seconds, 1), "concurrency": client["concurrency"]}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n", type=int, default=100_000, help="galaxies in the sky (>= 1,500; Galaxy Zoo 1: 893,000)")
    p.add_argument("--chunks", type=int, default=16, help="scrape.chunks")
    p.add_argument("--work", default=None, help="default: results/benchmarks/full_scale/N<n>")
    p.add_argument("--kill-scrape-after", type=float, default=0, help="kill -9 the scrape this many seconds in, then restart it")
    p.add_argument("--views", type=int, choices=(1, 2, 4, 8), default=4, help="D4 views per galaxy in evaluate and morphology")
    p.add_argument("--stop-after", choices=[s[0] for s in STAGES], default="report", help="the last stage to run")
    args = p.parse_args()
    work = Path(args.work or REPO / "results" / "benchmarks" / "full_scale" / f"N{args.n}").resolve()
    work.mkdir(parents=True, exist_ok=True)
    repo = prepare(work, args.n, args.chunks, args.views)
    log = work / "snakemake.log"
    result: dict = {"n": args.n, "chunks": args.chunks, "views": args.views, "stages": {}}
    result["dry_run_s"], result["dag_jobs"] = dry_run(repo)
    print(f"snakemake -n: {result['dry_run_s']:.1f} s, {result['dag_jobs']} jobs in the DAG", flush=True)
    result["baseline_2000"] = baseline_2000(args.n, work)
    print(f"baseline, 2,000 cutouts: {result['baseline_2000']}", flush=True)
    for stage, target, rules, outputs in STAGES:
        if stage == "scrape" and args.kill_scrape_after:
            result["kill_restart"] = killed_scrape(repo, log, args.kill_scrape_after, work / "cache" / "cutouts")
            print(f"kill -9 and restart: {result['kill_restart']}", flush=True)
        seconds, _ = snakemake(repo, *target, log=log)
        if stage == "scrape" and "kill_restart" in result:
            seconds += args.kill_scrape_after + result["kill_restart"]["restart_s"]  # the whole scrape, both runs
        rss, jobs = peak_rss_mb(repo, rules)
        files, size = disk(repo / "results" / "demo" / outputs[0])
        row = {"seconds": round(seconds, 1), "peak_rss_mb": round(rss), "jobs": jobs, "files": files, "bytes": size}
        if stage == "scrape":
            row.update(scrape_counts(repo))
            row["cache_files"], row["cache_bytes"] = disk(work / "cache" / "cutouts")
        result["stages"][stage] = row
        print(f"{stage}: {row}", flush=True)
        (work / "full_scale.json").write_text(json.dumps(result, indent=1))
        if stage == args.stop_after:
            break
    table = ["| stage | wall s | jobs | peak RSS of a job (MB) | files | MB on disk |", "|---|---|---|---|---|---|"]
    for stage, row in result["stages"].items():
        table.append(
            f"| {stage} | {row['seconds']:.0f} | {row['jobs']} | {row['peak_rss_mb']} | {row['files']:,} | {row['bytes'] / 1e6:,.1f} |"
        )
    if "scrape" in result["stages"]:
        s = result["stages"]["scrape"]
        table.append(f"| (cutout cache) | | | | {s['cache_files']:,} | {s['cache_bytes'] / 1e6:,.1f} |")
    text = "\n".join(table)
    print("\n" + text)
    (work / "full_scale.md").write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
