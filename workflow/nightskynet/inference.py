"""The trained network on images: device choice, test-time averaged probabilities, the prediction columns.

Every consumer of a model (evaluate, predict, calibrate) predicts through these functions, so a
galaxy gets the same probabilities wherever it is classified: the softmax of the calibrated
logits averaged over the 8 D4 views (rotations by 90 degrees and flips) of its crop.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch
from tqdm import tqdm

from .augment import d4_torch
from .classes import CLASS_NAMES, PROB_COLUMNS
from .errors import SettingsError
from .model import GalaxyClassifier, to_input


def pick_device(requested: str = "auto") -> torch.device:
    """``auto`` (CUDA when PyTorch sees a GPU), ``cuda`` or ``cpu``."""
    if requested == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if requested == "cuda" and not torch.cuda.is_available():
        raise SettingsError("the device is 'cuda' but PyTorch sees no CUDA device; use 'auto' or 'cpu'")
    return torch.device(requested)


@torch.no_grad()
def predict_proba(model: torch.nn.Module, images: np.ndarray, device: torch.device, tta: bool = True, batch_size: int = 256) -> np.ndarray:
    """(N, 4) class probabilities for (N, H, W, 3) uint8 images; averaged over D4 views if ``tta``."""
    model.eval()
    out = np.zeros((len(images), len(CLASS_NAMES)), dtype=np.float64)
    views = range(8) if tta else (0,)
    for start in batches(len(images), batch_size):
        x = to_input(torch.from_numpy(np.ascontiguousarray(images[start : start + batch_size])).to(device))
        p = sum(torch.softmax(model(d4_torch(x, g)).float(), dim=1) for g in views) / len(views)
        out[start : start + len(x)] = p.cpu().numpy()
    return out


def batches(n: int, batch_size: int):
    """Start of each batch, with a progress bar (on stderr, every 5 s) when there are many images."""
    with tqdm(total=n, desc="classifying", unit="img", mininterval=5.0, disable=n < 5000) as bar:
        for start in range(0, n, batch_size):
            yield start
            bar.update(min(batch_size, n - start))


@torch.no_grad()
def view_logits(model: GalaxyClassifier, images: np.ndarray, device: torch.device, batch_size: int = 256, views: int = 8) -> np.ndarray:
    """(N, views, 4) raw (uncalibrated) logits of each image's first ``views`` D4 views (8: all; 1: the image as it is)."""
    model.eval()
    out = np.zeros((len(images), views, 4), dtype=np.float64)
    for start in batches(len(images), batch_size):
        x = to_input(torch.from_numpy(np.ascontiguousarray(images[start : start + batch_size])).to(device))
        for g in range(views):
            out[start : start + len(x), g] = model.raw_logits(d4_torch(x, g)).float().cpu().numpy()
    return out


def averaged_probabilities(logits: np.ndarray, bias: np.ndarray, temperature: float) -> np.ndarray:
    """(N, 4): the mean over views of softmax((logits + bias) / temperature)."""
    z = (logits + bias) / temperature
    z = z - z.max(axis=-1, keepdims=True)
    p = np.exp(z)
    p /= p.sum(axis=-1, keepdims=True)
    return p.mean(axis=1)


def merger_candidates(probs: np.ndarray, threshold: float | None) -> np.ndarray:
    """p_merger at or above the model's merger threshold (all False for a model without one)."""
    return probs[:, 3] >= threshold if threshold is not None and len(probs) else np.zeros(len(probs), dtype=bool)


def prediction_columns(probs: np.ndarray, merger_threshold: float | None) -> pd.DataFrame:
    """The prediction columns of every table: p_* (calibrated, 5 decimals), predicted (the most probable class), merger_candidate."""
    out = pd.DataFrame({col: probs[:, k].round(5) for k, col in enumerate(PROB_COLUMNS)})
    out["predicted"] = [CLASS_NAMES[i] for i in probs.argmax(1)] if len(probs) else []
    out["merger_candidate"] = merger_candidates(probs, merger_threshold)
    return out
