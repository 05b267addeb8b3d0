"""Cutout images: decoding, resampling, and the checks an image must pass before it is classified.

Shared by the shards and report stages (the scraped cutouts, read from the chunk tars) and
``predict`` (a user's images), so that all turn a JPEG into the network's pixels the same way.
"""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import numpy as np
from PIL import Image

from .augment import crop


def read_chunks(tar_paths: list[str | Path], wanted: set[int]) -> dict[int, bytes]:
    """JPEG bytes of the wanted objids found in the chunk tars."""
    found: dict[int, bytes] = {}
    for path in tar_paths:
        with tarfile.open(path) as tar:
            for member in tar:
                stem = member.name.rsplit("/", 1)[-1].removesuffix(".jpg")
                if member.isfile() and stem.isdigit() and int(stem) in wanted:
                    found[int(stem)] = tar.extractfile(member).read()
    return found


def iter_chunk(tar_path: str | Path):
    """(objid, JPEG bytes) of every ``<objid>.jpg`` member of a chunk tar, in the tar's order (streamed)."""
    with tarfile.open(tar_path) as tar:
        for member in tar:
            stem = member.name.rsplit("/", 1)[-1].removesuffix(".jpg")
            if member.isfile() and stem.isdigit():
                yield int(stem), tar.extractfile(member).read()


def decode(jpeg: bytes, size: int | None) -> np.ndarray:
    """A JPEG's pixels as (size, size, 3) uint8, resampled (Lanczos) when it is another size (size None: as it is)."""
    with Image.open(io.BytesIO(jpeg)) as im:
        img = im.convert("RGB")
        if size is not None and img.size != (size, size):
            img = img.resize((size, size), Image.Resampling.LANCZOS)
        return np.asarray(img, dtype=np.uint8)


def decode_crops(jpegs: list[bytes], size: int, crop_size: int) -> np.ndarray:
    """(N, crop_size, crop_size, 3) uint8: each JPEG decoded (resampled to size x size if needed), centre-cropped.

    The pixels the test and uncertain shards hold for the same cutout (``decode`` then ``crop``).
    """
    out = np.empty((len(jpegs), crop_size, crop_size, 3), dtype=np.uint8)
    for i, jpeg in enumerate(jpegs):
        out[i] = crop(decode(jpeg, size), crop_size)
    return out


IMAGE_SUFFIXES = {".jpg", ".jpeg", ".jpe", ".png"}
MIN_IMAGE_PX = 32  # smallest side an input image may have (a 120 px cutout of 0.4"/px spans 48")
MIN_SOURCE_PX = 12  # central pixels above the sky that make a source (every demo galaxy has 64 or more in its 60 px crop)


def image_files(folder: Path) -> list[Path]:
    """The JPEG/PNG files of a folder (by suffix), sorted by name."""
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def load_cutout(path: Path, size: int, crop_size: int) -> np.ndarray:
    """The whole image resampled to size x size, then the central crop the network takes."""
    with Image.open(path) as im:
        im.load()
        if min(im.size) < MIN_IMAGE_PX:
            raise ValueError(f"{im.size[0]} x {im.size[1]} px is smaller than {MIN_IMAGE_PX} px on a side: too small to hold a galaxy")
        img = im.convert("RGB").resize((size, size), Image.Resampling.LANCZOS)
    return np.ascontiguousarray(crop(np.asarray(img, dtype=np.uint8), crop_size))


def has_central_source(image: np.ndarray, sigma: float = 5.0) -> bool:
    """True when the central ninth of a cutout holds a source (``central_sources`` of one image)."""
    return bool(central_sources(image[None], sigma)[0])


def central_sources(images: np.ndarray, sigma: float = 5.0) -> np.ndarray:
    """(N,) bool for (N, H, W, 3) images: True where the central ninth holds a source, pixels well above the sky around it.

    The sky level and noise are the median and the median absolute deviation of the outer frame;
    a source is at least MIN_SOURCE_PX central pixels brighter than sky + ``sigma`` noise (and 8 levels of 255).
    Blank sky, a constant image and pure noise fail; every demo galaxy passes (tests/test_predict.py).
    """
    grey = images.astype(np.float32).mean(axis=-1)
    n, h, w = grey.shape
    frame = (grey[:, : h // 6], grey[:, -h // 6 :], grey[:, :, : w // 6], grey[:, :, -w // 6 :])
    border = np.concatenate([part.reshape(n, -1) for part in frame], axis=1)
    sky = np.median(border, axis=1)
    noise = 1.4826 * np.median(np.abs(border - sky[:, None]), axis=1)
    centre = grey[:, h // 3 : h - h // 3, w // 3 : w - w // 3].reshape(n, -1)
    level = sky + np.maximum(sigma * noise, 8.0)
    return (centre > level[:, None]).sum(axis=1) >= MIN_SOURCE_PX
