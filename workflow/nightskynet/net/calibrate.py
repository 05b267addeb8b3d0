"""Calibration of a trained network on the validation galaxies: prior correction, temperature, merger threshold.

* Prior correction (logit adjustment): a network trained on a resampled class mixture (mergers
  at ``merger_share`` of each batch, the other classes equal) learns that mixture as its prior.
  Adding log(real prior) - log(trained prior) to its logits moves it back to the class frequencies
  of the training galaxies (with ``train.targets: votes``, their mean vote fractions).
* Temperature: one number T dividing the corrected logits, fitted by minimising the negative log
  likelihood of the validation galaxies' classes under the test-time-averaged probabilities (the
  mean of the softmax over the 8 D4 views, as every consumer predicts).
* Merger threshold: the largest p_merger whose recall on the validation mergers reaches
  ``train.merger_recall``; a galaxy at or above it is a merger candidate (``merger_candidate`` in
  the predictions), whatever its top class.

All three are fitted on at most ``MAX_GALAXIES`` validation galaxies (a seeded sample stratified by
class when the split is larger): five numbers need no more, and the 8 views of every galaxy of a
53,000-galaxy val split took 10 minutes on 2 cores (docs/benchmarks.md, "The study's scale").
"""

from __future__ import annotations

import logging
import math

import numpy as np
import torch

from ..core.vocabulary import MERGER
from .inference import VIEWS, averaged_probabilities, outputs_in_batches
from .model import GalaxyClassifier
from .torch_inference import TorchEngine

log = logging.getLogger(__name__)

PRIOR_FLOOR = 1e-4  # a class absent from training keeps a finite (very low) prior
MAX_GALAXIES = 20_000  # validation galaxies calibration looks at (the study's whole val split: ~1,100)


def calibration_sample(labels: np.ndarray, limit: int = MAX_GALAXIES, seed: int = 0) -> np.ndarray:
    """Indices of the validation galaxies to fit on: all of them up to ``limit``, else a seeded sample of
    ``limit`` with every class in proportion (each class keeps at least one galaxy), in their order."""
    if len(labels) <= limit:
        return np.arange(len(labels))
    rng = np.random.default_rng(seed)
    keep = []
    for c in np.unique(labels):
        members = np.flatnonzero(labels == c)
        keep.append(rng.choice(members, size=max(1, round(limit * len(members) / len(labels))), replace=False))
    return np.sort(np.concatenate(keep))


def prior_correction(trained_prior: np.ndarray, real_prior: np.ndarray) -> np.ndarray:
    """Per-class logit offsets log(real) - log(trained)."""
    trained = np.maximum(np.asarray(trained_prior, float), PRIOR_FLOOR)
    real = np.maximum(np.asarray(real_prior, float), PRIOR_FLOOR)
    return np.log(real / real.sum()) - np.log(trained / trained.sum())


def negative_log_likelihood(probs: np.ndarray, labels: np.ndarray) -> float:
    return float(-np.mean(np.log(np.clip(probs[np.arange(len(labels)), labels], 1e-12, None))))


def fit_temperature(logits: np.ndarray, labels: np.ndarray, bias: np.ndarray, lo: float = 0.1, hi: float = 10.0) -> float:
    """The temperature in [lo, hi] minimising the validation NLL (golden-section search on log T)."""
    if not len(labels):
        return 1.0
    a, b = math.log(lo), math.log(hi)
    ratio = (math.sqrt(5) - 1) / 2

    def loss(log_t: float) -> float:
        return negative_log_likelihood(averaged_probabilities(logits, bias, math.exp(log_t)), labels)

    c, d = b - ratio * (b - a), a + ratio * (b - a)
    fc, fd = loss(c), loss(d)
    for _ in range(60):
        if fc < fd:
            b, d, fd = d, c, fc
            c = b - ratio * (b - a)
            fc = loss(c)
        else:
            a, c, fc = c, d, fd
            d = a + ratio * (b - a)
            fd = loss(d)
    return round(math.exp((a + b) / 2), 6)


def merger_threshold(p_merger: np.ndarray, is_merger: np.ndarray, target_recall: float) -> float | None:
    """The largest threshold t with recall(p_merger >= t) >= target_recall; None without mergers."""
    scores = np.sort(p_merger[is_merger])[::-1]
    if not len(scores):
        return None
    k = max(1, math.ceil(target_recall * len(scores)))  # the k highest-scoring mergers must be in
    return float(scores[k - 1])


def calibrate(
    model: GalaxyClassifier,
    images: np.ndarray,
    labels: np.ndarray,
    trained_prior: np.ndarray,
    real_prior: np.ndarray,
    merger_recall: float,
    device: torch.device,
    fit: bool = True,
) -> dict:
    """Fit the calibration on the validation set, set it in ``model``; return what was fitted and how it did."""
    used = calibration_sample(labels)
    if len(used) < len(labels):
        log.info("calibrating on a stratified sample of %d of the %d val galaxies", len(used), len(labels))
    images, labels = images[used], labels[used]
    logits, _ = outputs_in_batches(TorchEngine(model, device), images, VIEWS, 256)
    bias = prior_correction(trained_prior, real_prior) if fit else np.zeros(4)
    temperature = fit_temperature(logits, labels, bias) if fit else 1.0
    before = averaged_probabilities(logits, np.zeros(4), 1.0)
    after = averaged_probabilities(logits, bias, temperature)
    threshold = merger_threshold(after[:, MERGER], labels == MERGER, merger_recall)
    model.calibration.logit_bias.copy_(torch.as_tensor(bias, dtype=torch.float32))
    model.calibration.temperature.fill_(temperature)
    result = {
        "fitted": fit,
        "trained_prior": [round(float(v), 5) for v in trained_prior],
        "real_prior": [round(float(v), 5) for v in real_prior],
        "logit_bias": [round(float(v), 5) for v in bias],
        "temperature": temperature,
        "val_galaxies": int(len(labels)),
        "val_nll_before": round(negative_log_likelihood(before, labels), 5) if len(labels) else None,
        "val_nll_after": round(negative_log_likelihood(after, labels), 5) if len(labels) else None,
        "merger_recall_target": merger_recall,
        "merger_threshold": threshold,
        "val_mergers": int((labels == MERGER).sum()),
    }
    log.info(
        "calibration on %d val galaxies: logit bias %s, temperature %.3f, val NLL %.4f -> %.4f; merger threshold %s (%d val "
        "mergers, recall target %.2f)",
        len(labels),
        result["logit_bias"],
        temperature,
        result["val_nll_before"] or float("nan"),
        result["val_nll_after"] or float("nan"),
        "none" if threshold is None else f"{threshold:.4f}",
        result["val_mergers"],
        merger_recall,
    )
    return result
