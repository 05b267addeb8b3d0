"""The study's network: 4 conv layers, 4 fully connected (two of them maxout), 4-way softmax.

conv(32) -> pool -> conv(64) -> pool -> conv(64) -> conv(128) -> pool -> flatten ->
dense + ReLU -> maxout -> maxout -> dense + ReLU -> linear(4), dropout 0.5 after each dense layer.
The study left kernel sizes and dense widths unstated; the defaults (config ``train.model``) are
kernels 6, 5, 3, 3 (valid convolutions, as in Dieleman et al.'s Galaxy Zoo network), dense widths
512, 256, 256, 128, and 2 pieces per maxout unit. The forward pass returns logits; ``probabilities``
applies the softmax.
"""

from __future__ import annotations

import pickle
import zipfile
from pathlib import Path

import torch
from torch import nn

from .errors import NightSkyNetError, SettingsError

DEFAULT_ARCHITECTURE = {
    "channels": [32, 64, 64, 128],
    "kernels": [6, 5, 3, 3],
    "dense": [512, 256, 256, 128],
    "maxout_pieces": 2,
    "dropout": 0.5,
    "input_size": 60,
}
POOL_AFTER = (True, True, False, True)  # 2 x 2 max pooling after conv 1, 2 and 4


class Maxout(nn.Module):
    """A linear layer with ``pieces`` outputs per unit, keeping the largest."""

    def __init__(self, in_features: int, out_features: int, pieces: int):
        super().__init__()
        self.out_features, self.pieces = out_features, pieces
        self.linear = nn.Linear(in_features, out_features * pieces)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x).view(-1, self.out_features, self.pieces).amax(dim=-1)


class Standardize(nn.Module):
    """(x - mean) / std per colour channel; the statistics are set from the training images."""

    def __init__(self, channels: int = 3):
        super().__init__()
        self.register_buffer("mean", torch.zeros(1, channels, 1, 1))
        self.register_buffer("std", torch.ones(1, channels, 1, 1))

    def set_statistics(self, mean, std) -> None:
        self.mean.copy_(torch.as_tensor(mean, dtype=torch.float32).view_as(self.mean))
        self.std.copy_(torch.as_tensor(std, dtype=torch.float32).clamp_min(1e-3).view_as(self.std))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std


class GalaxyNet(nn.Module):
    def __init__(self, channels=(32, 64, 64, 128), kernels=(6, 5, 3, 3), dense=(512, 256, 256, 128), maxout_pieces=2, dropout=0.5, input_size=60, n_classes=4):
        super().__init__()
        if len(channels) != 4 or len(kernels) != 4 or len(dense) != 4:
            raise SettingsError("the network has exactly 4 conv layers (channels, kernels) and 4 dense layers (dense)")
        self.standardize = Standardize(3)
        layers: list[nn.Module] = []
        c_in, side = 3, input_size
        for c_out, k, pool in zip(channels, kernels, POOL_AFTER):
            layers += [nn.Conv2d(c_in, c_out, kernel_size=k), nn.ReLU(inplace=True)]
            side = side - k + 1
            if pool:
                layers.append(nn.MaxPool2d(2))
                side //= 2
            if side < 1:
                raise SettingsError(f"train.model kernels {list(kernels)} shrink a {input_size} px input to nothing")
            c_in = c_out
        self.features = nn.Sequential(*layers)
        flat = c_in * side * side
        d1, d2, d3, d4 = dense
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Linear(flat, d1), nn.ReLU(inplace=True), nn.Dropout(dropout),
            Maxout(d1, d2, maxout_pieces), nn.Dropout(dropout),
            Maxout(d2, d3, maxout_pieces), nn.Dropout(dropout),
            nn.Linear(d3, d4), nn.ReLU(inplace=True), nn.Dropout(dropout),
            nn.Linear(d4, n_classes),
        )
        self.feature_shape = (c_in, side, side)
        self.input_size = input_size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(self.standardize(x)))


def build_model(architecture: dict) -> GalaxyNet:
    arch = {**DEFAULT_ARCHITECTURE, **architecture}
    return GalaxyNet(arch["channels"], arch["kernels"], arch["dense"], arch["maxout_pieces"], arch["dropout"], arch["input_size"])


def to_input(images_uint8: torch.Tensor) -> torch.Tensor:
    """(N, H, W, 3) uint8 -> (N, 3, H, W) float32 in [0, 1]."""
    return images_uint8.permute(0, 3, 1, 2).float().div_(255.0)


def probabilities(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    return torch.softmax(model(x).float(), dim=1)


def layer_shapes(model: GalaxyNet) -> list[tuple[str, tuple[int, ...]]]:
    """(layer description, output shape without batch) for each layer, for reports."""
    shapes = []
    x = torch.zeros(1, 3, model.input_size, model.input_size)
    with torch.no_grad():
        for part in (model.features, model.classifier):
            for layer in part:
                x = layer(x)
                if isinstance(layer, (nn.ReLU, nn.Dropout, nn.Flatten)):
                    continue
                shapes.append((describe(layer), tuple(x.shape[1:])))
    return shapes


def describe(layer: nn.Module) -> str:
    if isinstance(layer, nn.Conv2d):
        return f"conv {layer.kernel_size[0]}x{layer.kernel_size[1]}, {layer.out_channels} ch, ReLU"
    if isinstance(layer, nn.MaxPool2d):
        return "max pool 2x2"
    if isinstance(layer, Maxout):
        return f"maxout {layer.out_features} ({layer.pieces} pieces), dropout"
    if isinstance(layer, nn.Linear):
        return f"dense {layer.out_features}"
    return type(layer).__name__


def save_model(path, model: GalaxyNet, architecture: dict, extra: dict) -> None:
    from .files import atomic_path

    with atomic_path(path) as tmp:
        torch.save({"architecture": {**DEFAULT_ARCHITECTURE, **architecture}, "state_dict": model.state_dict(), **extra}, tmp)


class ModelFileError(NightSkyNetError, ValueError):
    """A file that is not a model written by the train stage."""


def load_model(path, device: str | torch.device = "cpu") -> tuple[GalaxyNet, dict]:
    """The network in ``path`` (a model.pt of the train stage), in eval mode on ``device``, and everything saved with it.

    Loads tensors and plain settings only (``weights_only``): a model file never runs code.
    """
    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"model file {path} does not exist" + (" (it is a folder)" if path.is_dir() else "") + "; train one with `snakemake` (results/model/model.pt)")
    what = "a model.pt written by the train stage"
    try:
        saved = torch.load(path, map_location=device, weights_only=True)
    except pickle.UnpicklingError as err:
        if "weights only" in str(err).lower() or "weights_only" in str(err):
            raise ModelFileError(f"{path} is not a Night Sky Net model file ({what}): it holds objects other than tensors and settings, so it is not loaded") from None
        raise ModelFileError(f"{path} is not a Night Sky Net model file ({what}): not a PyTorch file") from None
    except (RuntimeError, EOFError, OSError, ValueError, zipfile.BadZipFile):
        raise ModelFileError(f"{path} is not a Night Sky Net model file ({what}): not a readable PyTorch file") from None
    if not isinstance(saved, dict) or "architecture" not in saved or "state_dict" not in saved:
        raise ModelFileError(f"{path} is not a Night Sky Net model file ({what}): a PyTorch file without the network's architecture and weights")
    model = build_model(saved["architecture"])
    model.load_state_dict(saved["state_dict"])
    model.to(device).eval()
    return model, saved


DEFAULT_CUTOUT = {"size": 120, "scale_mode": "fixed", "scale": 0.4, "adaptive_k": 0.0846}


def model_geometry(saved: dict) -> tuple[dict, int]:
    """(the cutout geometry the model was trained on, the network's input crop in px).

    Models written before the geometry was recorded were trained on the default cutouts.
    """
    cutout = {**DEFAULT_CUTOUT, **saved.get("cutout", {})}
    return cutout, int(saved.get("crop", saved["architecture"].get("input_size", 60)))
