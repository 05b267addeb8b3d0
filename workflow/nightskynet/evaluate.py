"""Stage ``evaluate``: how well the network does on the test split, and how it compares with
the human vote fractions on the uncertain galaxies.

Predictions average the softmax over the 8 D4 views of each image (test-time augmentation,
``evaluate.tta``); the plain single-view score is reported beside it. ``metrics.json`` schema:

    {"n_test": int, "tta": bool, "classes": [4 names],
     "accuracy": float, "balanced_accuracy": float, "accuracy_single_view": float,
     "per_class": {name: {"precision", "recall", "f1", "support"}},
     "confusion_matrix": [[int]] (rows true, columns predicted),
     "balanced_accuracy_single_view": float,
     "per_class": {name: {"precision", "recall", "f1", "support", "roc_auc", "average_precision"}},
     "calibration": {"expected_calibration_error": float, "bins": [{"confidence", "accuracy", "count"}]},
     "most_confident_mistakes": [{"objid", "true_class", "predicted", "probability"}],
     "uncertain": {"n": int, "votes": "simulated"|"galaxy_zoo_1",
                   "per_class": {name: {"pearson_r", "mean_abs_diff"}},
                   "largest_disagreements": [{"objid", "class", "human", "network"}]}}
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from .classes import CLASS_LABELS, CLASS_NAMES, PROB_COLUMNS
from .figures import plt, save_figure
from .files import write_csv_atomic, write_json_atomic
from .inference import averaged_probabilities, pick_device, prediction_columns, view_logits
from .model import load_model
from .votes import votes_kind, votes_phrase

log = logging.getLogger(__name__)


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, n: int = 4) -> np.ndarray:
    cm = np.zeros((n, n), dtype=np.int64)
    np.add.at(cm, (y_true, y_pred), 1)
    return cm


def classification_metrics(y_true: np.ndarray, y_pred: np.ndarray) -> dict:
    cm = confusion_matrix(y_true, y_pred)
    per_class = {}
    recalls = []
    for i, name in enumerate(CLASS_NAMES):
        tp, support, predicted = cm[i, i], cm[i].sum(), cm[:, i].sum()
        precision = tp / predicted if predicted else 0.0
        recall = tp / support if support else float("nan")
        f1 = 2 * precision * recall / (precision + recall) if support and (precision + recall) else 0.0
        per_class[name] = {
            "precision": round(float(precision), 4),
            "recall": round(float(recall), 4) if support else None,
            "f1": round(float(f1), 4),
            "support": int(support),
        }
        if support:
            recalls.append(recall)
    return {
        "accuracy": round(float((y_true == y_pred).mean()), 4) if len(y_true) else None,
        "balanced_accuracy": round(float(np.mean(recalls)), 4) if recalls else None,
        "per_class": per_class,
        "confusion_matrix": cm.tolist(),
    }


def _counts_at_thresholds(scores: np.ndarray, positive: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """True and false positives at each distinct score threshold, highest first (ties move together)."""
    order = np.argsort(-scores, kind="stable")
    s, pos = scores[order], positive[order].astype(float)
    last_of_each = np.r_[np.flatnonzero(np.diff(s)), len(s) - 1] if len(s) else np.zeros(0, dtype=int)
    tp = np.cumsum(pos)[last_of_each]
    return tp, (last_of_each + 1) - tp


def roc_curve(scores: np.ndarray, positive: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """False/true positive rates over all thresholds and the area under the curve (one-vs-rest)."""
    tp, fp = _counts_at_thresholds(scores, positive)
    tp, fp = np.r_[0.0, tp], np.r_[0.0, fp]
    if tp[-1] == 0 or fp[-1] == 0:
        return fp, tp, float("nan")
    tpr, fpr = tp / tp[-1], fp / fp[-1]
    return fpr, tpr, float(np.trapezoid(tpr, fpr))


def precision_recall(scores: np.ndarray, positive: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """Precision and recall over all thresholds and the average precision (one-vs-rest)."""
    tp, fp = _counts_at_thresholds(scores, positive)
    if not len(tp) or tp[-1] == 0:
        return np.array([1.0]), np.array([0.0]), float("nan")
    precision, recall = tp / (tp + fp), tp / tp[-1]
    ap = float(np.sum(np.diff(np.r_[0.0, recall]) * precision))
    return precision, recall, ap


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


def plot_gallery(images: np.ndarray, titles: list[str], path: str | Path, suptitle: str, columns: int = 4) -> None:
    """A grid of galaxy crops, each with its own (multi-line) title above it, rows spaced to fit them."""
    n = max(1, len(images))
    rows = (n + columns - 1) // columns
    lines = max((t.count("\n") + 1 for t in titles), default=1)
    fig, axes = plt.subplots(rows, columns, figsize=(2.6 * columns, (2.2 + 0.17 * lines) * rows + 0.4), squeeze=False, layout="constrained")
    for k, ax in enumerate(axes.ravel()):
        ax.axis("off")
        if k < len(images):
            ax.imshow(images[k])
            ax.set_title(titles[k], fontsize=7, linespacing=1.25)
    if not len(images):
        axes[0][0].text(0.0, 0.5, "none", fontsize=10)
    fig.suptitle(suptitle, fontsize=10)
    save_figure(fig, path)


def galaxy_caption(objid: int, ra: float, dec: float) -> str:
    """objid and position of a galaxy, for a panel a person can follow up."""
    return f"{objid}\nRA {ra:.5f}  Dec {dec:+.5f}"


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


def plot_vote_comparison(probs: np.ndarray, human: np.ndarray, path: str | Path, votes_note: str) -> dict:
    """Network probability vs human vote fraction per class on the uncertain galaxies."""
    fig, axes = plt.subplots(2, 2, figsize=(11, 9.5))
    stats = {}
    for i, (ax, name) in enumerate(zip(axes.ravel(), CLASS_NAMES)):
        h, p = human[:, i], probs[:, i]
        r = float(np.corrcoef(h, p)[0, 1]) if len(h) > 2 and h.std() > 0 and p.std() > 0 else float("nan")
        mad = float(np.mean(np.abs(h - p))) if len(h) else float("nan")
        stats[name] = {"pearson_r": None if np.isnan(r) else round(r, 4), "mean_abs_diff": None if np.isnan(mad) else round(mad, 4)}
        cells = ax.hexbin(h, p, gridsize=20, extent=(0, 1, 0, 1), cmap="viridis", mincnt=1)
        ax.plot([0, 1], [0, 1], color="#d62728", lw=1.2, ls="--", label="agreement")
        fig.colorbar(cells, ax=ax, label="galaxies per cell", shrink=0.9)
        ax.legend(fontsize=8, loc="upper left")
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        ax.set_xlabel(f"human vote fraction ({votes_note})")
        ax.set_ylabel("network probability")
        ax.set_title(f"{CLASS_LABELS[name]}: r = {r:.2f}, |diff| = {mad:.2f}")
    fig.suptitle(f"Uncertain galaxies (n = {len(human)}): network vs human votes")
    fig.tight_layout()
    save_figure(fig, path)
    return stats


def prediction_table(
    objids: np.ndarray, human: np.ndarray, probs: np.ndarray, votes: str, merger_threshold: float | None, true: np.ndarray | None = None
) -> pd.DataFrame:
    """One row per galaxy: objid, true_class (where known), human_p_*, p_*, predicted, merger_candidate, votes."""
    rows = pd.DataFrame({"objid": objids})
    if true is not None:
        rows["true_class"] = [CLASS_NAMES[i] for i in true]
    for k, col in enumerate(PROB_COLUMNS):
        rows[f"human_{col}"] = human[:, k]
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


def run(
    model_path: str,
    test_path: str,
    uncertain_path: str,
    labels_csv: str,
    out: dict[str, str],
    settings: dict,
    device: str = "auto",
    batch_size: int = 256,
    threads: int = 1,
) -> dict:
    """Stage ``evaluate``. ``settings``: ``source`` and ``evaluate`` (what decides the results);
    ``device``, ``batch_size``, ``threads``: how the job runs."""
    cfg = settings["evaluate"]
    device = pick_device(device)
    torch.set_num_threads(max(1, threads))
    model, saved = load_model(model_path, device)
    bias, temperature = model.calibration.logit_bias.cpu().numpy().astype(float), float(model.calibration.temperature)
    threshold, target = saved.get("merger_threshold"), saved.get("calibration", {}).get("merger_recall_target", float("nan"))
    labels = pd.read_csv(labels_csv, dtype={"objid": "int64"}).set_index("objid")
    votes_note = votes_phrase(settings["source"])
    kind = votes_kind(settings["source"])

    with np.load(test_path) as z:
        x_test, y_test, id_test = z["images"], z["labels"].astype(np.int64), z["objids"]
    views = view_logits(model, x_test, device, batch_size)
    views_used = views if cfg["tta"] else views[:, :1]
    p_test = averaged_probabilities(views_used, bias, temperature)
    p_raw = averaged_probabilities(views_used, np.zeros(4), 1.0)
    p_single = averaged_probabilities(views[:, :1], bias, temperature)
    pred = p_test.argmax(1)
    metrics = {"n_test": int(len(y_test)), "tta": bool(cfg["tta"]), "classes": list(CLASS_NAMES), **classification_metrics(y_test, pred)}
    single = classification_metrics(y_test, p_single.argmax(1))
    metrics["accuracy_single_view"] = single["accuracy"]
    metrics["balanced_accuracy_single_view"] = single["balanced_accuracy"]
    uncalibrated = classification_metrics(y_test, p_raw.argmax(1))
    metrics["balanced_accuracy_uncalibrated"] = uncalibrated["balanced_accuracy"]
    metrics["merger"] = merger_metrics(p_test[:, 3], y_test == 3, threshold, target)
    for name, extra in plot_roc_pr(p_test, y_test, out["roc_pr"], metrics["merger"]).items():
        metrics["per_class"][name].update(extra)
    metrics["calibration"] = {
        **calibration(p_test, y_test),
        "temperature": temperature,
        "logit_bias": [round(float(b), 5) for b in bias],
        "uncalibrated": calibration(p_raw, y_test),
    }
    plot_reliability(metrics["calibration"], out["reliability"])
    wrong = np.flatnonzero(pred != y_test)
    wrong = wrong[np.argsort(-p_test[wrong].max(1), kind="stable")][:12]
    where = labels.loc[id_test, ["ra", "dec"]].to_numpy(dtype=float)
    metrics["most_confident_mistakes"] = [
        {
            "objid": int(id_test[i]),
            "ra": float(where[i, 0]),
            "dec": float(where[i, 1]),
            "true_class": CLASS_NAMES[y_test[i]],
            "predicted": CLASS_NAMES[pred[i]],
            "probability": round(float(p_test[i].max()), 4),
        }
        for i in wrong
    ]
    titles = [
        f"true {CLASS_LABELS[CLASS_NAMES[y_test[i]]]}\nnetwork {CLASS_LABELS[CLASS_NAMES[pred[i]]]} ({p_test[i].max():.2f})\n"
        + galaxy_caption(id_test[i], *where[i])
        for i in wrong
    ]
    plot_gallery(x_test[wrong], titles, out["mistakes"], f"Most confident mistakes on the test split (true class from {votes_note})")
    human_test = labels.loc[id_test, list(PROB_COLUMNS)].to_numpy(dtype=float)
    write_csv_atomic(out["predictions_test"], prediction_table(id_test, human_test, p_test, kind, threshold, true=y_test))
    plot_confusion(
        np.array(metrics["confusion_matrix"]),
        out["confusion"],
        f"Test split (n = {len(y_test)}): balanced accuracy {metrics['balanced_accuracy']}, accuracy {metrics['accuracy']}; "
        f"labels from {votes_note}",
    )

    with np.load(uncertain_path) as z:
        x_unc, id_unc = z["images"], z["objids"]
    unc_views = view_logits(model, x_unc, device, batch_size)
    p_unc = averaged_probabilities(unc_views if cfg["tta"] else unc_views[:, :1], bias, temperature)
    human = labels.loc[id_unc, list(PROB_COLUMNS)].to_numpy(dtype=float)
    write_csv_atomic(out["predictions_uncertain"], prediction_table(id_unc, human, p_unc, kind, threshold))
    stats = plot_vote_comparison(p_unc, human, out["votes"], votes_note)
    gap = np.abs(p_unc - human)
    top = np.argsort(-gap.max(1), kind="stable")[:12] if len(gap) else np.zeros(0, dtype=int)
    where_unc = labels.loc[id_unc, ["ra", "dec"]].to_numpy(dtype=float)
    disagreements = [
        {
            "objid": int(id_unc[i]),
            "ra": float(where_unc[i, 0]),
            "dec": float(where_unc[i, 1]),
            "class": CLASS_NAMES[int(gap[i].argmax())],
            "human": round(float(human[i, gap[i].argmax()]), 3),
            "network": round(float(p_unc[i, gap[i].argmax()]), 3),
        }
        for i in top
    ]
    titles = [
        f"{CLASS_LABELS[d['class']]}: votes {d['human']:.2f}, network {d['network']:.2f}\n" + galaxy_caption(d["objid"], d["ra"], d["dec"])
        for d in disagreements
    ]
    plot_gallery(x_unc[top], titles, out["disagreements"], f"Uncertain galaxies where the network and the {votes_note} disagree most")
    metrics["uncertain"] = {"n": int(len(id_unc)), "votes": kind, "per_class": stats, "largest_disagreements": disagreements}
    write_json_atomic(out["metrics"], metrics)
    log.info(
        "test balanced accuracy %s, accuracy %s (single view %s); recall %s; ECE %s (uncalibrated %s); mergers at threshold "
        "%s: recall %s precision %s",
        metrics["balanced_accuracy"],
        metrics["accuracy"],
        metrics["accuracy_single_view"],
        ", ".join(f"{c}={v['recall']}" for c, v in metrics["per_class"].items()),
        metrics["calibration"]["expected_calibration_error"],
        metrics["calibration"]["uncalibrated"]["expected_calibration_error"],
        metrics["merger"]["threshold"],
        metrics["merger"].get("recall"),
        metrics["merger"].get("precision"),
    )
    return metrics
