"""Cutout images: decoding, resampling, and reading a user's image files.

Shared by the shards, catalog and report stages (the scraped cutouts, read from the chunk tars) and
``predict`` (a user's images), so that all turn a JPEG into the network's pixels the same way. What
a cutout's centre holds (a galaxy, or not) is ``images.sources``'s to say.
"""

from __future__ import annotations

import io
import re
import tarfile
from pathlib import Path

import numpy as np
from PIL import Image

from ..core.chunks import chunk_of
from .augment import crop


def tars_holding(tar_paths: list[str | Path], wanted: set[int]) -> list[str | Path]:
    """Of every chunk tar of one run (``chunk_0.tar`` ... ``chunk_<n-1>.tar``, all of them), those that can hold the
    wanted objids: a galaxy's chunk is ``chunk_of(objid, n)``, so a few galaxies of a million-galaxy run are read from
    a few tars. Paths named otherwise, or not numbered 0 to n-1, are all returned."""
    numbered = {}
    for path in tar_paths:
        match = re.search(r"chunk_(\d+)\.tar$", str(path))
        if match is None:
            return list(tar_paths)  # not the scrape's naming: look everywhere
        numbered[int(match.group(1))] = path
    if sorted(numbered) != list(range(len(numbered))):
        return list(tar_paths)
    needed = {chunk_of(objid, len(numbered)) for objid in wanted}
    return [numbered[k] for k in sorted(needed)]


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
GREY_LEVELS = 2  # an RGB image whose channels nowhere differ by more than this is grey
GREY_NOTE = "grey image: the network learnt from colour (g, r, i) cutouts, so it is less sure than its probabilities say"


class UnusableImage(ValueError):
    """An input image that cannot be classified; ``status`` says why: ``unreadable`` or ``too_small``."""

    def __init__(self, status: str, message: str):
        super().__init__(message)
        self.status = status


def image_files(folder: Path) -> list[Path]:
    """The JPEG/PNG entries of a folder (by suffix), sorted by name: files, and symbolic links even where they
    lead nowhere (dangling or looping), so that those are named as unreadable rather than passed over."""
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and (p.is_symlink() or not p.is_dir()))


def read_image(path: Path, size: int) -> tuple[np.ndarray, str]:
    """The image at ``path`` resampled whole to the (size, size, 3) uint8 cutout the model expects, and a note of
    what reading it took ('' when nothing did): 16-bit and floating-point images scaled to 8 bits (not clipped),
    palette images converted, transparency dropped, grey images flagged. Raises UnusableImage."""
    if path.is_symlink() and not path.exists():
        raise UnusableImage("unreadable", "a symbolic link that leads nowhere (dangling or looping)")
    try:
        with Image.open(path) as im:
            if min(im.size) < MIN_IMAGE_PX:
                raise UnusableImage(
                    "too_small", f"{im.size[0]} x {im.size[1]} px is smaller than {MIN_IMAGE_PX} px on a side: too small to hold a galaxy"
                )
            im.load()
            rgb, notes = _as_rgb(im)
    except UnusableImage:
        raise
    except (OSError, ValueError, Image.DecompressionBombError) as err:  # PIL's UnidentifiedImageError is an OSError
        raise UnusableImage("unreadable", f"not a readable image ({err})") from None
    image = rgb.resize((size, size), Image.Resampling.LANCZOS)
    return np.asarray(image, dtype=np.uint8), "; ".join(notes)


def _as_rgb(im: Image.Image) -> tuple[Image.Image, list[str]]:
    """``im`` as 8-bit RGB, and notes of what that took."""
    notes = []
    if im.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        values = np.asarray(im, dtype=np.float64)
        top = values.max() if values.size else 0.0
        if im.mode.startswith("I;16"):
            values, what = values / 257.0, "16-bit image scaled to 8 bits"
        elif im.mode == "F" and top <= 1.0:
            values, what = values * 255.0, "floating-point image scaled to 8 bits"
        elif top > 255:
            values, what = values * (255.0 / top), f"{'32-bit' if im.mode == 'I' else 'floating-point'} image scaled to 8 bits"
        else:
            what = ""
        if what:
            notes.append(what)
        im = Image.fromarray(np.clip(np.round(values), 0, 255).astype(np.uint8))
    if im.mode in ("RGBA", "LA", "PA") or "transparency" in im.info:
        rgba = im.convert("RGBA")
        if (np.asarray(rgba)[..., 3] < 255).any():
            notes.append("transparency ignored")
        im = rgba
    rgb = im.convert("RGB")
    if _channel_spread(rgb) <= GREY_LEVELS:
        notes.append(GREY_NOTE)
    return rgb, notes


def _channel_spread(rgb: Image.Image) -> int:
    """The largest difference between two colour channels of any pixel (0 for a grey image), from the channel
    planes' maxima and minima: 25x faster than a reduction over the pixels' last axis."""
    red, green, blue = (np.asarray(band) for band in rgb.split())
    high = np.maximum(np.maximum(red, green), blue)
    low = np.minimum(np.minimum(red, green), blue)
    return int((high - low).max())
