"""The representations on the yardstick folds: are similar galaxies of one class, and are mergers found by example?

For each fold of benchmarks/accuracy.py (the default recipe, or ``--recipe``; its fold models are trained, or read
from its cache, exactly as that script does), every demo galaxy's representation is computed by that fold's model
(the network's penultimate features, averaged over the 8 D4 views, as the morphology stage does), and:

* **neighbour purity**: for each held-out galaxy of an elliptical, face-on or edge-on class (its real Galaxy
  Zoo 1 class), the share of its 10 nearest galaxies among the fold's training galaxies (train and val) with
  its own class, averaged per class and balanced over the three. Variants: cosine on the representations as
  they are (what the similarity stage uses), on the representations centred on the training mean, and a
  baseline: the four calibrated probabilities as the vector.
* **mergers by example**: the held-out galaxies ranked by their likeness to the fold's training mergers (the
  confident mergers of its labels, as the similarity stage takes them): ``knn`` (similarity-weighted share of
  mergers among the k nearest labelled training galaxies), ``examples`` (mean similarity of the k nearest
  training mergers), a small model on the representations (logistic regression, classes balanced), and the
  mean of the ranks by p_merger and by knn, beside the classifier's p_merger. Scores: average precision, precision at recall 0.7, and
  recall and precision at the classifier's merger threshold, against the real classes.

    .venv/bin/python benchmarks/representations.py              # 5 folds (trains what the accuracy cache lacks)
    .venv/bin/python benchmarks/representations.py --only-folds 0

Prints a markdown table per measure (per fold, mean and spread, and pooled over the folds) and writes it with
the JSON to representations.{md,json} in the recipe's folder of --work.
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

from nightskynet.analysis.neighbours import merger_likeness, neighbour_purity  # noqa: E402
from nightskynet.core.architecture import model_geometry  # noqa: E402
from nightskynet.core.config import load_config  # noqa: E402
from nightskynet.core.vocabulary import CLASS_NAMES, TRAINED_ON, is_confident  # noqa: E402
from nightskynet.images.augment import crop  # noqa: E402
from nightskynet.images.cutouts import decode, iter_chunk  # noqa: E402
from nightskynet.net.inference import VIEWS, Calibration, answer, open_engine  # noqa: E402
from nightskynet.stages.similarity import average_precision, precision_at_recall  # noqa: E402

THREE = tuple(c for c in CLASS_NAMES if c != "merger")
MERGER_VARIANTS = (("knn", 10), ("knn", 20), ("knn", 50), ("examples", 3), ("examples", 5), ("examples", 10))


def represent_all(model_path: Path, tar: str, threads: int, views: int = VIEWS) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict]:
    """(objids, representations (n, F), probabilities (n, 4), the model's saved settings) of every cutout of the tar,
    averaged over the first ``views`` D4 views."""
    engine, saved = open_engine(model_path, "cpu", threads)
    geometry, crop_size = model_geometry(saved)
    calibration = Calibration.of(saved)
    ids, crops = [], []
    for objid, jpeg in iter_chunk(tar):
        ids.append(objid)
        crops.append(crop(decode(jpeg, geometry["size"]), crop_size))
    features, probs = [], []
    for start in range(0, len(crops), 256):
        a = answer(engine, np.stack(crops[start : start + 256]), calibration, views)
        features.append(a.features)
        probs.append(a.probabilities)
    return np.array(ids, np.int64), np.concatenate(features), np.concatenate(probs), saved


def logistic_scores(train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray, l2: float) -> np.ndarray:
    """A small model on the representations: scikit-learn's L2-regularised logistic regression (classes weighted to
    balance) on the L2-normalised representations; its merger probability for ``test_x``. ``l2`` is the penalty on
    the mean loss over the training galaxies (scikit-learn's C = 1 / (l2 x galaxies))."""
    from sklearn.linear_model import LogisticRegression

    def prepared(x):
        return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)

    model = LogisticRegression(C=1.0 / (l2 * len(train_x)), class_weight="balanced", max_iter=5000)
    model.fit(prepared(train_x), train_y.astype(int))
    return model.predict_proba(prepared(test_x))[:, 1]


def fold_measures(folder: Path, k: int, tar: str, truth: pd.Series, threads: int) -> dict:
    out = folder / f"fold{k}"
    labels = pd.read_csv(out / "labels.csv", dtype={"objid": "int64"}).set_index("objid")
    ids, x, p, saved = represent_all(out / "model.pt", tar, threads)
    split = labels["split"].reindex(ids).fillna("none").to_numpy()
    true = truth.reindex(ids).to_numpy()
    held, trained = split == "test", np.isin(split, TRAINED_ON)
    result: dict = {"fold": k, "held_out": int(held.sum()), "trained": int(trained.sum())}
    q = held & np.isin(true, THREE)
    centred = x - x[trained].mean(axis=0)
    for name, vectors in (("representations", x), ("centred", centred), ("probabilities", p)):
        result[f"purity_{name}"] = neighbour_purity(vectors[q], true[q], vectors[trained], true[trained], THREE, k=10)
    confident = is_confident(labels["confidence"].reindex(ids).to_numpy(), load_config()["labels"]["threshold"])
    reference = trained & confident
    is_ref_merger = labels["label"].reindex(ids).to_numpy()[reference] == "merger"
    positive = true[held] == "merger"
    rankings = {"p_merger": p[held, CLASS_NAMES.index("merger")]}
    for method, n in MERGER_VARIANTS:
        rankings[f"{method} k={n}"] = merger_likeness(x[held], ids[held], ids[reference], x[reference], is_ref_merger, method, n)
    for l2 in (1e-3, 1e-2):
        rankings[f"logistic l2={l2:g}"] = logistic_scores(x[reference], is_ref_merger, x[held], l2)
    # the classifier and the examples together: the mean of the two ranks
    knn = rankings["knn k=50"]
    rankings["p_merger + knn k=50 (mean rank)"] = -(np.argsort(np.argsort(-rankings["p_merger"])) + np.argsort(np.argsort(-knn)))
    threshold = saved.get("merger_threshold")
    result["mergers"] = {"held_out": int(positive.sum()), "reference": int(is_ref_merger.sum())}
    for name, score in rankings.items():
        result["mergers"][name] = {
            "average_precision": average_precision(score, positive),
            "precision_at_recall_0.7": precision_at_recall(score, positive, 0.7),
        }
    if threshold is not None:
        flagged = rankings["p_merger"] >= threshold
        result["mergers"]["p_merger"]["at_threshold"] = {
            "recall": float((flagged & positive).sum() / max(1, positive.sum())),
            "precision": float((flagged & positive).sum() / max(1, flagged.sum())),
        }
    result["pooled"] = {"positive": positive.tolist(), **{name: np.asarray(s).tolist() for name, s in rankings.items()}}
    return result


def mean_sd(values: list[float]) -> str:
    v = np.array([x for x in values if x is not None], float)
    return f"{v.mean():.3f} ± {v.std(ddof=1) if len(v) > 1 else 0:.3f}"


def tables(folds: list[dict]) -> str:
    lines = ["### Neighbour purity (10 nearest training galaxies with the held-out galaxy's class)", ""]
    lines.append("| vectors | " + " | ".join(f"fold {f['fold']}" for f in folds) + " | mean ± sd | per class (mean) |")
    lines.append("|---" * (len(folds) + 3) + "|")
    for name in ("representations", "centred", "probabilities"):
        per = [f[f"purity_{name}"] for f in folds]
        classes = ", ".join(f"{c} {np.mean([x['per_class'][c] for x in per]):.3f}" for c in THREE)
        lines.append(
            f"| {name} | " + " | ".join(f"{x['balanced']:.3f}" for x in per) + f" | {mean_sd([x['balanced'] for x in per])} | {classes} |"
        )
    lines += ["", "### Mergers by example: average precision / precision at recall 0.7 (held-out galaxies, real classes)", ""]
    lines.append(
        "| ranking | " + " | ".join(f"fold {f['fold']}" for f in folds) + " | AP mean ± sd | P@R0.7 mean ± sd | pooled AP | pooled P@R0.7 |"
    )
    lines.append("|---" * (len(folds) + 5) + "|")
    positive = np.concatenate([f["pooled"]["positive"] for f in folds]).astype(bool)
    for name in folds[0]["mergers"]:
        if name in ("held_out", "reference"):
            continue
        cells = [f"{m['average_precision']:.2f} / {m['precision_at_recall_0.7']:.2f}" for m in (f["mergers"][name] for f in folds)]
        pooled = np.concatenate([f["pooled"][name] for f in folds])
        aps = [f["mergers"][name]["average_precision"] for f in folds]
        prs = [f["mergers"][name]["precision_at_recall_0.7"] for f in folds]
        lines.append(
            f"| {name} | " + " | ".join(cells) + f" | {mean_sd(aps)} | {mean_sd(prs)} | {average_precision(pooled, positive):.3f} | "
            f"{precision_at_recall(pooled, positive, 0.7):.3f} |"
        )
    at = [f["mergers"]["p_merger"].get("at_threshold") for f in folds]
    if all(at):
        lines += [
            "",
            f"The classifier's own merger threshold: recall {mean_sd([a['recall'] for a in at])}, "
            f"precision {mean_sd([a['precision'] for a in at])}.",
        ]
    counts = ", ".join(
        f"fold {f['fold']}: {f['mergers']['held_out']} held-out mergers, {f['mergers']['reference']} training" for f in folds
    )
    return "\n".join([*lines, "", counts])


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
        results.append(fold_measures(folder, k, tars[0], truth, args.threads))
        r, m = results[-1], results[-1]["mergers"]
        print(
            f"fold {k}: purity {r['purity_representations']['balanced']:.3f} "
            f"(probabilities {r['purity_probabilities']['balanced']:.3f}); merger AP knn k=20 "
            f"{m['knn k=20']['average_precision']:.2f}, p_merger {m['p_merger']['average_precision']:.2f} ({time.monotonic() - t0:.0f} s)",
            flush=True,
        )
    text = tables(results)
    print("\n" + text)
    (folder / "representations.md").write_text(text + "\n")
    (folder / "representations.json").write_text(json.dumps([{k: v for k, v in r.items() if k != "pooled"} for r in results], indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
