"""The dihedral group D4 on square images, random shifts and crops.

D4 element ``g`` in 0..7 is ``rot90(image, k=g % 4)`` followed by a left-right flip when ``g >= 4``.
Together they are the 8 symmetries of the square (4 rotations; 4 reflections: the two axis flips,
the transpose and the anti-transpose). They act on the two leading axes of an (H, W, ...) array
or on the axes (-2, -1) of an (N, C, H, W) tensor (``d4_torch``), and permute pixels one-to-one.
"""

from __future__ import annotations

import numpy as np


def d4(image: np.ndarray, g: int) -> np.ndarray:
    """Apply D4 element ``g`` to an (H, W, ...) array."""
    out = np.rot90(image, k=g % 4, axes=(0, 1))
    if g >= 4:
        out = out[:, ::-1]
    return out


def d4_torch(batch, g: int):
    """Apply D4 element ``g`` to an (N, C, H, W) torch tensor (same convention as ``d4``)."""
    import torch

    out = torch.rot90(batch, k=g % 4, dims=(-2, -1))
    if g >= 4:
        out = torch.flip(out, dims=(-1,))
    return out


def crop(image: np.ndarray, size: int, dy: int = 0, dx: int = 0) -> np.ndarray:
    """A size x size crop whose centre is the image centre moved by (dy, dx) pixels."""
    h, w = image.shape[:2]
    top = (h - size) // 2 + dy
    left = (w - size) // 2 + dx
    if top < 0 or left < 0 or top + size > h or left + size > w:
        raise ValueError(f"a {size} x {size} crop shifted by ({dy}, {dx}) does not fit a {h} x {w} image")
    return image[top : top + size, left : left + size]


def augment(image: np.ndarray, g: int, dy: int, dx: int, size: int) -> np.ndarray:
    """One augmented copy: shifted crop, then D4 element ``g``."""
    return np.ascontiguousarray(d4(crop(image, size, dy, dx), g))


def draw_augmentations(n: int, max_shift: int, rng: np.random.Generator) -> np.ndarray:
    """(n, 3) int array of (g, dy, dx): a uniform D4 element and shifts in [-max_shift, max_shift]."""
    g = rng.integers(0, 8, size=n)
    shifts = rng.integers(-max_shift, max_shift + 1, size=(n, 2))
    return np.column_stack([g, shifts]).astype(np.int16)
