"""How many D4 views a galaxy needs, on the yardstick folds: 1, 2, 4 and 8 for accuracy, calibration and neighbours.

For each fold of benchmarks/accuracy.py (the default recipe, or ``--recipe``; its models trained, or read from its
cache, as that script does), every demo galaxy is classified and represented by that fold's model with the
first 1, 2, 4 and 8 D4 views averaged (``inference.d4_views``: 1 the image itself, 2 it and its rotation by 90
degrees, 4 the four rotations, 8 those and their mirror images), and scored on the fold's held-out galaxies
against their real Galaxy Zoo 1 class, as the yardstick scores them: balanced accuracy over elliptical /
face-on / edge-on, accuracy, merger average precision, merger recall and precision at the fold model's own
threshold, ECE (pooled over the folds beside the per-fold mean), and the representations' 10-NN purity
(benchmarks/representations.py). Also: the engine's galaxies a second at each number of views (2 threads).

    .venv/bin/python benchmarks/views.py              # 5 folds (trains what the accuracy cache lacks)

Prints a markdown table and writes it with the JSON to views.{md,json} in the recipe's folder of --work.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))

import accuracy  # noqa: E402  (the yardstick's folds, models and cache)
import representations  # noqa: E402  (every galaxy represented by a fold's model)

from nightskynet.analysis.neighbours import neighbour_purity  # noqa: E402
from nightskynet.core.prediction_columns import prediction_columns  # noqa: E402
from nightskynet.core.vocabulary import PROB_COLUMNS, TRAINED_ON  # noqa: E402
from nightskynet.net.inference import Calibration, answer, open_engine  # noqa: E402

VIEW_COUNTS = (1, 2, 4, 8)
THREE = representations.THREE


def engine_rate(model_path: Path, views: int, threads: int, seconds: float = 4.0) -> float:
    """Galaxies a second of the engine alone at ``views`` views, 64 galaxies a call, on random crops."""
    engine, saved = open_engine(model_path, "cpu", threads)
    crops = np.random.default_rng(0).integers(0, 256, size=(64, 60, 60, 3), dtype=np.uint8)
    answer(engine, crops, Calibration.of(saved), views)
    done, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        answer(engine, crops, Calibration.of(saved), views)
        done += len(crops)
    return done / (time.perf_counter() - t0)


def fold_views(folder: Path, k: int, tar: str, truth: pd.Series, threads: int) -> dict:
    """Per number of views: the fold's scores on its held-out galaxies, and the 10-NN purity."""
    out = folder / f"fold{k}"
    labels = pd.read_csv(out / "labels.csv", dtype={"objid": "int64"}).set_index("objid")
    result = {"fold": k}
    for views in VIEW_COUNTS:
        ids, x, p, saved = representations.represent_all(out / "model.pt", tar, threads, views)
        split = labels["split"].reindex(ids).fillna("none").to_numpy()
        held, trained = split == "test", np.isin(split, TRAINED_ON)
        pred = pd.concat([pd.DataFrame({"objid": ids[held]}), prediction_columns(p[held], saved.get("merger_threshold"))], axis=1)
        scores = accuracy.score(pred, truth)
        true = truth.reindex(ids).to_numpy()
        q = held & np.isin(true, THREE)
        scores["purity"] = neighbour_purity(x[q], true[q], x[trained], true[trained], THREE, k=10)["balanced"]
        scores["pooled"] = {"objid": ids[held].tolist(), "probs": p[held].tolist(), "flag": pred["merger_candidate"].tolist()}
        result[views] = scores
    return result


ROWS = [
    ("bal3", "balanced acc. (ell/face-on/edge-on)"),
    ("accuracy", "accuracy"),
    ("merger_ap", "merger AP"),
    ("merger_recall_at_threshold", "merger recall @thr"),
    ("merger_precision_at_threshold", "merger precision @thr"),
    ("ece", "ECE (per fold)"),
    ("purity", "10-NN purity"),
]


def table(folds: list[dict], truth: pd.Series, rates: dict[int, float]) -> str:
    extra = " | ECE pooled | Δ bal. acc. vs 8, paired (folds higher) | engine, galaxies/s |"
    lines = [
        "| views | " + " | ".join(label for _, label in ROWS) + extra,
        "|" + "---|" * (len(ROWS) + 4),
    ]
    for views in VIEW_COUNTS:
        cells = []
        for key, _ in ROWS:
            v = np.array([f[views][key] for f in folds], float)
            cells.append(f"{np.nanmean(v):.3f} ± {np.nanstd(v):.3f}")
        pooled = pd.concat(
            [
                pd.DataFrame(
                    {
                        "objid": f[views]["pooled"]["objid"],
                        **dict(zip(PROB_COLUMNS, np.array(f[views]["pooled"]["probs"]).T, strict=True)),
                        "merger_candidate": f[views]["pooled"]["flag"],
                    }
                )
                for f in folds
            ]
        )
        ece = accuracy.score(pooled, truth)["ece"]
        d = np.array([f[views]["bal3"] - f[8]["bal3"] for f in folds])
        paired = f"{d.mean():+.3f} ± {d.std():.3f} ({int((d > 0).sum())} of {len(d)})"
        lines.append(f"| {views} | " + " | ".join(cells) + f" | {ece:.3f} | {paired} | {rates[views]:.0f} |")
    return "\n".join(lines)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--folds", type=int, default=5)
    p.add_argument("--only-folds", type=int, nargs="+", default=None)
    p.add_argument("--seed", type=int, default=1, help="seed of the fold assignment (as benchmarks/accuracy.py)")
    p.add_argument("--work", default=str(accuracy.REPO / "results" / "benchmarks" / "accuracy"))
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--recipe", default="default", help="a recipe of benchmarks/accuracy.py --list")
    args = p.parse_args()
    accuracy.setup_logging(False)
    work = Path(args.work)
    truth = pd.read_csv(accuracy.SKY / "labels.csv", dtype={"objid_dr7": "int64"}).set_index("objid_dr7")["class4"]
    fold = accuracy.folds_of(truth, args.folds, args.seed)
    config = accuracy.recipe_config(args.recipe)
    folder = accuracy.recipe_dir(work, args.recipe, config, None)
    everything, manifests, tars = accuracy.prepare_sky(work, config)
    results = []
    for k in args.only_folds if args.only_folds is not None else range(args.folds):
        t0 = time.monotonic()
        accuracy.run_fold(work, args.recipe, config, everything, manifests, tars, fold, k, truth, args.threads, None)
        results.append(fold_views(folder, k, tars[0], truth, args.threads))
        summary = ", ".join(f"{v} views {results[-1][v]['bal3']:.3f}/{results[-1][v]['purity']:.3f}" for v in VIEW_COUNTS)
        print(f"fold {k} (bal3/purity): {summary} ({time.monotonic() - t0:.0f} s)", flush=True)
    rates = {v: engine_rate(folder / f"fold{results[0]['fold']}" / "model.pt", v, args.threads) for v in VIEW_COUNTS}
    text = table(results, truth, rates)
    print("\n" + text)
    (folder / "views.md").write_text(text + "\n")
    stripped = [{v: {k: s for k, s in f[v].items() if k != "pooled"} for v in VIEW_COUNTS} | {"fold": f["fold"]} for f in results]
    (folder / "views.json").write_text(json.dumps(stripped, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
