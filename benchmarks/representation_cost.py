"""What storing the representations costs the morphology stage: the same chunk job and merge job, by this checkout
and by the commit before the representations (--before), in turns on the same inputs.

Both versions run as the workflow runs them (`python -m nightskynet morphology-chunk ...` and `morphology ...`),
the older one from a `git worktree` of --before, on a finished run's chunk tars (default results/demo). The chunk
job of this checkout also averages the features over the views and writes them (representations.npy); the merge
also places every chunk's representations in the catalog's order. Prints the median wall time of each over
--rounds rounds and the extra share.

    .venv/bin/python benchmarks/representation_cost.py                 # results/demo, 3 rounds, before = 3e7cce8
    .venv/bin/python benchmarks/representation_cost.py --chunks 0 1 2 3 --rounds 5
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent


def run(package_root: Path, args: list[str]) -> float:
    env = {**os.environ, "PYTHONPATH": str(package_root / "workflow")}
    t0 = time.monotonic()
    subprocess.run([sys.executable, "-m", "nightskynet", *args], check=True, env=env, capture_output=True, text=True)
    return time.monotonic() - t0


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--results", default=str(REPO / "results" / "demo"))
    p.add_argument("--before", default="3e7cce8", help="the commit without representations")
    p.add_argument("--chunks", type=int, nargs="+", default=[0], help="which chunk jobs to time")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args()
    run_dir = Path(args.results)
    n_chunks = len(list((run_dir / "images").glob("chunk_*.tar")))
    settings = json.dumps({"morphology": {"views": 8}, "scrape": {"chunks": n_chunks}})
    merge_settings = json.dumps({"morphology": {"views": 8}, "source": "demo"})
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        old = tmp / "before"
        subprocess.run(["git", "-C", str(REPO), "worktree", "add", "--detach", str(old), args.before], check=True, capture_output=True)
        try:
            times: dict[str, list[float]] = {"chunk before": [], "chunk now": [], "merge before": [], "merge now": []}
            for _ in range(args.rounds):
                for name, root in (("before", old), ("now", REPO)):
                    out = tmp / name
                    out.mkdir(exist_ok=True)
                    total = 0.0
                    for k in args.chunks:
                        files = [
                            "--settings",
                            settings,
                            "--model",
                            str(run_dir / "model/model.pt"),
                            "--catalog",
                            str(run_dir / "catalog/gz1_votes.csv"),
                            "--labels",
                            str(run_dir / "labels/labels.csv"),
                            "--tar",
                            str(run_dir / f"images/chunk_{k}.tar"),
                            "--manifest",
                            str(run_dir / f"images/chunk_{k}.manifest.csv"),
                            "--chunk",
                            str(k),
                            "--out",
                            str(out / f"chunk_{k}.csv"),
                            "--device",
                            "cpu",
                            "--threads",
                            str(args.threads),
                        ]
                        if name == "now":
                            files += ["--representations", str(out / f"chunk_{k}.representations.npy")]
                        total += run(root, ["morphology-chunk", *files])
                    times[f"chunk {name}"].append(total)
                    chunks = [str(out / f"chunk_{k}.csv") for k in args.chunks]
                    merge = ["--settings", merge_settings, "--chunks", *chunks, "--chunk-tars"]
                    merge += [str(run_dir / f"images/chunk_{k}.tar") for k in args.chunks]
                    merge += ["--csv", str(out / "catalog.csv"), "--comparison", str(out / "c.json")]
                    merge += ["--vs-votes", str(out / "a.png"), "--by-votes", str(out / "b.png"), "--disagreements", str(out / "d.png")]
                    if name == "now":
                        merge += ["--chunk-representations", *[str(out / f"chunk_{k}.representations.npy") for k in args.chunks]]
                        merge += ["--representations", str(out / "representations.npy")]
                    times[f"merge {name}"].append(run(root, ["morphology", *merge]))
        finally:
            subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force", str(old)], capture_output=True)
    galaxies = sum(1 for k in args.chunks for _ in open(run_dir / f"morphology/chunk_{k}.csv")) - len(args.chunks)
    print(f"{galaxies} galaxies in chunk(s) {args.chunks}; {args.rounds} rounds in turns; median wall time (s), every round")
    print("| job | before (no representations) | now (representations stored) | extra |")
    print("|---|---|---|---|")
    for job in ("chunk", "merge"):
        before, now = np.median(times[f"{job} before"]), np.median(times[f"{job} now"])
        print(
            f"| {job} | {before:.2f} ({', '.join(f'{t:.2f}' for t in times[f'{job} before'])}) | {now:.2f} "
            f"({', '.join(f'{t:.2f}' for t in times[f'{job} now'])}) | {100 * (now - before) / before:+.1f}% |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
