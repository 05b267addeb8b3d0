"""The networks, the input standardisation and the calibration they share, and the model file.

Two networks (config ``train.recipe``):

* ``study``: the study's network. conv(32) -> pool -> conv(64) -> pool -> conv(64) -> conv(128)
  -> pool -> flatten -> dense + ReLU -> maxout -> maxout -> dense + ReLU -> linear(4), dropout
  after each of the four dense layers. The study left kernel sizes and dense widths unstated; the
  defaults (config ``train.study.model``) are kernels 6, 5, 3, 3 (valid convolutions, as in
  Dieleman et al.'s Galaxy Zoo network), dense widths 512, 256, 256, 128, 2 pieces per maxout
  unit, dropout 0.5.
* ``resnet``: a small residual network sized for 60 px crops: a 3 x 3 stem, four stages of one
  basic residual block each (widths w, 2w, 4w, 8w; stride 2 from the second stage on), batch
  normalisation, global average pooling, dropout, linear(4).

Both sit inside a ``GalaxyClassifier``: per-channel standardisation of the [0, 1] input (from the
training images) -> network -> calibration. The calibration (fitted after training, on the
validation galaxies; identity until then) adds a per-class logit offset that moves the class
prior the network was trained at back to the real one, and divides by a temperature, so the
softmax of the classifier's output is a calibrated probability in every consumer (evaluate,
predict). The model file holds the architecture, the weights, the calibration, the merger decision
threshold and the geometry of the cutouts it was trained on.
"""

from __future__ import annotations

import io
import json
import pickle
import warnings
import zipfile
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

from ..core.architecture import POOL_AFTER, Architecture, ResNetArchitecture, StudyArchitecture, architecture_of, as_settings
from ..core.vocabulary import CLASS_NAMES
from .model_file import GRAPH_MEMBER, INFO_MEMBER, WHAT, ModelFileError, archive_prefix


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


class StudyNet(nn.Module):
    """The study's network (module docstring)."""

    def __init__(self, arch: StudyArchitecture, input_size: int, n_classes: int = 4):
        super().__init__()
        arch.check(input_size)
        layers: list[nn.Module] = []
        c_in = 3
        for c_out, k, pool in zip(arch.channels, arch.kernels, POOL_AFTER, strict=True):
            layers += [nn.Conv2d(c_in, c_out, kernel_size=k), nn.ReLU(inplace=True)] + ([nn.MaxPool2d(2)] if pool else [])
            c_in = c_out
        self.features = nn.Sequential(*layers)
        side = arch.feature_side(input_size)
        d1, d2, d3, d4 = arch.dense
        p, drop = arch.maxout_pieces, arch.dropout
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Linear(c_in * side * side, d1), nn.ReLU(inplace=True), nn.Dropout(drop),
            Maxout(d1, d2, p), nn.Dropout(drop),
            Maxout(d2, d3, p), nn.Dropout(drop),
            nn.Linear(d3, d4), nn.ReLU(inplace=True), nn.Dropout(drop),
            nn.Linear(d4, n_classes),
        )  # fmt: skip
        self.feature_shape = (c_in, side, side)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """The penultimate features: the last dense layer's ReLU output (before its dropout and the class logits)."""
        return self.classifier[:-2](self.features(x))

    def logits_of(self, embedding: torch.Tensor) -> torch.Tensor:
        return self.classifier[-2:](embedding)

    def parts(self) -> list[nn.Module]:
        return [*self.features, *self.classifier]


class ResidualBlock(nn.Module):
    """Two 3 x 3 convolutions with batch normalisation and a shortcut (1 x 1 where the shape changes)."""

    def __init__(self, c_in: int, c_out: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.shortcut = (
            nn.Sequential()
            if (c_in == c_out and stride == 1)
            else nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride, bias=False), nn.BatchNorm2d(c_out))
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.relu(self.bn1(self.conv1(x)))
        return F.relu(self.bn2(self.conv2(h)) + self.shortcut(x))


class ResidualNet(nn.Module):
    """The small residual network (module docstring)."""

    def __init__(self, arch: ResNetArchitecture, input_size: int, n_classes: int = 4):
        super().__init__()
        arch.check(input_size)
        width, dropout = arch.width, arch.dropout
        self.stem = nn.Sequential(nn.Conv2d(3, width, 3, 1, 1, bias=False), nn.BatchNorm2d(width), nn.ReLU(inplace=True))
        widths = [width, 2 * width, 4 * width, 8 * width]
        self.stages = nn.Sequential(
            *[
                ResidualBlock(c_in, c_out, 1 if i == 0 else 2)
                for i, (c_in, c_out) in enumerate(zip([width, *widths[:-1]], widths, strict=True))
            ]
        )
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(dropout), nn.Linear(widths[-1], n_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.stages(self.stem(x)))

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """The penultimate features: the globally averaged last stage (before the dropout and the class logits)."""
        return self.head[:2](self.stages(self.stem(x)))

    def logits_of(self, embedding: torch.Tensor) -> torch.Tensor:
        return self.head[2:](embedding)

    def parts(self) -> list[nn.Module]:
        return [self.stem, *self.stages, *self.head]


class Calibration(nn.Module):
    """logits -> (logits + logit_bias) / temperature. The identity until ``train`` fits it."""

    def __init__(self, n_classes: int = 4):
        super().__init__()
        self.register_buffer("logit_bias", torch.zeros(n_classes))
        self.register_buffer("temperature", torch.ones(()))

    def forward(self, logits: torch.Tensor) -> torch.Tensor:
        return (logits + self.logit_bias) / self.temperature


class GalaxyClassifier(nn.Module):
    """Standardisation -> network -> calibration. ``forward`` gives calibrated logits, ``raw_logits`` the network's own."""

    def __init__(self, network: str, architecture: Architecture | dict, input_size: int):
        super().__init__()
        arch = architecture_of(network, architecture) if isinstance(architecture, dict) else architecture
        self.network = StudyNet(arch, input_size) if network == "study" else ResidualNet(arch, input_size)
        self.kind, self.architecture, self.input_size = network, arch, input_size
        self.standardize = Standardize(3)
        self.calibration = Calibration(len(CLASS_NAMES))

    def raw_logits(self, x: torch.Tensor) -> torch.Tensor:
        return self.network(self.standardize(x))

    def raw_logits_and_features(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(the network's own logits, its penultimate features) of (N, 3, H, W) inputs in [0, 1]."""
        embedding = self.network.embed(self.standardize(x))
        return self.network.logits_of(embedding), embedding

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.calibration(self.raw_logits(x))


class InferenceGraph(nn.Module):
    """What the model file's ONNX graph computes: uint8 crops (N, H, W, 3) -> (raw logits (N, 4), features (N, F))."""

    def __init__(self, classifier: GalaxyClassifier):
        super().__init__()
        self.classifier = classifier

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.classifier.raw_logits_and_features(images.permute(0, 3, 1, 2).float() / 255.0)


def export_onnx(model: GalaxyClassifier) -> bytes:
    """The classifier (eval mode, CPU, float32) as an ONNX graph (``InferenceGraph``), any batch size; the same weights give
    the same bytes. TorchScript-based export, which needs only the ``onnx`` package."""
    graph = InferenceGraph(model).cpu().float().eval()
    example = torch.zeros(2, model.input_size, model.input_size, 3, dtype=torch.uint8)
    buffer = io.BytesIO()
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # the exporter's notes on its own future, not on this graph
        torch.onnx.export(
            graph,
            (example,),
            buffer,
            input_names=["images"],
            output_names=["logits", "features"],
            dynamic_axes={"images": {0: "n"}, "logits": {0: "n"}, "features": {0: "n"}},
            opset_version=17,
            dynamo=False,
        )
    return buffer.getvalue()


def to_input(images_uint8: torch.Tensor) -> torch.Tensor:
    """(N, H, W, 3) uint8 -> (N, 3, H, W) float32 in [0, 1]."""
    return images_uint8.permute(0, 3, 1, 2).float().div_(255.0)


def layer_table(model: GalaxyClassifier) -> list[tuple[str, tuple[int, ...]]]:
    """(layer, output shape without the batch) for every layer a reader should see, dropout included."""
    rows = []
    x = model.standardize(torch.zeros(1, 3, model.input_size, model.input_size))
    was_training = model.training
    model.eval()
    with torch.no_grad():
        for part in model.network.parts():
            x = part(x)
            name = describe(part)
            if name:
                rows.append((name, tuple(x.shape[1:])))
    model.train(was_training)
    return rows


def describe(layer: nn.Module) -> str | None:
    """A layer in words; None for the ones folded into the line before (ReLU, flatten)."""
    if isinstance(layer, nn.Conv2d):
        return f"conv {layer.kernel_size[0]}x{layer.kernel_size[1]}, {layer.out_channels} ch, ReLU"
    if isinstance(layer, nn.MaxPool2d):
        return "max pool 2x2"
    if isinstance(layer, Maxout):
        return f"maxout {layer.out_features} ({layer.pieces} pieces)"
    if isinstance(layer, nn.Linear):
        return f"dense {layer.out_features}" + (", ReLU" if layer.out_features > len(CLASS_NAMES) else " (class logits)")
    if isinstance(layer, nn.Dropout):
        return f"dropout {layer.p:g}"
    if isinstance(layer, ResidualBlock):
        stride = layer.conv1.stride[0]
        return f"residual block, {layer.conv2.out_channels} ch" + (f", stride {stride}" if stride > 1 else "")
    if isinstance(layer, nn.Sequential) and layer and isinstance(layer[0], nn.Conv2d):
        return f"stem: conv 3x3, {layer[0].out_channels} ch, batch norm, ReLU"
    if isinstance(layer, nn.AdaptiveAvgPool2d):
        return "global average pool"
    return None


def save_model(path, model: GalaxyClassifier, extra: dict) -> None:
    """Write the model file atomically; the same model and settings give the same bytes.

    The PyTorch archive of the weights and settings, and in it (``model_file``) the settings as JSON
    and the network as an ONNX graph, exported from these weights. (``torch.save`` to a file names
    the archive inside after the file, here a temporary name, so the archive is built in memory
    under a fixed name.)
    """
    from ..core.files import atomic_path

    buffer = io.BytesIO()
    saved = {
        "network": model.kind,
        "architecture": as_settings(model.architecture),
        "input_size": model.input_size,
        "state_dict": model.state_dict(),
        **extra,
    }
    torch.save(saved, buffer)
    info = {k: v for k, v in saved.items() if k != "state_dict"}
    was_training = model.training
    model.eval()
    graph = export_onnx(model)
    model.train(was_training)
    with zipfile.ZipFile(buffer, "a") as archive:
        prefix = archive_prefix(archive)
        for name, data in ((INFO_MEMBER, json.dumps(info, sort_keys=True, indent=1).encode()), (GRAPH_MEMBER, graph)):
            archive.writestr(zipfile.ZipInfo(prefix + name, date_time=(1980, 1, 1, 0, 0, 0)), data)
    with atomic_path(path) as tmp:
        tmp.write_bytes(buffer.getvalue())


def load_model(path, device: str | torch.device = "cpu") -> tuple[GalaxyClassifier, dict]:
    """The classifier in ``path`` (a model.pt of the train stage), in eval mode on ``device``, and everything saved with it.

    Loads tensors and plain settings only (``weights_only``): a model file never runs code.
    """
    path = Path(path)
    if not path.is_file():
        raise ModelFileError(
            f"model file {path} does not exist" + (" (it is a folder)" if path.is_dir() else "") + "; train one with `snakemake`"
        )
    what = WHAT
    try:
        saved = torch.load(path, map_location=device, weights_only=True)
    except pickle.UnpicklingError as err:
        if "weights only" in str(err).lower() or "weights_only" in str(err):
            raise ModelFileError(
                f"{path} is not a Night Sky Net model file ({what}): it holds objects other than tensors and settings, so it is not loaded"
            ) from None
        raise ModelFileError(f"{path} is not a Night Sky Net model file ({what}): not a PyTorch file") from None
    except Exception:  # torch's weights-only unpickler meets any bytes: IndexError, KeyError, RuntimeError... all say "not one"
        raise ModelFileError(f"{path} is not a Night Sky Net model file ({what}): not a readable PyTorch file") from None
    if not isinstance(saved, dict) or not {"network", "architecture", "input_size", "state_dict"} <= set(saved):
        raise ModelFileError(
            f"{path} is not a Night Sky Net model file ({what}): a PyTorch file without the network's architecture and weights "
            "(a model from before calibration was added: train it again)"
        )
    model = GalaxyClassifier(saved["network"], saved["architecture"], saved["input_size"])
    model.load_state_dict(saved["state_dict"])
    model.to(device).eval()
    return model, saved
