"""The trained classifier in NumPy, for answers without starting PyTorch.

Importing PyTorch takes 1.5 to 2.5 s on a 2-core machine, longer than classifying a handful of
galaxies; ``predict`` on a few images (``SMALL_INPUT``) therefore reads the model file and runs
the network here, in NumPy, and answers in about a second. The arithmetic is the model's own
(``model.GalaxyClassifier`` in eval mode: standardisation, the network, the calibration, the mean
of the softmax over the 8 D4 views), in float32; it agrees with PyTorch's to about 1e-6 in every
probability (tests/test_predict.py checks both networks on the demo galaxies).

The model file is PyTorch's zip archive: ``data.pkl`` (the saved dict, tensors as references to
storages) and ``data/<key>`` (each storage's raw little-endian bytes). It is read with an
unpickler that knows only the classes a model file holds (tensors, storages, ordered dicts), so a
model file never runs code, as ``torch.load(weights_only=True)`` guarantees.
"""

from __future__ import annotations

import pickle
import zipfile
from collections import OrderedDict
from pathlib import Path

import numpy as np
from numpy.lib.stride_tricks import as_strided

from .architecture import POOL_AFTER

SMALL_INPUT = 16  # predict on at most this many images runs here (~0.1 s per image with TTA, against ~2 s to import PyTorch)
VIEWS_PER_CALL = 64  # crops per array operation (bounds the im2col buffers to ~100 MB)
BN_EPS = 1e-5  # torch.nn.BatchNorm2d's default

STORAGES = {
    "FloatStorage": np.float32,
    "DoubleStorage": np.float64,
    "HalfStorage": np.float16,
    "LongStorage": np.int64,
    "IntStorage": np.int32,
    "ShortStorage": np.int16,
    "CharStorage": np.int8,
    "ByteStorage": np.uint8,
    "BoolStorage": np.bool_,
}


class ModelFileUnreadable(ValueError):
    """Not a model file this reader understands (``model.load_model`` says why in words)."""


def _rebuild_tensor(storage, offset, size, stride, requires_grad=False, hooks=None, metadata=None):
    itemsize = storage.itemsize
    return as_strided(storage[offset:], shape=tuple(size), strides=tuple(s * itemsize for s in stride)).copy()


class _ModelUnpickler(pickle.Unpickler):
    def __init__(self, file, archive: zipfile.ZipFile, prefix: str):
        super().__init__(file)
        self.archive, self.prefix = archive, prefix

    def find_class(self, module: str, name: str):
        if module == "collections" and name == "OrderedDict":
            return OrderedDict
        if module == "torch._utils" and name == "_rebuild_tensor_v2":
            return _rebuild_tensor
        if module == "torch" and name in STORAGES:
            return STORAGES[name]
        raise ModelFileUnreadable(f"holds {module}.{name}, which a model file never does")

    def persistent_load(self, pid):
        kind, dtype, key, _location, numel = pid
        if kind != "storage":
            raise ModelFileUnreadable(f"unknown persistent reference {kind!r}")
        raw = self.archive.read(f"{self.prefix}data/{key}")
        return np.frombuffer(raw, dtype=np.dtype(dtype).newbyteorder("<"), count=numel)


def read_model_file(path: str | Path) -> dict:
    """The dict a model.pt holds, tensors as NumPy arrays. Raises ModelFileUnreadable for anything else."""
    try:
        with zipfile.ZipFile(path) as archive:
            pickles = [n for n in archive.namelist() if n.endswith("/data.pkl")]
            if len(pickles) != 1:
                raise ModelFileUnreadable("not a PyTorch archive")
            prefix = pickles[0][: -len("data.pkl")]
            order = archive.read(f"{prefix}byteorder").decode() if f"{prefix}byteorder" in archive.namelist() else "little"
            if order != "little":
                raise ModelFileUnreadable(f"{order}-endian storages")
            with archive.open(pickles[0]) as f:
                return _ModelUnpickler(f, archive, prefix).load()
    except (zipfile.BadZipFile, OSError, EOFError, pickle.UnpicklingError, KeyError, ValueError, TypeError) as err:
        if isinstance(err, ModelFileUnreadable):
            raise
        raise ModelFileUnreadable(str(err)) from None


# ---- the layers, on (N, H, W, C) float32 arrays ---------------------------------------------------


def conv2d(x: np.ndarray, weight: np.ndarray, bias: np.ndarray | None = None, stride: int = 1, padding: int = 0) -> np.ndarray:
    """torch.nn.functional.conv2d on NHWC data with an (out, in, kh, kw) weight."""
    if padding:
        x = np.pad(x, ((0, 0), (padding, padding), (padding, padding), (0, 0)))
    n, h, w, c = x.shape
    kh, kw = weight.shape[2:]
    oh, ow = (h - kh) // stride + 1, (w - kw) // stride + 1
    # im2col: the kh x kw shifted copies side by side (channels fastest), then one matrix product
    rows, cols = stride * (oh - 1) + 1, stride * (ow - 1) + 1
    columns = np.concatenate([x[:, i : i + rows : stride, j : j + cols : stride] for i in range(kh) for j in range(kw)], axis=-1)
    out = columns.reshape(-1, kh * kw * c) @ weight.transpose(2, 3, 1, 0).reshape(kh * kw * c, -1)
    out = out.reshape(n, oh, ow, -1)
    return out + bias if bias is not None else out


def batch_norm(x: np.ndarray, state: dict, name: str) -> np.ndarray:
    scale = state[f"{name}.weight"] / np.sqrt(state[f"{name}.running_var"] + BN_EPS)
    return x * scale + (state[f"{name}.bias"] - state[f"{name}.running_mean"] * scale)


def relu(x: np.ndarray) -> np.ndarray:
    return np.maximum(x, 0.0, out=x)


def max_pool2(x: np.ndarray) -> np.ndarray:
    n, h, w, c = x.shape
    return x[:, : h // 2 * 2, : w // 2 * 2].reshape(n, h // 2, 2, w // 2, 2, c).max(axis=(2, 4))


def linear(x: np.ndarray, state: dict, name: str) -> np.ndarray:
    return x @ state[f"{name}.weight"].T + state[f"{name}.bias"]


def resnet_logits(x: np.ndarray, state: dict) -> np.ndarray:
    """model.ResidualNet: stem, four residual blocks (stride 2 from the second), global average pool, linear."""
    x = relu(batch_norm(conv2d(x, state["network.stem.0.weight"], padding=1), state, "network.stem.1"))
    for i in range(4):
        block = f"network.stages.{i}"
        stride = 1 if i == 0 else 2
        h = relu(batch_norm(conv2d(x, state[f"{block}.conv1.weight"], stride=stride, padding=1), state, f"{block}.bn1"))
        h = batch_norm(conv2d(h, state[f"{block}.conv2.weight"], padding=1), state, f"{block}.bn2")
        if f"{block}.shortcut.0.weight" in state:
            x = batch_norm(conv2d(x, state[f"{block}.shortcut.0.weight"], stride=stride), state, f"{block}.shortcut.1")
        x = relu(h + x)
    return linear(x.mean(axis=(1, 2)), state, "network.head.3")


def study_logits(x: np.ndarray, state: dict, pieces: int) -> np.ndarray:
    """model.StudyNet: four valid convolutions with ReLU (2 x 2 max pooling after the 1st, 2nd and 4th), then
    dense + ReLU, maxout, maxout, dense + ReLU, linear (dropout is the identity at inference)."""
    convs = sorted({k.split(".")[2] for k in state if k.startswith("network.features.") and k.endswith(".weight")}, key=int)
    for index, pool in zip(convs, POOL_AFTER):
        x = relu(conv2d(x, state[f"network.features.{index}.weight"], state[f"network.features.{index}.bias"]))
        if pool:
            x = max_pool2(x)
    x = np.ascontiguousarray(x.transpose(0, 3, 1, 2)).reshape(len(x), -1)  # flattened as torch does: C, H, W
    x = relu(linear(x, state, "network.classifier.1"))
    for layer in ("network.classifier.4.linear", "network.classifier.6.linear"):
        out = linear(x, state, layer)
        x = out.reshape(len(x), -1, pieces).max(axis=-1)
    x = relu(linear(x, state, "network.classifier.8"))
    return linear(x, state, "network.classifier.11")


def d4_views(x: np.ndarray, g: int) -> np.ndarray:
    """augment.d4_torch on NHWC data: rotation by 90 degrees g % 4 times, then a left-right flip when g >= 4."""
    out = np.rot90(x, k=g % 4, axes=(1, 2))
    return out[:, :, ::-1] if g >= 4 else out


class NumpyClassifier:
    """A model file's classifier: (N, H, W, 3) uint8 crops -> (N, 4) calibrated probabilities."""

    def __init__(self, saved: dict):
        self.saved = saved
        self.state = {k: np.asarray(v, dtype=np.float32) for k, v in saved["state_dict"].items() if not k.endswith("num_batches_tracked")}
        self.network = saved["network"]
        if self.network not in ("resnet", "study"):
            raise ModelFileUnreadable(f"unknown network {self.network!r}")

    def logits(self, x: np.ndarray) -> np.ndarray:
        s = self.state
        x = (x - s["standardize.mean"].reshape(3)) / s["standardize.std"].reshape(3)
        raw = resnet_logits(x, s) if self.network == "resnet" else study_logits(x, s, int(self.saved["architecture"]["maxout_pieces"]))
        return (raw + s["calibration.logit_bias"]) / s["calibration.temperature"]

    def probabilities(self, images: np.ndarray, tta: bool = True) -> np.ndarray:
        x = images.astype(np.float32) / np.float32(255.0)
        views = range(8) if tta else (0,)
        total = np.zeros((len(x), 4), dtype=np.float32)
        for g in views:
            for start in range(0, len(x), VIEWS_PER_CALL):
                z = self.logits(np.ascontiguousarray(d4_views(x[start : start + VIEWS_PER_CALL], g)))
                z = np.exp(z - z.max(axis=1, keepdims=True))
                total[start : start + len(z)] += z / z.sum(axis=1, keepdims=True)
        return (total / len(views)).astype(np.float64)
