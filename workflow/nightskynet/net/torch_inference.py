"""The PyTorch engine: the network itself, on a GPU for inference, and on whatever device training runs on for calibration.

Same interface and arithmetic as ``inference.OnnxEngine`` (raw logits and features of the D4 views;
the calibration applied where the views are averaged), so a galaxy gets the same probabilities from
either (tests/test_inference.py). Only this module and training import PyTorch.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ..core.errors import SettingsError
from ..images.augment import d4_torch
from .model import GalaxyClassifier, load_model, to_input


def pick_device(requested: str = "auto") -> torch.device:
    """``auto`` (CUDA when PyTorch sees a GPU), ``cuda`` or ``cpu``."""
    if requested == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if requested == "cuda" and not torch.cuda.is_available():
        raise SettingsError("the device is 'cuda' but PyTorch sees no CUDA device; use 'auto' or 'cpu'")
    return torch.device(requested)


class TorchEngine:
    """A GalaxyClassifier (eval mode) on ``device``: channels-last on a GPU, where cuDNN is fastest with it."""

    def __init__(self, model: GalaxyClassifier, device: torch.device):
        self.model, self.device = model, device
        self.on_cpu = device.type == "cpu"

    @classmethod
    def from_file(cls, model_path: str | Path, device: torch.device) -> tuple["TorchEngine", dict]:
        model, saved = load_model(model_path, device)
        if device.type == "cuda":
            model = model.to(memory_format=torch.channels_last)
        return cls(model, device), {k: v for k, v in saved.items() if k != "state_dict"}

    @torch.inference_mode()
    def outputs(self, images: np.ndarray, views: int) -> tuple[np.ndarray, np.ndarray]:
        was_training = self.model.training
        self.model.eval()
        x = to_input(torch.from_numpy(np.ascontiguousarray(images)).to(self.device, non_blocking=True))
        if self.device.type == "cuda":
            x = x.contiguous(memory_format=torch.channels_last)
        logits, features = [], []
        for g in range(views):
            lo, fe = self.model.raw_logits_and_features(d4_torch(x, g))
            logits.append(lo.float())
            features.append(fe.float())
        self.model.train(was_training)
        return (
            torch.stack(logits, dim=1).double().cpu().numpy(),
            torch.stack(features, dim=1).cpu().numpy(),
        )
