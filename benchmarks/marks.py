"""How many marks "more like these" takes, on the yardstick folds, as a person would work in ``nightskynet explore``.

For each fold of benchmarks/accuracy.py (the default recipe, or ``--recipe``; its models trained, or read from its
cache, as that script does), every demo galaxy is represented by the fold's model (8 D4 views, as the morphology
stage does). For each kind (merger, elliptical, face-on, edge-on) and each start (5, 10, 20 examples):

* the person starts from that many galaxies of the kind marked yes: the fold's training galaxies of that real
  Galaxy Zoo 1 class, drawn at random (seeded);
* then works in rounds on one half of the fold's held-out galaxies (never trained on; the halves drawn per class,
  seeded): the explorer ranks them by a model of the marks (``explore.ranking.rank``, as the app does), shows the 12
  best-ranked not marked yet and the 4 it is least sure of, and the person marks each yes or no by its real class;
* after 0, 1, 3 and 5 rounds: the precision at recall 0.7 and the precision of the 50 best-ranked, on the other
  half, which is never shown nor marked, against the real classes (judged on the half the person works in, the
  rounds would use up its galaxies of the kind and the figures would fall for that reason alone).

Beside them, the rankings that need no marks: the classifier's probability of the kind (p_merger, p_elliptical...)
and, for mergers, ``merger_likeness`` (the similarity stage's knn vote of the 50 nearest confident training
galaxies). Mean over the folds; ``--methods`` also measures a simpler model of the marks (``similarity``: the
largest cosine similarity to a yes mark less that to a no mark).

    .venv/bin/python benchmarks/marks.py                 # 5 folds (trains what the accuracy cache lacks)
    .venv/bin/python benchmarks/marks.py --only-folds 0

Prints a markdown table and writes it with the JSON to marks.{md,json} in the recipe's folder of --work.
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

from nightskynet.analysis.neighbours import merger_likeness  # noqa: E402
from nightskynet.core.config import load_config  # noqa: E402
from nightskynet.core.vocabulary import CLASS_NAMES, TRAINED_ON, is_confident  # noqa: E402
from nightskynet.explore.ranking import rank  # noqa: E402
from nightskynet.explore.run_data import unit_rows  # noqa: E402
from nightskynet.stages.similarity import precision_at_recall  # noqa: E402

STARTS = (5, 10, 20)
ROUNDS = (0, 1, 3, 5)
SHOWN, INFORMATIVE = 12, 4  # what the explorer's ranking page shows a round
TOP = 50


def similarity_scores(unit: np.ndarray, yes: np.ndarray, no: np.ndarray) -> np.ndarray:
    """The simpler model: each galaxy's largest cosine similarity to a yes mark, less its largest to a no mark."""
    score = (unit @ unit[yes].T).max(axis=1)
    if len(no):
        score = score - (unit @ unit[no].T).max(axis=1)
    return score


def scores_of(method: str, unit: np.ndarray, pool: np.ndarray, yes: np.ndarray, no: np.ndarray, seed: int) -> np.ndarray:
    """The score of every row of ``unit`` (only ``pool`` rows counted as the catalog the person works in)."""
    if method == "logistic":
        classified = np.zeros(len(unit), bool)
        classified[pool] = True
        classified[yes] = True
        classified[no] = True
        return rank(unit, classified, yes, no, seed=seed).scores.astype(float)
    return similarity_scores(unit, yes, no)


def measure(scores: np.ndarray, positive: np.ndarray, rows: np.ndarray) -> dict:
    s, p = scores[rows], positive[rows]
    top = rows[np.argsort(-s, kind="stable")[:TOP]]
    return {"p_at_r07": precision_at_recall(s, p, 0.7), f"p_top{TOP}": float(positive[top].mean()) if len(top) else None}


def work_one(unit, true, pool, judged, trained, kind, start, method, rng) -> dict[int, dict]:
    """A person looking for ``kind``, working in ``pool``: the scores on ``judged`` after each number of rounds in ROUNDS."""
    positive = true == kind
    examples = np.flatnonzero(trained & positive)
    yes = rng.choice(examples, size=min(start, len(examples)), replace=False)
    no = np.zeros(0, dtype=np.int64)
    out = {}
    for r in range(max(ROUNDS) + 1):
        marked = np.concatenate([yes, no])
        scores = scores_of(method, unit, np.concatenate([pool, judged]), yes, no, seed=r)
        never = np.setdiff1d(pool, marked)
        if r in ROUNDS:
            out[r] = measure(scores, positive, judged)
        # the round: the best-ranked not marked, and those nearest the model's doubt, marked by their real class
        candidates = never[np.argsort(-scores[never], kind="stable")]
        shown = list(candidates[:SHOWN])
        if method == "logistic":
            rest = candidates[SHOWN:]
            shown += list(rest[np.argsort(np.abs(scores[rest] - 0.5), kind="stable")[:INFORMATIVE]])
        shown = np.array(shown, dtype=np.int64)
        yes = np.concatenate([yes, shown[positive[shown]]])
        no = np.concatenate([no, shown[~positive[shown]]])
    return out


def fold_marks(folder: Path, k: int, tar: str, truth: pd.Series, threads: int, methods: list[str]) -> dict:
    out = folder / f"fold{k}"
    labels = pd.read_csv(out / "labels.csv", dtype={"objid": "int64"}).set_index("objid")
    ids, x, p, _ = representations.represent_all(out / "model.pt", tar, threads)
    unit = unit_rows(x)
    split = labels["split"].reindex(ids).fillna("none").to_numpy()
    held = np.flatnonzero(split == "test")
    trained = np.isin(split, TRAINED_ON)
    true = truth.reindex(ids).to_numpy()
    halves = np.random.default_rng([k, 2])
    judged = np.sort(np.concatenate([halves.permutation(held[true[held] == c])[::2] for c in CLASS_NAMES]))
    pool = np.setdiff1d(held, judged)
    result: dict = {"fold": k, "pool": len(pool), "judged": len(judged), "kinds": {}}
    confident = is_confident(labels["confidence"].reindex(ids).to_numpy(), load_config()["labels"]["threshold"])
    reference = trained & confident
    is_ref_merger = labels["label"].reindex(ids).to_numpy()[reference] == "merger"
    likeness = np.full(len(ids), np.nan)
    likeness[held] = merger_likeness(x[held], ids[held], ids[reference], x[reference], is_ref_merger, "knn", 50)
    rng = np.random.default_rng([k, 1])
    for kind in CLASS_NAMES:
        positive = true == kind
        baselines = {f"p_{kind}": measure(p[:, CLASS_NAMES.index(kind)], positive, judged)}
        if kind == "merger":
            baselines["merger_likeness"] = measure(likeness, positive, judged)
        runs = {
            method: {start: work_one(unit, true, pool, judged, trained, kind, start, method, rng) for start in STARTS} for method in methods
        }
        counts = {"in_pool": int(positive[pool].sum()), "judged": int(positive[judged].sum())}
        result["kinds"][kind] = {**counts, "baselines": baselines, "runs": runs}
    return result


def mean(values) -> float | None:
    v = [x for x in values if x is not None and np.isfinite(x)]
    return float(np.mean(v)) if v else None


def table(folds: list[dict], methods: list[str]) -> str:
    lines = []
    for kind in CLASS_NAMES:
        worked = sum(f["kinds"][kind]["in_pool"] for f in folds)
        judged = sum(f["kinds"][kind]["judged"] for f in folds)
        lines += [
            f"#### {kind.replace('_', ' ')} ({worked} in the halves worked in, {judged} in the halves judged, {len(folds)} folds; "
            "mean over the folds)",
            "",
            "| ranking | start | " + " | ".join(f"after {r} rounds: P@R0.7 / P@top{TOP}" for r in ROUNDS) + " |",
            "|" + "---|" * (2 + len(ROUNDS)),
        ]
        for name in folds[0]["kinds"][kind]["baselines"]:
            cells = f"{mean(f['kinds'][kind]['baselines'][name]['p_at_r07'] for f in folds):.3f} / "
            cells += f"{mean(f['kinds'][kind]['baselines'][name][f'p_top{TOP}'] for f in folds):.3f}"
            lines.append(f"| {name} (no marks) | | {cells} | | | |")
        for method in methods:
            for start in STARTS:
                row = []
                for r in ROUNDS:
                    a = mean(f["kinds"][kind]["runs"][method][start][r]["p_at_r07"] for f in folds)
                    b = mean(f["kinds"][kind]["runs"][method][start][r][f"p_top{TOP}"] for f in folds)
                    row.append(f"{'n/a' if a is None else f'{a:.3f}'} / {'n/a' if b is None else f'{b:.3f}'}")
                lines.append(f"| marks, {method} | {start} | " + " | ".join(row) + " |")
        lines.append("")
    return "\n".join(lines)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--folds", type=int, default=5)
    p.add_argument("--only-folds", type=int, nargs="+", default=None)
    p.add_argument("--seed", type=int, default=1, help="seed of the fold assignment (as benchmarks/accuracy.py)")
    p.add_argument("--work", default=str(accuracy.REPO / "results" / "benchmarks" / "accuracy"))
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--recipe", default="default", help="a recipe of benchmarks/accuracy.py --list")
    p.add_argument("--methods", nargs="+", choices=["logistic", "similarity"], default=["logistic", "similarity"])
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
        results.append(fold_marks(folder, k, tars[0], truth, args.threads, args.methods))
        m = results[-1]["kinds"]["merger"]["runs"][args.methods[0]][20]
        seconds = time.monotonic() - t0
        print(f"fold {k}: mergers from 20 examples, P@R0.7 after 0/3 rounds {m[0]['p_at_r07']}/{m[3]['p_at_r07']} ({seconds:.0f} s)")
    text = table(results, args.methods)
    print("\n" + text)
    (folder / "marks.md").write_text(text + "\n")
    (folder / "marks.json").write_text(json.dumps(results, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
