"""The trained network on images: one arithmetic for every consumer, and the engine that runs it.

Every consumer of a model (evaluate, the morphology stage, predict; calibrate, inside training)
gets a galaxy's probabilities the same way: the network's logits for the 8 D4 views of its crop
(rotations by 90 degrees and flips; one view without test-time averaging), calibrated (logit
bias, temperature) and put through a softmax each, then averaged (``averaged_probabilities``).
The engine that computes the logits:

* ``OnnxEngine``, on the CPU: the model file's ONNX graph (``model_file``) in ONNX Runtime, the
  8 views of a batch in one call. No PyTorch is imported: it starts in a tenth of a second.
* ``torch_inference.TorchEngine``: the PyTorch network, on a GPU (and inside training, on the
  model in memory).

``open_engine`` picks one for a device setting: ``cpu`` ONNX Runtime; ``cuda`` PyTorch; ``auto``
PyTorch where a GPU is visible, else ONNX Runtime. Both give the same probabilities to ~1e-7
(tests/test_inference.py). ``looking.classify_cutouts`` runs an engine over batches that worker processes read,
decode and look at while the engine works on the batch before (the morphology stage, predict, similar).
"""

from __future__ import annotations

import logging
import os
import queue
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator, Protocol, TypeVar

import numpy as np
from tqdm import tqdm

from ..core.errors import SettingsError
from ..core.vocabulary import CLASS_NAMES
from .model_file import read_model_file

log = logging.getLogger(__name__)

VIEWS = 8  # the D4 group
CPU_BATCH = 64  # galaxies per engine call on a CPU (8 views each: 512 crops); docs/benchmarks.md, "One engine"
GPU_BATCH = 1024


def d4_views(images: np.ndarray, views: int) -> np.ndarray:
    """(views * N, H, W, C): the first ``views`` D4 elements of each of (N, H, W, C) images, element-major (element g
    of image i at g * N + i). Element g is ``rot90`` by g mod 4, then a left-right flip when g >= 4 (``augment.d4``)."""
    out = []
    for g in range(views):
        view = np.rot90(images, k=g % 4, axes=(1, 2))
        out.append(view[:, :, ::-1] if g >= 4 else view)
    return np.ascontiguousarray(np.concatenate(out)) if out else images[:0]


def averaged_probabilities(logits: np.ndarray, bias: np.ndarray, temperature: float) -> np.ndarray:
    """(N, 4): the mean over the views of softmax((logits + bias) / temperature), for (N, V, 4) raw logits."""
    z = (logits + bias) / temperature
    z = z - z.max(axis=-1, keepdims=True)
    p = np.exp(z)
    p /= p.sum(axis=-1, keepdims=True)
    return p.mean(axis=1)


@dataclass(frozen=True)
class Calibration:
    """The model's calibration (``calibrate``): a logit bias per class and a temperature."""

    bias: np.ndarray
    temperature: float

    @classmethod
    def of(cls, info: dict) -> "Calibration":
        """From a model's settings; the identity for a model without one."""
        fitted = info.get("calibration") or {}
        bias = np.asarray(fitted.get("logit_bias", np.zeros(len(CLASS_NAMES))), dtype=float)
        return cls(bias, float(fitted.get("temperature", 1.0)))


@dataclass
class Answers:
    """A batch's answers: calibrated class probabilities (N, 4) and the network's features (N, F), each averaged over the views."""

    probabilities: np.ndarray
    features: np.ndarray


class Engine(Protocol):
    on_cpu: bool

    def outputs(self, images: np.ndarray, views: int) -> tuple[np.ndarray, np.ndarray]:
        """(raw logits (N, views, 4), features (N, views, F)) of (N, H, W, 3) uint8 crops."""


class OnnxEngine:
    """The model's ONNX graph in ONNX Runtime on the CPU, ``threads`` threads for each operator."""

    on_cpu = True

    def __init__(self, graph: bytes, threads: int = 1):
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = max(1, threads)
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.log_severity_level = 3  # errors only: its notes go to stderr otherwise
        # its threads sleep between operators instead of spinning: the reading and looking need those cycles
        # (the morphology stage 4% faster here, the engine alone the same; docs/benchmarks.md)
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.session = ort.InferenceSession(graph, options, providers=["CPUExecutionProvider"])
        self.input = self.session.get_inputs()[0].name

    def outputs(self, images: np.ndarray, views: int) -> tuple[np.ndarray, np.ndarray]:
        n = len(images)
        if n == 0:
            return np.zeros((0, views, len(CLASS_NAMES))), np.zeros((0, views, 0), np.float32)
        logits, features = self.session.run(None, {self.input: d4_views(np.ascontiguousarray(images, dtype=np.uint8), views)})
        return logits.reshape(views, n, -1).transpose(1, 0, 2).astype(np.float64), features.reshape(views, n, -1).transpose(1, 0, 2)


def answer(engine: Engine, images: np.ndarray, calibration: Calibration, views: int = VIEWS) -> Answers:
    """The calibrated probabilities and features of one batch of (N, H, W, 3) uint8 crops, averaged over the first ``views``
    D4 views (``d4_views``)."""
    if isinstance(views, bool) or not 1 <= views <= VIEWS:
        raise SettingsError(f"views {views}: a galaxy has 1 to {VIEWS} D4 views")
    logits, features = engine.outputs(images, views)
    return Answers(averaged_probabilities(logits, calibration.bias, calibration.temperature), features.mean(axis=1))


def gpu_visible() -> bool:
    """Whether an NVIDIA GPU is visible to this process, found without importing PyTorch (its import alone takes ~1 s)."""
    if os.environ.get("CUDA_VISIBLE_DEVICES", None) in ("", "-1"):
        return False
    gpus = Path("/proc/driver/nvidia/gpus")
    return (gpus.is_dir() and any(gpus.iterdir())) or Path("/dev/nvidia0").exists()


def open_engine(model_path: str | Path, device: str = "auto", threads: int = 1) -> tuple[Engine, dict]:
    """(the engine for ``device``, the model's settings): ``cpu`` ONNX Runtime, ``cuda`` PyTorch on the GPU (an error when
    there is none), ``auto`` PyTorch where a GPU is visible, else ONNX Runtime. A model file from before the graph was stored
    is exported now (PyTorch), with a line saying so."""
    if device not in ("auto", "cpu", "cuda"):
        raise SettingsError(f"device {device!r}: use auto, cpu or cuda")
    if device == "cuda" or (device == "auto" and gpu_visible()):
        from .torch_inference import TorchEngine, pick_device

        torch_device = pick_device(device)
        if torch_device.type == "cuda":
            return TorchEngine.from_file(model_path, torch_device)
    info, graph = read_model_file(model_path)
    if graph is None:
        from .model import export_onnx, load_model

        log.warning("%s was written before models stored their ONNX graph: exporting it now (train again to skip this)", model_path)
        model, info = load_model(model_path)
        info = {k: v for k, v in info.items() if k != "state_dict"}
        graph = export_onnx(model)
    return OnnxEngine(graph, threads), info


# ---- batches in the background ----------------------------------------------------------------

T = TypeVar("T")


def prefetch(items: Iterable[T], depth: int = 2) -> Iterator[T]:
    """``items``, produced in a background thread up to ``depth`` ahead of the consumer.

    JPEG decoding and the source check (which release the GIL for much of their time) then overlap
    the engine's work on the batch before. An exception in the producer is raised in the consumer;
    a consumer that stops early stops the producer.
    """
    slots: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()
    done = object()

    def produce() -> None:
        try:
            for item in items:
                while not stop.is_set():
                    try:
                        slots.put((item, None), timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            slots.put((done, None))
        except BaseException as err:  # handed to the consumer, raised there
            slots.put((done, err))

    worker = threading.Thread(target=produce, name="prefetch", daemon=True)
    worker.start()
    try:
        while True:
            item, err = slots.get()
            if item is done:
                if err is not None:
                    raise err
                return
            yield item
    finally:
        stop.set()
        while worker.is_alive():
            try:
                slots.get_nowait()
            except queue.Empty:
                worker.join(timeout=0.1)


def batches(n: int, batch_size: int, show: bool | None = None):
    """Start of each batch, with a progress bar (on stderr, every 5 s) when there are many images (5,000, or ``show``)."""
    with tqdm(total=n, desc="classifying", unit="img", mininterval=5.0, disable=not (n >= 5000 if show is None else show)) as bar:
        for start in range(0, n, batch_size):
            yield start
            bar.update(min(batch_size, n - start))


def outputs_in_batches(engine: Engine, images: np.ndarray, views: int, batch_size: int) -> tuple[np.ndarray, np.ndarray]:
    """``engine.outputs`` of images already in memory, ``batch_size`` at a time (a progress bar past 5,000)."""
    logits, features = [], []
    for start in batches(len(images), batch_size):
        lo, fe = engine.outputs(images[start : start + batch_size], views)
        logits.append(lo)
        features.append(fe)
    if not logits:
        return np.zeros((0, views, len(CLASS_NAMES))), np.zeros((0, views, 0), np.float32)
    return np.concatenate(logits), np.concatenate(features)
