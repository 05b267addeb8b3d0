"""The yardstick: k-fold cross-validation of named recipes over all 1,500 demo galaxies.

Every galaxy of the demo sky is held out exactly once (folds stratified by its real Galaxy Zoo 1
class, seeded). For each fold and recipe the package's own stage functions run as the workflow
runs them: the demo sky is queried and scraped once (per cutout geometry); the labels of the
other folds go through the confidence cut on their (simulated) votes, a val split is carved from
them, shards are built (``shards.run_*``), the network is trained and calibrated (``train.run``)
and evaluated (``evaluate.run``) on the held-out fold. Scores are against each held-out galaxy's
real Galaxy Zoo 1 class (``resources/demo_sky/labels.csv``), not the simulated votes, and take in
every held-out galaxy, confident or not.

Per recipe it prints mean and spread over the folds of: accuracy; balanced accuracy over
elliptical / face-on / edge-on (``bal3``, the mean of their recalls, all galaxies); balanced
accuracy over the four classes; per-class recall and precision; merger recall and precision at the
model's merger threshold; merger average precision; ECE (calibrated and not). Decisions about
recipes are made on these numbers, never on the demo test split.

    .venv/bin/python benchmarks/accuracy.py                          # every recipe, 5 folds (hours on 2 cores)
    .venv/bin/python benchmarks/accuracy.py --recipes default study  # some of them
    .venv/bin/python benchmarks/accuracy.py --list                   # the recipes and what they change

Results are cached per (recipe, fold) under --work (default results/benchmarks/accuracy/), in a
folder named by a digest of the recipe's effective settings (config.yaml with the recipe's
overrides, keys that only say how a job runs left out) and of the training mode the CPU picks
(bf16 or fp32, ``train.training_mode_for``), so an interrupted run picks up where it stopped and an
edited config.yaml never reuses another setting's folds; --fresh starts over. The table goes to
stdout and, as markdown and JSON, to --work.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from nightskynet.analysis.rankings import precision_recall
from nightskynet.core.config import load_config, merge, runtime_keys
from nightskynet.core.vocabulary import CLASS_NAMES, EVAL_SPLITS, PROB_COLUMNS, is_confident
from nightskynet.sky.cutout_client import GEOMETRY_KEYS
from nightskynet.stages import evaluate, query, scrape, shards, train
from nightskynet.stages.labels import make_labels, stratified_split

REPO = Path(__file__).resolve().parent.parent
SKY = REPO / "resources" / "demo_sky"
CLIENT = {"concurrency": 16, "max_rate": 0, "timeout_s": 30, "max_attempts": 3, "backoff_base_s": 0.1, "backoff_max_s": 2}

# Named recipes: overrides of config.yaml. "default" is config.yaml as it is.
RECIPES: dict[str, tuple[str, dict]] = {
    "default": ("config.yaml as shipped", {}),
    "study": (
        "the study's network and training, hard targets, 1% mergers, uncalibrated",
        {"train": {"recipe": "study", "targets": "hard", "calibrate": False}},
    ),
    "study-calibrated": ("the study's recipe with calibration", {"train": {"recipe": "study", "targets": "hard"}}),
    "resnet-hard": ("default, but hard targets (confident galaxies only)", {"train": {"targets": "hard"}}),
    "resnet-hard-smooth": ("resnet-hard with label smoothing 0.1", {"train": {"targets": "hard", "resnet": {"label_smoothing": 0.1}}}),
    "resnet-ema": ("default with an EMA of the weights (0.995)", {"train": {"resnet": {"ema": 0.995}}}),
    "resnet-mergers-25": ("default with mergers at 25% of each batch", {"train": {"resnet": {"merger_share": 0.25}}}),
    "resnet-no-fresh-views": ("default without the fresh D4 element and shift per step", {"train": {"resnet": {"shift": 0}}}),
    "resnet-wide": ("default with width 24", {"train": {"resnet": {"width": 24}}}),
    # The training budget: passes over the stored training images (shards.total each)
    **{f"epochs-{n}": (f"default trained for {n} epochs", {"train": {"resnet": {"epochs": n}}}) for n in (6, 12, 18, 36)},
    "scale-0.2": ('default on 2x magnified cutouts (0.2"/px: the 60 px crop spans 12")', {"scrape": {"scale": 0.2}}),
    "crop-48": ('default on 48 px crops (19" instead of 24")', {"shards": {"crop": 48}}),
    # The learning curve: the default trained on a share of each fold's training galaxies (val and test as they are),
    # with the same number of augmented images (so each galaxy is seen more often) ...
    "default-train-25": ("default trained on 25% of each fold's training galaxies, as many images (learning curve)", {}),
    "default-train-50": ("default trained on 50% of each fold's training galaxies, as many images (learning curve)", {}),
    # ... or with as many presentations per galaxy as the default (shards.total scaled by the share)
    "per-galaxy-25": ("default trained on 25% of each fold's training galaxies, shards.total x 0.25 (learning curve)", {}),
    "per-galaxy-50": ("default trained on 50% of each fold's training galaxies, shards.total x 0.5 (learning curve)", {}),
}
TRAIN_FRACTION = {"default-train-25": 0.25, "default-train-50": 0.5, "per-galaxy-25": 0.25, "per-galaxy-50": 0.5}
PER_GALAXY = {"per-galaxy-25", "per-galaxy-50"}


def recipe_config(name: str) -> dict:
    """config.yaml with the recipe's overrides (and, for the per-galaxy learning curve, shards.total scaled by its share)."""
    config = merge(load_config(), RECIPES[name][1])
    if name in PER_GALAXY:
        config["shards"]["total"] = round(config["shards"]["total"] * TRAIN_FRACTION[name])
    return config


def settings_digest(name: str, config: dict, mode: train.TrainingMode | None) -> str:
    """What decides a recipe's folds: its settings without the keys that only say how a job runs, its share of the
    training galaxies, and the CPU's training mode (bf16 or fp32)."""
    runtime = runtime_keys()
    kept = {
        section: {k: v for k, v in values.items() if f"{section}.{k}" not in runtime} if isinstance(values, dict) else values
        for section, values in config.items()
        if section not in ("sdss", "predict", "cluster", "report", "similarity", "run")
    }
    kept["demo"].pop("sky_dir")  # always the bundled sky (SKY); its absolute path differs between checkouts
    trained_in = (mode or train.training_mode_for(torch.device("cpu"))).name
    blob = json.dumps({"config": kept, "train_fraction": TRAIN_FRACTION.get(name, 1.0), "mode": trained_in}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:10]


def recipe_dir(work: Path, name: str, config: dict, mode: train.TrainingMode | None) -> Path:
    return work / name / settings_digest(name, config, mode)


def setup_logging(verbose: bool) -> None:
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")


def folds_of(true_class: pd.Series, k: int, seed: int) -> pd.Series:
    """Fold number per galaxy, stratified by class, seeded."""
    rng = np.random.default_rng(seed)
    fold = pd.Series(0, index=true_class.index)
    for c in CLASS_NAMES:
        idx = true_class.index[true_class == c].to_numpy()
        fold.loc[idx[rng.permutation(len(idx))]] = np.arange(len(idx)) % k
    return fold


def prepare_sky(work: Path, config: dict) -> tuple[pd.DataFrame, list[str], list[str]]:
    """Catalog and labels of every demo galaxy, and their cutouts (one chunk) for this config's geometry."""
    sky = work / "sky"
    catalog_csv = sky / "catalog.csv"
    if not catalog_csv.exists():
        query.run(
            catalog=catalog_csv,
            catalog_fits=sky / "catalog.fits",
            settings={"source": "demo", "demo": config["demo"], "query": {"tables": ["zooSpec", "zooNoSpec"], "limit": 0}},
            page_size=50000,
            sql_timeout_s=60,
            max_attempts=3,
            demo_max_rows=config["demo"]["max_rows"],
        )
    catalog = pd.read_csv(catalog_csv, dtype={"objid": "int64"})
    everything, _ = make_labels(catalog, config["labels"]["threshold"], 0.2, 0.1, -1, 1, "votes", 0)
    geometry = {k: config["scrape"][k] for k in GEOMETRY_KEYS}
    tag = "-".join(f"{k}{geometry[k]}" for k in GEOMETRY_KEYS)
    tar, manifest = sky / f"cutouts-{tag}.tar", sky / f"cutouts-{tag}.manifest.csv"
    if not tar.exists():
        all_csv = sky / "all_labels.csv"
        everything.to_csv(all_csv, index=False)
        scrape.run(
            catalog=all_csv,
            tar=tar,
            manifest=manifest,
            chunk=0,
            settings={"source": "demo", "demo": config["demo"], "scrape": {"chunks": 1, **geometry}},
            client=CLIENT,
            cache_dir=work / "cache",
        )
    return everything, [str(manifest)], [str(tar)]


def fold_labels(everything: pd.DataFrame, fold: pd.Series, k: int, config: dict, train_fraction: float = 1.0) -> pd.DataFrame:
    """The labels table of one fold: fold k is the test split (every galaxy); train/val from the others, as the labels stage would.

    ``train_fraction`` < 1 keeps that share of the training galaxies (per class, seeded) for the learning curve.
    """
    lab = config["labels"]
    held = fold.reindex(everything["objid"]).to_numpy() == k
    table = everything.copy()
    table["split"] = "none"
    table.loc[held, "split"] = "test"
    rng = np.random.default_rng([lab["seed"], k])
    rest = table[~held]
    confident = is_confident(rest["confidence"], lab["threshold"])
    table.loc[rest.index[confident], "split"] = stratified_split(rest.loc[confident, "label"], 0.0, lab["val_fraction"], rng)
    if config["train"]["targets"] == "votes":
        extra = rest[~confident & (rest["nvote"] >= config["train"]["min_votes"])]
        table.loc[extra.index, "split"] = stratified_split(extra["label"], 0.0, lab["val_fraction"], rng)
    if train_fraction < 1:
        sub = np.random.default_rng([lab["seed"], k, 1])
        for _, rows in table[table["split"] == "train"].groupby("label"):
            drop = sub.permutation(rows.index.to_numpy())[max(1, round(len(rows) * train_fraction)) :]
            table.loc[drop, "split"] = "none"
    return table[table["split"] != "none"].reset_index(drop=True)


def run_fold(
    work: Path,
    name: str,
    config: dict,
    everything: pd.DataFrame,
    manifests: list[str],
    tars: list[str],
    fold: pd.Series,
    k: int,
    truth: pd.Series,
    threads: int,
    mode: train.TrainingMode | None,
) -> dict:
    out = recipe_dir(work, name, config, mode) / f"fold{k}"
    done = out / "scores.json"
    if done.exists():
        return json.loads(done.read_text())
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    labels_csv = out / "labels.csv"
    fold_labels(everything, fold, k, config, TRAIN_FRACTION.get(name, 1.0)).to_csv(labels_csv, index=False)
    stage = {"shards": config["shards"], "scrape": {k2: config["scrape"][k2] for k2 in GEOMETRY_KEYS}}
    train_paths = [str(out / f"train_{i}.npz") for i in range(config["shards"]["train_shards"])]
    t0 = time.monotonic()
    inputs = {"labels": str(labels_csv), "scrape_manifests": manifests, "chunk_tars": tars}
    for i, path in enumerate(train_paths):
        shards.run_train_shard(**inputs, train_shard=path, shard=i, settings=stage)
    evals = {s: str(out / f"{s}.npz") for s in EVAL_SPLITS}
    shards.run_eval_shards(**inputs, **evals, settings=stage)
    shards.run_manifest(
        labels=str(labels_csv),
        scrape_manifests=manifests,
        shards=train_paths + list(evals.values()),
        shards_manifest=str(out / "manifest.json"),
        settings=stage,
    )
    t1 = time.monotonic()
    train.run(
        train_shards=train_paths,
        val=evals["val"],
        shards_manifest=str(out / "manifest.json"),
        model=str(out / "model.pt"),
        history=str(out / "history.csv"),
        settings={"train": config["train"]},
        device="cpu",
        checkpoint_dir=out / "checkpoint",
        threads=threads,
        mode=mode,
    )
    t2 = time.monotonic()
    files = {
        "metrics": str(out / "metrics.json"),
        **{
            f"predictions_{s}{suffix}": str(out / f"predictions_{s}.{suffix[1:] or 'csv'}")
            for s in ("test", "uncertain")
            for suffix in ("", "_fits")
        },
        **{n: str(out / f"{n}.png") for n in evaluate.EVALUATE_FIGURES},
    }
    evaluate.run(
        model=str(out / "model.pt"),
        test=evals["test"],
        uncertain=evals["uncertain"],
        labels=str(labels_csv),
        **files,
        settings={"source": "demo", "evaluate": config["evaluate"]},
        device="cpu",
        batch_size=config["evaluate"]["batch_size"],
        threads=threads,
    )
    scores = score(pd.read_csv(files["predictions_test"], dtype={"objid": "int64"}), truth)
    scores.update(
        fold=k,
        train_seconds=round(t2 - t1, 1),
        shard_seconds=round(t1 - t0, 1),
        trained_in=(mode or train.training_mode_for(torch.device("cpu"))).name,
    )
    done.write_text(json.dumps(scores, indent=1))
    for path in train_paths:
        Path(path).unlink()  # keep the model, its val and test sets, metrics and predictions; the training shards are rebuilt in seconds
    return scores


def ece(probs: np.ndarray, y: np.ndarray) -> float:
    return evaluate.calibration(probs, y)["expected_calibration_error"]


def score(pred: pd.DataFrame, truth: pd.Series) -> dict:
    """Scores of one fold's predictions against the real Galaxy Zoo 1 classes."""
    y = np.array([CLASS_NAMES.index(c) for c in truth.reindex(pred["objid"])])
    probs = pred[list(PROB_COLUMNS)].to_numpy(float)
    p = probs.argmax(1)
    recall = {c: float((p[y == i] == i).mean()) for i, c in enumerate(CLASS_NAMES)}
    precision = {c: float((y[p == i] == i).mean()) if (p == i).any() else 0.0 for i, c in enumerate(CLASS_NAMES)}
    flagged, is_merger = pred["merger_candidate"].to_numpy(bool), y == 3
    _, _, merger_ap = precision_recall(probs[:, 3], is_merger)
    return {
        "n": int(len(y)),
        "accuracy": float((p == y).mean()),
        "bal3": float(np.mean([recall[c] for c in CLASS_NAMES[:3]])),
        "bal4": float(np.mean(list(recall.values()))),
        **{f"recall_{c}": v for c, v in recall.items()},
        **{f"precision_{c}": v for c, v in precision.items()},
        "merger_recall_at_threshold": float(flagged[is_merger].mean()) if is_merger.any() else float("nan"),
        "merger_precision_at_threshold": float(is_merger[flagged].mean()) if flagged.any() else 0.0,
        "merger_candidates": int(flagged.sum()),
        "merger_ap": float(merger_ap),
        "ece": float(ece(probs, y)),
    }


COLUMNS = [
    ("bal3", "balanced acc. (ell/face-on/edge-on)"),
    ("accuracy", "accuracy"),
    ("bal4", "balanced acc. (4 classes)"),
    ("recall_elliptical", "recall ell."),
    ("recall_face_on_spiral", "recall face-on"),
    ("recall_edge_on_spiral", "recall edge-on"),
    ("precision_elliptical", "precision ell."),
    ("precision_face_on_spiral", "precision face-on"),
    ("precision_edge_on_spiral", "precision edge-on"),
    ("merger_recall_at_threshold", "merger recall @thr"),
    ("merger_precision_at_threshold", "merger precision @thr"),
    ("merger_ap", "merger AP"),
    ("ece", "ECE"),
    ("train_seconds", "train s/fold"),
]


def calibration_floor(probs: np.ndarray, draws: int = 200, seed: int = 0) -> float:
    """The ECE a perfectly calibrated model with these probabilities would show on this many galaxies:
    the mean ECE against classes drawn from the probabilities themselves (the measurement's noise floor)."""
    rng = np.random.default_rng(seed)
    cum = probs.cumsum(axis=1)
    return float(np.mean([ece(probs, (rng.random((len(probs), 1)) > cum).sum(axis=1).clip(0, 3)) for _ in range(draws)]))


def pooled(folder: Path, folds: list[dict], truth: pd.Series) -> dict:
    """Scores of all held-out predictions together (every demo galaxy once), and the ECE noise floors."""
    frames = [pd.read_csv(folder / f"fold{f['fold']}" / "predictions_test.csv", dtype={"objid": "int64"}) for f in folds]
    pred = pd.concat(frames, ignore_index=True)
    out = score(pred, truth)
    probs = pred[list(PROB_COLUMNS)].to_numpy(float)
    out["ece_floor_pooled"] = calibration_floor(probs)
    out["ece_floor_fold"] = float(np.mean([calibration_floor(f[list(PROB_COLUMNS)].to_numpy(float)) for f in frames]))
    return out


PAIRED = [("bal3", "bal. acc. (3)"), ("accuracy", "accuracy"), ("merger_ap", "merger AP"), ("ece", "ECE")]


def paired(results: dict[str, list[dict]], baseline: str) -> list[str]:
    """Each recipe against ``baseline``, fold by fold: mean ± sd of the differences and in how many folds it is higher."""
    base = {f["fold"]: f for f in results[baseline]}
    rows = [
        f"Paired over the folds, against `{baseline}` (mean ± sd of the per-fold differences; folds where the recipe is higher):",
        "",
        "| recipe | " + " | ".join(f"Δ {label}" for _, label in PAIRED) + " |",
        "|" + "---|" * (len(PAIRED) + 1),
    ]
    for name, folds in results.items():
        if name == baseline:
            continue
        common = [f for f in folds if f["fold"] in base]
        cells = []
        for key, _ in PAIRED:
            d = np.array([f[key] - base[f["fold"]][key] for f in common], float)
            cells.append(f"{d.mean():+.3f} ± {d.std():.3f} ({int((d > 0).sum())} of {len(d)})")
        rows.append(f"| {name} | " + " | ".join(cells) + " |")
    return rows


def summarise(folders: dict[str, Path], results: dict[str, list[dict]], truth: pd.Series, baseline: str | None) -> tuple[str, dict]:
    rows, summary = [], {}
    header = "| recipe | " + " | ".join(label for _, label in COLUMNS) + " |"
    rows += [header, "|" + "---|" * (len(COLUMNS) + 1)]
    for name, folds in results.items():
        stats = {}
        cells = []
        for key, _ in COLUMNS:
            values = np.array([f[key] for f in folds], float)
            mean, sd = float(np.nanmean(values)), float(np.nanstd(values))
            stats[key] = {"mean": round(mean, 4), "sd": round(sd, 4)}
            cells.append(f"{mean:.0f}" if key == "train_seconds" else f"{mean:.3f} ± {sd:.3f}")
        summary[name] = {
            "folds": len(folds),
            **stats,
            "pooled": {k: round(v, 4) if isinstance(v, float) else v for k, v in pooled(folders[name], folds, truth).items()},
        }
        rows.append(f"| {name} ({len(folds)} folds) | " + " | ".join(cells) + " |")
    rows += [
        "",
        "All held-out predictions pooled (every galaxy once; merger decisions at each fold's own threshold), and the ECE a "
        "perfectly calibrated model would show on as many galaxies:",
        "",
    ]
    keys = [
        ("bal3", "bal. acc. (3)"),
        ("accuracy", "accuracy"),
        ("merger_recall_at_threshold", "merger recall @thr"),
        ("merger_precision_at_threshold", "merger precision @thr"),
        ("merger_ap", "merger AP"),
        ("ece", "ECE"),
        ("ece_floor_pooled", "ECE floor, pooled"),
        ("ece_floor_fold", "ECE floor, one fold"),
    ]
    rows += ["| recipe | " + " | ".join(label for _, label in keys) + " |", "|" + "---|" * (len(keys) + 1)]
    for name in results:
        rows.append(f"| {name} | " + " | ".join(f"{summary[name]['pooled'][k]:.3f}" for k, _ in keys) + " |")
    per_fold = ["", "Per fold, bal. acc. (3):", ""]
    per_fold += [f"- {name}: " + " / ".join(f"{f['bal3']:.3f}" for f in folds) for name, folds in results.items()]
    rows += per_fold
    if baseline is not None and baseline in results:
        rows += ["", *paired(results, baseline)]
    return "\n".join(rows), summary


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--recipes", nargs="+", default=list(RECIPES), help="names from --list (default: all)")
    p.add_argument("--folds", type=int, default=5)
    p.add_argument("--only-folds", type=int, nargs="+", default=None, help="run just these folds (for a quick look)")
    p.add_argument("--seed", type=int, default=1, help="seed of the fold assignment")
    p.add_argument("--work", default=str(REPO / "results" / "benchmarks" / "accuracy"))
    p.add_argument("--threads", type=int, default=2)
    p.add_argument(
        "--cpu-mode", choices=["auto", "fp32"], default="auto", help="auto: what the train stage picks here (bf16 where the CPU has it)"
    )
    p.add_argument("--fresh", action="store_true", help="forget cached folds")
    p.add_argument("--baseline", default=None, help="a recipe of --recipes to compare the others with, fold by fold (default: the first)")
    p.add_argument("--list", action="store_true")
    p.add_argument("-v", "--verbose", action="store_true")
    args = p.parse_args()
    if args.list:
        for name, (what, overrides) in RECIPES.items():
            print(f"{name:24s} {what}\n{'':24s} {json.dumps(overrides)}")
        return 0
    unknown = [r for r in args.recipes if r not in RECIPES]
    if unknown:
        p.error(f"unknown recipe(s) {unknown}; --list shows them")
    setup_logging(args.verbose)
    work = Path(args.work)
    if args.fresh and work.exists():
        shutil.rmtree(work)
    truth = pd.read_csv(SKY / "labels.csv", dtype={"objid_dr7": "int64"}).set_index("objid_dr7")["class4"]
    fold = folds_of(truth, args.folds, args.seed)
    mode = train.FP32_NCHW if args.cpu_mode == "fp32" else None
    results: dict[str, list[dict]] = {}
    folders: dict[str, Path] = {}
    for name in args.recipes:
        config = recipe_config(name)
        folders[name] = recipe_dir(work, name, config, mode)
        everything, manifests, tars = prepare_sky(work, config)
        results[name] = []
        for k in args.only_folds if args.only_folds is not None else range(args.folds):
            t0 = time.monotonic()
            s = run_fold(work, name, config, everything, manifests, tars, fold, k, truth, args.threads, mode)
            results[name].append(s)
            print(
                f"{name} fold {k}: bal3 {s['bal3']:.3f} accuracy {s['accuracy']:.3f} merger recall/precision @thr "
                f"{s['merger_recall_at_threshold']:.2f}/{s['merger_precision_at_threshold']:.2f} AP {s['merger_ap']:.2f} "
                f"ECE {s['ece']:.3f} ({time.monotonic() - t0:.0f} s)",
                flush=True,
            )
    table, summary = summarise(folders, results, truth, args.baseline or args.recipes[0])
    print("\n" + table)
    (work / "summary.md").write_text(table + "\n")
    (work / "summary.json").write_text(
        json.dumps(
            {
                "folds": args.folds,
                "seed": args.seed,
                "recipes": {n: {"what": RECIPES[n][0], "overrides": RECIPES[n][1], **summary[n]} for n in summary},
            },
            indent=1,
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
