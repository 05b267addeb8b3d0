"""Inputs real skies hold, drawn for the tests and benchmarks of ``nightskynet.images.sources``.

Things that must not get a galaxy class: stars (faint to saturated, with diffraction spikes when
bright), double stars, satellite trails (one colour, or one line per band as SDSS's gri composites
show them), the spike of a bright star outside the frame running across the centre, a bleed column,
blank sky with faint stars off the centre, a sky gradient with nothing on it, pure noise, a
constant image. And galaxies made hard from the demo sky's real ones: zoomed in 3x so they fill the
frame, in the halo of a bright star just off a corner, on a sky gradient.

Light is drawn in linear units (sky 8-25, its noise 3-6), stretched as SDSS stretches its JPEGs (an asinh
stretch that keeps the colour, Lupton et al. 2004; the softening set so that stars drawn at the
demo images' own seeing are as large as the real stars in them), then written as a JPEG (quality
90, as the cutout service). Stars are Moffat profiles (beta 3) of 1.0-2.0" FWHM at the default
0.40"/px. Every function takes a numpy Generator, so a set is reproducible from its seed.
"""

from __future__ import annotations

import io
from typing import Callable

import numpy as np
from PIL import Image

SIZE = 120  # px, the default cutout
SCALE = 0.4  # arcsec/px, the default cutout
SOFTENING = 100.0  # the stretch's softening, in linear units
TOP = 10_000.0  # linear light that reaches 255
STAR_COLOURS = np.array([[1.3, 1.0, 0.7], [1.0, 1.0, 1.0], [0.8, 1.0, 1.3], [1.6, 1.0, 0.5]])  # r, g, b weights


def jpeg(rgb: np.ndarray, quality: int = 90) -> np.ndarray:
    """``rgb`` (floats, 0-255) through a JPEG, as the cutout service sends it."""
    buf = io.BytesIO()
    Image.fromarray(np.clip(np.round(rgb), 0, 255).astype(np.uint8)).save(buf, format="JPEG", quality=quality)
    with Image.open(io.BytesIO(buf.getvalue())) as im:
        return np.asarray(im.convert("RGB"))


def stretch(light: np.ndarray) -> np.ndarray:
    """Linear (H, W, 3) light -> 0..255: asinh of the total, colour kept, saturated pixels scaled to keep their colour."""
    total = light.mean(axis=-1, keepdims=True)
    scaled = np.arcsinh(np.maximum(total, 0) / SOFTENING) / np.arcsinh(TOP / SOFTENING)
    rgb = np.where(total > 0, light * scaled / np.maximum(total, 1e-9), 0.0)
    return 255 * rgb / np.maximum(rgb.max(axis=-1, keepdims=True), 1.0)


def sky(rng: np.random.Generator, n: int = SIZE, noise: float | None = None) -> np.ndarray:
    """Linear sky: a level of 8-25 (4-12 JPEG levels) and Gaussian noise of 3-6 (1.5-3 levels, as the demo images' sky)."""
    noise = rng.uniform(3.0, 6.0) if noise is None else noise
    return rng.uniform(8.0, 25.0) + rng.normal(0, noise, (n, n, 3))


def moffat(n: int, x0: float, y0: float, fwhm: float, beta: float = 3.0) -> np.ndarray:
    """A Moffat profile of unit sum centred on (x0, y0)."""
    alpha = fwhm / (2 * np.sqrt(2 ** (1 / beta) - 1))
    y, x = np.mgrid[:n, :n]
    p = (1 + ((x - x0) ** 2 + (y - y0) ** 2) / alpha**2) ** (-beta)
    return p / p.sum()


def star_light(rng: np.random.Generator, n: int, x0: float, y0: float, total: float, fwhm: float, spikes: bool = False) -> np.ndarray:
    """A star's linear light, with the four diffraction spikes of a bright one."""
    colour = STAR_COLOURS[rng.integers(len(STAR_COLOURS))]
    light = moffat(n, x0, y0, fwhm)[..., None] * total * colour
    if spikes:
        y, x = np.mgrid[:n, :n]
        for dx, dy in ((1, 0), (0, 1)):
            along = (x - x0) * dx + (y - y0) * dy
            across = (x - x0) * dy - (y - y0) * dx
            spike = np.exp(-0.5 * (across / (0.5 * fwhm / 2.355 + 0.4)) ** 2) / (1 + (np.abs(along) / (2 * fwhm)) ** 1.5)
            light += spike[..., None] * total * 2e-4 * colour
    return light


def seeing_px(rng: np.random.Generator) -> float:
    return rng.uniform(1.0, 2.0) / SCALE


def _render(light: np.ndarray) -> np.ndarray:
    return jpeg(stretch(light))


# ---- things that are not galaxies ------------------------------------------------------------


def star(rng: np.random.Generator, n: int = SIZE) -> np.ndarray:
    """A star at the centre, from faint to saturated (with spikes when very bright)."""
    light = sky(rng, n)
    total = 10 ** rng.uniform(3.0, 8.5)
    x0, y0 = n / 2 + rng.uniform(-2, 2, 2)
    return _render(light + star_light(rng, n, x0, y0, total, seeing_px(rng), spikes=total > 3e7))


def double_star(rng: np.random.Generator, n: int = SIZE, separation: tuple[float, float] = (1.0, 4.0)) -> np.ndarray:
    """Two stars ``separation`` FWHM apart about the centre, the second 0.2-1 times as bright."""
    light = sky(rng, n)
    fwhm = seeing_px(rng)
    angle = rng.uniform(0, np.pi)
    offset = 0.5 * rng.uniform(*separation) * fwhm * np.array([np.cos(angle), np.sin(angle)])
    centre = n / 2 + rng.uniform(-2, 2, 2)
    first = 10 ** rng.uniform(3, 7)
    light = (
        light
        + star_light(rng, n, *(centre + offset), first, fwhm)
        + star_light(rng, n, *(centre - offset), first * rng.uniform(0.2, 1.0), fwhm)
    )
    return _render(light)


def _line(n: int, x0: float, y0: float, angle: float, width_sigma: float, amplitude: float) -> np.ndarray:
    y, x = np.mgrid[:n, :n]
    across = (x - x0) * np.sin(angle) - (y - y0) * np.cos(angle)
    return amplitude * np.exp(-0.5 * (across / width_sigma) ** 2)


def trail(rng: np.random.Generator, n: int = SIZE) -> np.ndarray:
    """A satellite trail across the frame through (or within 3 px of) the centre, as thin as the seeing:
    one colour, or one line per band, parallel and offset (the filters see it at different times)."""
    light = sky(rng, n)
    angle = rng.uniform(0, np.pi)
    width = seeing_px(rng) / 2.355
    amplitude = 10 ** rng.uniform(1.5, 3.8)
    centre = n / 2 + rng.uniform(-3, 3, 2)
    if rng.random() < 0.5:
        light += _line(n, *centre, angle, width, amplitude)[..., None] * STAR_COLOURS[rng.integers(len(STAR_COLOURS))]
    else:
        for band, offset in enumerate(rng.uniform(-6, 6, 3)):
            at = centre + offset * np.array([np.sin(angle), -np.cos(angle)])
            light[..., band] += _line(n, *at, angle, width, amplitude * 3)
    return _render(light)


def spike(rng: np.random.Generator, n: int = SIZE) -> np.ndarray:
    """The diffraction spike of a bright star 60-90 px beyond the centre on one axis, running across the centre."""
    light = sky(rng, n)
    off = rng.uniform(60, 90)
    if rng.random() < 0.5:
        x0, y0 = n / 2 + rng.uniform(-2, 2), n / 2 - off
    else:
        x0, y0 = n / 2 - off, n / 2 + rng.uniform(-2, 2)
    return _render(light + star_light(rng, n, x0, y0, 10 ** rng.uniform(7.5, 8.5), seeing_px(rng), spikes=True))


def bleed(rng: np.random.Generator, n: int = SIZE) -> np.ndarray:
    """A saturated CCD column from a bright star above the frame, ending 5-50 px below the centre."""
    light = sky(rng, n)
    x0 = n / 2 + rng.uniform(-2, 2)
    y, x = np.mgrid[:n, :n]
    column = np.exp(-0.5 * ((x - x0) / rng.uniform(0.6, 1.5)) ** 2) * 10 ** rng.uniform(4.0, 5.0)
    column *= y < n / 2 + rng.uniform(5, 50)
    return _render(light + column[..., None] * np.ones(3))


def blank(rng: np.random.Generator, n: int = SIZE) -> np.ndarray:
    """Empty sky of any noise, with up to three faint stars more than 25 px from the centre."""
    light = sky(rng, n, noise=rng.uniform(1.0, 8.0))
    for _ in range(rng.integers(0, 4)):
        x0, y0 = rng.uniform(0, n, 2)
        if np.hypot(x0 - n / 2, y0 - n / 2) > 25:
            light = light + star_light(rng, n, x0, y0, 10 ** rng.uniform(3.0, 5.0), 3.5)
    return _render(light)


def gradient_sky(rng: np.random.Generator, n: int = SIZE) -> np.ndarray:
    """Nothing but sky rising by 10-80 levels across the frame (scattered light)."""
    light = sky(rng, n)
    y, x = np.mgrid[:n, :n] / n
    angle = rng.uniform(0, 2 * np.pi)
    ramp = (x * np.cos(angle) + y * np.sin(angle)) * rng.uniform(10, 80)
    return jpeg(stretch(light) + ramp[..., None])


def noise(rng: np.random.Generator, n: int = SIZE) -> np.ndarray:
    """Uniform random pixels (a corrupt or encrypted file decoded as an image)."""
    return rng.integers(0, 256, (n, n, 3)).astype(np.uint8)


def constant(rng: np.random.Generator, n: int = SIZE) -> np.ndarray:
    """One grey level everywhere."""
    return np.full((n, n, 3), rng.integers(0, 256), np.uint8)


NOT_GALAXIES: dict[str, Callable[[np.random.Generator], np.ndarray]] = {
    "star": star,
    "double_star": double_star,
    "trail": trail,
    "spike": spike,
    "bleed": bleed,
    "blank": blank,
    "gradient_sky": gradient_sky,
    "noise": noise,
    "constant": constant,
}
# what each must be called (a spike's centre holds no source, so no_source is right for it too)
EXPECTED = {
    "star": {"point_source"},
    "double_star": {"point_source"},
    "trail": {"artefact"},
    "spike": {"artefact", "no_source"},
    "bleed": {"artefact"},
    "blank": {"no_source"},
    "gradient_sky": {"no_source"},
    "noise": {"no_source"},
    "constant": {"no_source"},
}


# ---- galaxies made hard ----------------------------------------------------------------------


def cutout(stored: Image.Image, n: int = SIZE) -> np.ndarray:
    """A demo galaxy's stored image as the default cutout (the whole image resampled)."""
    return np.asarray(stored.convert("RGB").resize((n, n), Image.Resampling.LANCZOS))


def zoomed(stored: Image.Image, factor: float = 3.0, n: int = SIZE) -> np.ndarray:
    """The stored image's central 1/factor resampled to n px: the galaxy fills the frame."""
    w = stored.size[0]
    half = w / factor / 2
    box = (w / 2 - half, w / 2 - half, w / 2 + half, w / 2 + half)
    return np.asarray(stored.convert("RGB").resize((n, n), Image.Resampling.LANCZOS, box=box))


def in_star_halo(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A bright saturated star just beyond a corner, its halo and spikes across the field (added as light adds)."""
    n = image.shape[0]
    corner = rng.integers(4)
    x0 = (-10 if corner % 2 == 0 else n + 10) + rng.uniform(-5, 5)
    y0 = (-10 if corner < 2 else n + 10) + rng.uniform(-5, 5)
    light = stretch(star_light(rng, n, x0, y0, 10 ** rng.uniform(7.0, 8.8), seeing_px(rng), spikes=True))
    return jpeg(255 - (255 - image.astype(float)) * (255 - light) / 255)


def on_gradient(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The sky rising by 20-60 levels across the frame."""
    n = image.shape[0]
    y, x = np.mgrid[:n, :n] / n
    angle = rng.uniform(0, 2 * np.pi)
    ramp = (x * np.cos(angle) + y * np.sin(angle) - 0.5) * 2
    return jpeg(image.astype(float) + rng.uniform(20, 60) * (ramp[..., None] + 1) / 2 * np.array([1.0, 0.9, 0.8]))


HARD_GALAXIES: dict[str, Callable[[Image.Image, np.random.Generator], np.ndarray]] = {
    "zoomed_3x": lambda stored, rng: zoomed(stored),
    "in_star_halo": lambda stored, rng: in_star_halo(cutout(stored), rng),
    "sky_gradient": lambda stored, rng: on_gradient(cutout(stored), rng),
}
