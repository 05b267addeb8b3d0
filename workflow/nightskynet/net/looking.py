"""Read, look, classify: the one loop of every consumer that classifies images (the morphology stage, ``predict``,
``similar --image``).

Each input is a ``Cutout``: a scraped cutout's JPEG bytes (decoded, resampled only if it is not the model's cutout
size) or a user's image file (``cutouts.read_image``: any mode and size, resampled whole, refused with a status when
unreadable or too small). Each is looked at (``sources.inspect`` at its own seeing: only a galaxy at the centre is
classified) and centre-cropped to the network's input. That work runs batch by batch in ``workers`` worker processes
(the source check is Python and sep, which holds the GIL) while the engine, in this process, works on the batches
before; ``workers=0`` does it in a background thread of this process instead (a handful of images: no process to
start). Batches come back in their order; memory holds ``workers + 2`` batches however many inputs there are.
"""

from __future__ import annotations

import multiprocessing
import os
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import numpy as np

from ..images.augment import crop
from ..images.cutouts import UnusableImage, decode, read_image
from ..images.sources import inspect
from .inference import Answers, Calibration, Engine, answer, prefetch

M = TypeVar("M")


@dataclass(frozen=True)
class Cutout:
    """One input: a user's image file, or a scraped cutout's JPEG bytes; ``psf_fwhm`` the seeing in pixels at its scale
    (``sources.psf_fwhm_px``)."""

    image: Path | bytes
    psf_fwhm: float


@dataclass
class Looked:
    """A batch after reading and looking: per input a status (``classified``, or why not: ``unreadable``, ``too_small``,
    ``no_source``, ``point_source``, ``artefact``) and a note (what reading it took, or why it was refused); the network
    crops of the classified ones, in their order."""

    status: list[str]
    notes: list[str]
    crops: np.ndarray  # (k, crop, crop, 3) uint8

    @property
    def classified(self) -> np.ndarray:
        """(n,) bool: which inputs of the batch were classified."""
        return np.array([s == "classified" for s in self.status], dtype=bool)


def look_at(cutouts: list[Cutout], size: int, crop_size: int) -> Looked:
    """Read, look at and crop one batch (this is what a worker runs)."""
    status, notes, crops = [], [], []
    for cutout in cutouts:
        try:
            if isinstance(cutout.image, bytes):
                image, note = decode(cutout.image, size), ""
            else:
                image, note = read_image(Path(cutout.image), size)
        except UnusableImage as err:
            status.append(err.status)
            notes.append(str(err))
            continue
        verdict = inspect(image, cutout.psf_fwhm)
        if verdict.is_galaxy:
            status.append("classified")
            notes.append(note)
            crops.append(crop(image, crop_size))
        else:
            status.append(verdict.status)
            notes.append(verdict.reason)
    empty = np.zeros((0, crop_size, crop_size, 3), np.uint8)
    return Looked(status, notes, np.stack(crops) if crops else empty)


def _looked_in_order(pool: ProcessPoolExecutor, batches: Iterable[tuple[M, list[Cutout]]], size: int, crop_size: int, workers: int):
    """(metadata, Looked) of each batch, looked at in the pool's processes, ``workers + 1`` in flight, in their order."""
    pending: deque[tuple[M, Future]] = deque()
    for meta, cutouts in batches:
        pending.append((meta, pool.submit(look_at, cutouts, size, crop_size)))
        if len(pending) > workers:
            meta_done, future = pending.popleft()
            yield meta_done, future.result()
    while pending:
        meta_done, future = pending.popleft()
        yield meta_done, future.result()


def classify_cutouts(
    engine: Engine,
    calibration: Calibration,
    batches: Iterable[tuple[M, list[Cutout]]],
    size: int,
    crop_size: int,
    views: int,
    workers: int,
) -> Iterator[tuple[M, Looked, Answers]]:
    """(metadata, the batch looked at, the engine's answers for its classified inputs) for each (metadata, cutouts)
    batch: the reading and looking in ``workers`` processes (0: a background thread) while the engine works here on
    the batch before; ``views`` D4 views a galaxy (1 to 8)."""
    if workers <= 0:
        for meta, batch in prefetch((meta, look_at(cutouts, size, crop_size)) for meta, cutouts in batches):
            yield meta, batch, answer(engine, batch.crops, calibration, views)
        return
    # forked, all of them now and from this thread: a forked worker copies only the thread that forks it, and
    # runs only the reading and looking (NumPy, Pillow, sep), never the engine
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("fork"))
    try:
        pool.submit(int).result()
        for meta, batch in prefetch(_looked_in_order(pool, batches, size, crop_size, workers), depth=1):
            yield meta, batch, answer(engine, batch.crops, calibration, views)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def default_workers(threads: int, inputs: int, batch: int) -> int:
    """Worker processes for the reading and looking beside an engine of ``threads`` threads: none for inputs that fill
    at most two batches (a process would cost more than it saves), else one per two of the job's threads, at least one."""
    if inputs <= 2 * batch:
        return 0
    return max(1, min(threads, os.cpu_count() or 1) // 2)
