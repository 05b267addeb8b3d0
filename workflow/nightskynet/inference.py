"""The trained network on images: device choice, test-time averaged probabilities, the prediction columns.

Every consumer of a model (evaluate, predict, calibrate) predicts through these functions, so a
galaxy gets the same probabilities wherever it is classified: the softmax of the calibrated
logits averaged over the 8 D4 views (rotations by 90 degrees and flips) of its crop.
"""

from __future__ import annotations

import queue
import threading
from typing import Callable, Iterable, Iterator, TypeVar

import numpy as np
import torch
from tqdm import tqdm

from .augment import d4_torch
from .classes import CLASS_NAMES
from .errors import SettingsError
from .model import GalaxyClassifier, to_input


def pick_device(requested: str = "auto") -> torch.device:
    """``auto`` (CUDA when PyTorch sees a GPU), ``cuda`` or ``cpu``."""
    if requested == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if requested == "cuda" and not torch.cuda.is_available():
        raise SettingsError("the device is 'cuda' but PyTorch sees no CUDA device; use 'auto' or 'cpu'")
    return torch.device(requested)


# galaxies per model call on a CPU, with the model in channels-last: the 8 views of 64 crops stay in
# the caches (2 cores, TTA: 75 galaxies/s; 60 at 256; 59 and 40 in PyTorch's default NCHW layout;
# docs/benchmarks.md, "The catalog and predict against the model's own rate")
CPU_BATCH = 64


def prepare_model(model: torch.nn.Module, device: torch.device) -> torch.nn.Module:
    """The model in eval mode, channels-last on a CPU (oneDNN's fastest layout for these convolutions)."""
    model.eval()
    return model.to(memory_format=torch.channels_last) if device.type == "cpu" else model


@torch.inference_mode()
def tta_probabilities(model: torch.nn.Module, images: np.ndarray, device: torch.device, tta: bool = True) -> np.ndarray:
    """(N, 4) calibrated class probabilities of one batch of (N, H, W, 3) uint8 crops: the mean over
    the 8 D4 views of the softmax when ``tta``, else of the crop as it is. The one place a model
    meets pixels outside training: evaluate, calibrate, predict and catalog all get their answers here
    or from ``view_logits``, which does the same arithmetic view by view."""
    x = to_input(torch.from_numpy(np.ascontiguousarray(images)).to(device, non_blocking=True))
    if device.type == "cpu":
        x = x.contiguous(memory_format=torch.channels_last)
    views = range(8) if tta else (0,)
    p = sum(torch.softmax(model(d4_torch(x, g)).float(), dim=1) for g in views) / len(views)
    return p.double().cpu().numpy()


def predict_proba(model: torch.nn.Module, images: np.ndarray, device: torch.device, tta: bool = True, batch_size: int = 256) -> np.ndarray:
    """(N, 4) class probabilities for (N, H, W, 3) uint8 images already in memory; averaged over D4 views if ``tta``."""
    model = prepare_model(model, device)
    out = np.zeros((len(images), len(CLASS_NAMES)), dtype=np.float64)
    for start in batches(len(images), batch_size):
        out[start : start + batch_size] = tta_probabilities(model, images[start : start + batch_size], device, tta)
    return out


T = TypeVar("T")


def prefetch(items: Iterable[T], depth: int = 2) -> Iterator[T]:
    """``items``, produced in a background thread up to ``depth`` ahead of the consumer.

    JPEG decoding (which releases the GIL) then overlaps the model's work on the batch before. An
    exception in the producer is raised in the consumer; a consumer that stops early stops the producer.
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


def classify_stream(
    model: torch.nn.Module,
    batches_of: Iterable[T],
    pixels: Callable[[T], np.ndarray],
    device: torch.device,
    tta: bool = True,
) -> Iterator[tuple[T, np.ndarray]]:
    """(batch, (N, 4) probabilities) for each batch a producer makes (decoded in a background thread while
    the model works on the one before); ``pixels(batch)`` is its (N, H, W, 3) uint8 crops. Memory: ``depth``
    batches, however many there are."""
    model = prepare_model(model, device)
    for batch in prefetch(batches_of):
        images = pixels(batch)
        yield batch, (tta_probabilities(model, images, device, tta) if len(images) else np.zeros((0, len(CLASS_NAMES))))


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
