"""Stage ``evaluate``: how well the network does on the test split, and how it compares with
the human vote fractions on the uncertain galaxies.

Predictions are the calibrated probabilities averaged over the first ``evaluate.views`` D4 views
of each image (1, 2, 4: its rotations by 90 degrees, 8: and their flips); the single-view and the uncalibrated scores are
reported beside them. The schema of ``metrics.json`` is in docs/design.md.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ..analysis.classification import classification_metrics
from ..analysis.figures import galaxy_caption, plot_gallery, plt, save_figure
from ..analysis.rankings import precision_recall, roc_curve
from ..core.commands import File, Run, Settings
from ..core.files import write_json_atomic
from ..core.prediction_columns import prediction_columns
from ..core.tables import write_csv_and_fits
from ..core.vocabulary import CLASS_LABELS, CLASS_NAMES, HUMAN_COLUMNS, MERGER, PROB_COLUMNS
from ..net.inference import Calibration, Engine, averaged_probabilities, open_engine, outputs_in_batches
from ..sky.votes import votes_kind, votes_phrase

log = logging.getLogger(__name__)

EVALUATE_FIGURES = ("confusion", "roc_pr", "reliability", "mistakes")  # what the report shows of this stage


def calibration(probs: np.ndarray, y_true: np.ndarray, bins: int = 10) -> dict:
    """Reliability of the top-class probability: accuracy per confidence bin and the ECE."""
    conf, correct = probs.max(1), probs.argmax(1) == y_true
    edges = np.linspace(0.25, 1.0, bins + 1)
    which = np.clip(np.digitize(conf, edges) - 1, 0, bins - 1)
    out, ece = [], 0.0
    for b in range(bins):
        sel = which == b
        if sel.any():
            out.append(
                {"confidence": round(float(conf[sel].mean()), 4), "accuracy": round(float(correct[sel].mean()), 4), "count": int(sel.sum())}
            )
            ece += sel.mean() * abs(conf[sel].mean() - correct[sel].mean())
    return {"expected_calibration_error": round(float(ece), 4), "bins": out}


def plot_roc_pr(probs: np.ndarray, y_true: np.ndarray, path: str | Path, merger: dict | None = None) -> dict:
    """ROC and precision-recall, one class against the rest, with the merger decision marked on its curve."""
    fig, (ax_roc, ax_pr) = plt.subplots(1, 2, figsize=(11.5, 4.6))
    aucs = {}
    for i, name in enumerate(CLASS_NAMES):
        positive = y_true == i
        fpr, tpr, auc = roc_curve(probs[:, i], positive)
        precision, recall, ap = precision_recall(probs[:, i], positive)
        aucs[name] = {"roc_auc": None if np.isnan(auc) else round(auc, 4), "average_precision": None if np.isnan(ap) else round(ap, 4)}
        ax_roc.plot(fpr, tpr, label=f"{CLASS_LABELS[name]} (AUC {auc:.2f})")
        ax_pr.plot(recall, precision, label=f"{CLASS_LABELS[name]} (AP {ap:.2f})")
    if merger and merger.get("recall") is not None and merger.get("precision") is not None:
        ax_pr.plot(
            [merger["recall"]],
            [merger["precision"]],
            marker="*",
            ms=14,
            color="#d62728",
            ls="none",
            label=f"merger threshold {merger['threshold']:.3f}: recall {merger['recall']:.2f}, precision {merger['precision']:.2f}",
        )
    ax_roc.plot([0, 1], [0, 1], color="grey", ls="--", lw=1)
    ax_roc.set(xlabel="false positive rate", ylabel="true positive rate", title="ROC, one class vs the rest")
    ax_pr.set(xlabel="recall", ylabel="precision", title="precision-recall, one class vs the rest", ylim=(0, 1.02))
    ax_roc.legend(fontsize=8, loc="lower right")
    ax_pr.legend(fontsize=7.5, loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=2, frameon=False)
    for ax in (ax_roc, ax_pr):
        ax.grid(alpha=0.3)
    fig.tight_layout()
    save_figure(fig, path)
    return aucs


def plot_reliability(cal: dict, path: str | Path) -> None:
    """Fraction right against the top-class probability, before and after calibration; galaxies per bin beside each point."""
    fig, ax = plt.subplots(figsize=(5.6, 5.0))
    ax.plot([0.25, 1], [0.25, 1], color="grey", ls="--", lw=1, label="perfectly calibrated")
    before = cal.get("uncalibrated")
    if before:
        ax.plot(
            [b["confidence"] for b in before["bins"]],
            [b["accuracy"] for b in before["bins"]],
            "s:",
            color="#999",
            ms=4,
            label=f"before calibration (ECE {before['expected_calibration_error']:.3f})",
        )
    ax.plot(
        [b["confidence"] for b in cal["bins"]],
        [b["accuracy"] for b in cal["bins"]],
        "o-",
        color="#1f77b4",
        label=f"calibrated (ECE {cal['expected_calibration_error']:.3f})",
    )
    for b in cal["bins"]:
        ax.annotate(
            str(b["count"]), (b["confidence"], b["accuracy"]), textcoords="offset points", xytext=(5, -11), fontsize=7, color="#1f77b4"
        )
    ax.set(
        xlabel="predicted probability of the top class",
        ylabel="fraction correct",
        xlim=(0.25, 1.0),
        ylim=(0, 1.02),
        title="Reliability on the test split",
    )
    # below the axes, where it can hide no bin
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=1, frameon=False)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    save_figure(fig, path)


def plot_confusion(cm: np.ndarray, path: str | Path, title: str) -> None:
    names = [CLASS_LABELS[c] for c in CLASS_NAMES]
    row_sums = cm.sum(axis=1, keepdims=True)
    norm = np.divide(cm, row_sums, out=np.zeros_like(cm, dtype=float), where=row_sums > 0)
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.6))
    for ax, data, fmt, sub in ((axes[0], cm, "{:d}", "counts"), (axes[1], norm, "{:.2f}", "row-normalised (recall on the diagonal)")):
        ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
        for i in range(4):
            for j in range(4):
                ax.text(j, i, fmt.format(data[i, j]), ha="center", va="center", color="white" if norm[i, j] > 0.6 else "black")
        ax.set_xticks(range(4), names, rotation=30, ha="right")
        ax.set_yticks(range(4), names)
        ax.set_xlabel("predicted")
        ax.set_ylabel("true (Galaxy Zoo)")
        ax.set_title(sub)
    fig.suptitle(title)
    fig.tight_layout()
    save_figure(fig, path)


def vote_statistics(probs: np.ndarray, human: np.ndarray) -> dict:
    """Per class, Pearson's r and the mean absolute difference between network probability and vote fraction
    (the figures of the comparison are the morphology stage's, on every galaxy never trained on)."""
    stats = {}
    for i, name in enumerate(CLASS_NAMES):
        h, p = human[:, i], probs[:, i]
        r = float(np.corrcoef(h, p)[0, 1]) if len(h) > 2 and h.std() > 0 and p.std() > 0 else float("nan")
        mad = float(np.mean(np.abs(h - p))) if len(h) else float("nan")
        stats[name] = {"pearson_r": None if np.isnan(r) else round(r, 4), "mean_abs_diff": None if np.isnan(mad) else round(mad, 4)}
    return stats


def prediction_table(
    objids: np.ndarray, human: np.ndarray, probs: np.ndarray, votes: str, merger_threshold: float | None, true: np.ndarray | None = None
) -> pd.DataFrame:
    """One row per galaxy: objid, true_class (where known), human_p_*, p_*, predicted, merger_candidate, votes."""
    rows = pd.DataFrame({"objid": objids})
    if true is not None:
        rows["true_class"] = [CLASS_NAMES[i] for i in true]
    for k, col in enumerate(HUMAN_COLUMNS):
        rows[col] = human[:, k]
    rows = pd.concat([rows, prediction_columns(probs, merger_threshold)], axis=1)
    rows["votes"] = votes
    return rows


def merger_metrics(p_merger: np.ndarray, is_merger: np.ndarray, threshold: float | None, target: float) -> dict:
    """The merger decision at the model's threshold on the test split, and the whole curve's area."""
    _, _, ap = precision_recall(p_merger, is_merger)
    out = {
        "threshold": None if threshold is None else round(threshold, 5),
        "recall_target": target,
        "test_mergers": int(is_merger.sum()),
        "average_precision": None if np.isnan(ap) else round(ap, 4),
    }
    if threshold is not None:
        flagged = p_merger >= threshold
        out.update(
            candidates=int(flagged.sum()),
            recall=round(float(flagged[is_merger].mean()), 4) if is_merger.any() else None,
            precision=round(float(is_merger[flagged].mean()), 4) if flagged.any() else None,
        )
    return out


@dataclass
class Predictor:
    """A model's engine and how its probabilities are formed: calibration, the D4 views averaged, batch size."""

    engine: Engine
    saved: dict
    views_averaged: int
    batch_size: int

    @property
    def calibration(self) -> Calibration:
        return Calibration.of(self.saved)

    def views(self, images: np.ndarray) -> np.ndarray:
        """Raw logits of the first ``views_averaged`` D4 views of each image (the first: the image itself)."""
        return outputs_in_batches(self.engine, images, self.views_averaged, self.batch_size)[0]

    def probabilities(self, views: np.ndarray, calibrated: bool = True, single_view: bool = False) -> np.ndarray:
        used = views[:, :1] if single_view else views
        cal = self.calibration if calibrated else Calibration(np.zeros(len(CLASS_NAMES)), 1.0)
        return averaged_probabilities(used, cal.bias, cal.temperature)


def score_test_split(predictor: Predictor, y: np.ndarray, views: np.ndarray) -> tuple[dict, np.ndarray]:
    """Scores on the test split (calibrated, uncalibrated, single view) and the probabilities behind them."""
    probs, raw, single = (
        predictor.probabilities(views),
        predictor.probabilities(views, calibrated=False),
        predictor.probabilities(views, single_view=True),
    )
    metrics = {
        "n_test": int(len(y)),
        "views": predictor.views_averaged,
        "classes": list(CLASS_NAMES),
        **classification_metrics(y, probs.argmax(1)),
    }
    single_scores = classification_metrics(y, single.argmax(1))
    metrics["accuracy_single_view"] = single_scores["accuracy"]
    metrics["balanced_accuracy_single_view"] = single_scores["balanced_accuracy"]
    metrics["balanced_accuracy_uncalibrated"] = classification_metrics(y, raw.argmax(1))["balanced_accuracy"]
    target = predictor.saved.get("calibration", {}).get("merger_recall_target", float("nan"))
    metrics["merger"] = merger_metrics(probs[:, MERGER], y == MERGER, predictor.saved.get("merger_threshold"), target)
    metrics["calibration"] = {
        **calibration(probs, y),
        "temperature": predictor.calibration.temperature,
        "logit_bias": [round(float(b), 5) for b in predictor.calibration.bias],
        "uncalibrated": calibration(raw, y),
    }
    return metrics, probs


def most_confident_mistakes(images, y, probs, objids, where, path, votes_note) -> list[dict]:
    """The 12 test galaxies the network got wrong with the highest probability: listed and drawn."""
    pred = probs.argmax(1)
    wrong = np.flatnonzero(pred != y)
    wrong = wrong[np.argsort(-probs[wrong].max(1), kind="stable")][:12]
    rows = [
        {"objid": int(objids[i]), "ra": float(where[i, 0]), "dec": float(where[i, 1]), "true_class": CLASS_NAMES[y[i]],
         "predicted": CLASS_NAMES[pred[i]], "probability": round(float(probs[i].max()), 4)}
        for i in wrong
    ]  # fmt: skip
    titles = [
        f"true {CLASS_LABELS[r['true_class']]}\nnetwork {CLASS_LABELS[r['predicted']]} ({r['probability']:.2f})\n"
        + galaxy_caption(r["objid"], r["ra"], r["dec"])
        for r in rows
    ]
    plot_gallery(images[wrong], titles, path, f"Most confident mistakes on the test split (true class from {votes_note})")
    return rows


def largest_disagreements(human: np.ndarray, probs: np.ndarray, objids: np.ndarray, where: np.ndarray) -> list[dict]:
    """The 12 uncertain galaxies where network and votes differ most, in any class."""
    gap = np.abs(probs - human)
    top = np.argsort(-gap.max(1), kind="stable")[:12] if len(gap) else np.zeros(0, dtype=int)
    rows = []
    for i in top:
        c = int(gap[i].argmax())
        rows.append({"objid": int(objids[i]), "ra": float(where[i, 0]), "dec": float(where[i, 1]), "class": CLASS_NAMES[c],
                     "human": round(float(human[i, c]), 3), "network": round(float(probs[i, c]), 3)})  # fmt: skip
    return rows


def evaluate_test(predictor: Predictor, test_path: str, labels: pd.DataFrame, out: dict, votes: tuple[str, str]) -> dict:
    """The test split: metrics, ROC/PR, reliability, confusion matrix, mistakes, predictions table."""
    kind, note = votes
    with np.load(test_path) as z:
        images, y, objids = z["images"], z["labels"].astype(np.int64), z["objids"]
    metrics, probs = score_test_split(predictor, y, predictor.views(images))
    for name, extra in plot_roc_pr(probs, y, out["roc_pr"], metrics["merger"]).items():
        metrics["per_class"][name].update(extra)
    plot_reliability(metrics["calibration"], out["reliability"])
    title = (
        f"Test split (n = {len(y)}): balanced accuracy {metrics['balanced_accuracy']}, accuracy {metrics['accuracy']}; labels from {note}"
    )
    plot_confusion(np.array(metrics["confusion_matrix"]), out["confusion"], title)
    where = labels.loc[objids, ["ra", "dec"]].to_numpy(dtype=float)
    metrics["most_confident_mistakes"] = most_confident_mistakes(images, y, probs, objids, where, out["mistakes"], note)
    human = labels.loc[objids, list(PROB_COLUMNS)].to_numpy(dtype=float)
    table = prediction_table(objids, human, probs, kind, predictor.saved.get("merger_threshold"), true=y)
    write_csv_and_fits(out["predictions_test"], out["predictions_test_fits"], table)
    return metrics


def compare_with_votes(predictor: Predictor, uncertain_path: str, labels: pd.DataFrame, out: dict, votes: tuple[str, str]) -> dict:
    """The uncertain galaxies: network probability against the vote fractions, and the largest disagreements."""
    kind, note = votes
    with np.load(uncertain_path) as z:
        images, objids = z["images"], z["objids"]
    probs = predictor.probabilities(predictor.views(images))
    human = labels.loc[objids, list(PROB_COLUMNS)].to_numpy(dtype=float)
    table = prediction_table(objids, human, probs, kind, predictor.saved.get("merger_threshold"))
    write_csv_and_fits(out["predictions_uncertain"], out["predictions_uncertain_fits"], table)
    stats = vote_statistics(probs, human)
    where = labels.loc[objids, ["ra", "dec"]].to_numpy(dtype=float)
    disagreements = largest_disagreements(human, probs, objids, where)
    return {"n": int(len(objids)), "votes": kind, "per_class": stats, "largest_disagreements": disagreements}


def run(
    *,
    model: File,
    test: File,
    uncertain: File,
    labels: File,
    metrics: File,
    predictions_test: File,
    predictions_uncertain: File,
    predictions_test_fits: File,
    predictions_uncertain_fits: File,
    confusion: File,
    roc_pr: File,
    reliability: File,
    mistakes: File,
    settings: Settings,
    device: Run[str],
    batch_size: Run[int],
    threads: Run[int],
) -> dict:
    """Stage ``evaluate``: the ``metrics``, the predictions of the test and uncertain galaxies (CSV and FITS) and the
    figures (``EVALUATE_FIGURES``). ``settings``: ``source`` and ``evaluate`` (what decides the results); ``device``,
    ``batch_size``, ``threads``: how the job runs."""
    out = {
        "predictions_test": predictions_test,
        "predictions_uncertain": predictions_uncertain,
        "predictions_test_fits": predictions_test_fits,
        "predictions_uncertain_fits": predictions_uncertain_fits,
        **dict(zip(EVALUATE_FIGURES, (confusion, roc_pr, reliability, mistakes), strict=True)),
    }
    engine, saved = open_engine(model, device, threads)
    predictor = Predictor(engine, saved, int(settings["evaluate"]["views"]), batch_size)
    known = pd.read_csv(labels, dtype={"objid": "int64"}).set_index("objid")
    votes = (votes_kind(settings["source"]), votes_phrase(settings["source"]))
    scores = evaluate_test(predictor, test, known, out, votes)
    scores["uncertain"] = compare_with_votes(predictor, uncertain, known, out, votes)
    write_json_atomic(metrics, scores)
    log.info(
        "test balanced accuracy %s, accuracy %s (single view %s); recall %s; ECE %s (uncalibrated %s); merger threshold %s: "
        "recall %s, precision %s",
        scores["balanced_accuracy"],
        scores["accuracy"],
        scores["accuracy_single_view"],
        ", ".join(f"{c}={v['recall']}" for c, v in scores["per_class"].items()),
        scores["calibration"]["expected_calibration_error"],
        scores["calibration"]["uncalibrated"]["expected_calibration_error"],
        scores["merger"]["threshold"],
        scores["merger"].get("recall"),
        scores["merger"].get("precision"),
    )
    return scores
