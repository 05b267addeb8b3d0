"""What the centre of a cutout holds: a galaxy, or something that must not be given a galaxy class.

The network answers one of four galaxy classes for any pixels it is shown, a star or a satellite
trail included. Every image is therefore inspected first, with the field's source extractor (sep,
SExtractor's algorithms as a library), and only a galaxy at the centre is classified:

* ``no_source``: no light at the centre above the local sky (blank sky, noise, a constant image);
* ``point_source``: the source at the centre is as small and round as a star at the cutout's
  seeing (``SEEING_ARCSEC`` over the pixel scale), alone or with other point sources (a double
  star), or a saturated star: a round saturated core at the centre with light no wider than a star
  of that core's brightness throws;
* ``artefact``: the light at the centre belongs to no source of its own: a line across the frame
  (a satellite trail, a bleed column) or the halo and spikes of a bright star off the centre;
* ``galaxy``: anything else with light at the centre. Every doubt goes this way: a galaxy wrongly
  refused is missing from the catalog, which is worse than a star that gets a class.

How it looks:

1. The noise from the differences of neighbouring pixels (blind to gradients and extended light).
2. The sky: a mesh of ``n / 4`` pixels (sep.Background), first plain, then with every source found
   on it masked, so a galaxy filling the frame, a gradient or a bright star's halo is not taken for
   sky or for a source; where the sources cover nearly all of the frame, the median of what is left.
3. The sources, sep.extract at 3 sigma with and without deblending; the central source is the one
   covering the centre pixel (or most of the pixels within ``0.05 n`` of it).
4. The decision above, on its shape (second moments, the azimuthal median profile around its peak,
   its saturated pixels) against the point-spread function, and on whether a local maximum of its
   own lies near the centre (its prominence over the saddle to brighter ground, measured on the sky
   of step 2 and on a finer one of ``n / 8`` pixels that follows halos).

The rules' figures were set on the 1,500 demo galaxies and on hard cases made from them (zoomed to
fill the frame, in a bright star's halo, on a sky gradient), against stars, double stars, trails,
spikes, bleeds, blank and noisy skies (``tests/sky_cases.py``); ``benchmarks/source_check.py``
measures them (docs/benchmarks.md, "What is at the centre").
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import sep
from scipy import ndimage as ndi

from ..core.vocabulary import NOT_A_GALAXY
from ..core.vocabulary import STATUSES as STATUSES_OF_TABLES

SEEING_ARCSEC = 1.4  # SDSS's median r-band seeing (FWHM)
TYPICAL_PETRO_R90_ARCSEC = 4.73  # the demo sky's galaxies; for adaptive cutouts of images with no known radius

STATUSES = ("galaxy", *NOT_A_GALAXY)
REASONS = {status: STATUSES_OF_TABLES[status] for status in NOT_A_GALAXY}

DETECT_SIGMA = 3.0  # sep.extract threshold, in noise sigmas
MIN_AREA = 5  # pixels
DEBLEND_CONTRAST = 0.0005  # sep: a branch with this share of its parent's light is a source of its own (two touching stars)
DEBLEND_LEVELS = 32
DOUBLE_STAR_SIZE = 3.0  # a blend larger than this many PSF FWHMs (second-moment a) is not one or two stars
SIGNIFICANT = 5.0  # a peak or the light at the centre, in sigmas of the PSF-smoothed image
# JPEG noise is correlated: through the PSF kernel it stays 2.6 times what white noise would (median of the demo
# images' sky pixels: 0.49 sigma at 3.5 px, against 0.19 for white noise)
JPEG_NOISE_CORRELATION = 2.6
SATURATED = 250  # a pixel whose brightest channel reaches this is saturated
MIN_SATURATED = 4  # pixels of a saturated core
PROMINENCE = 0.15  # a source's own peak rises this share of its height over the saddle to brighter ground
# point sources
STAR_SIZE = 1.0  # second-moment semi-major axis, in PSF FWHMs (a star: 0.4 faint, up to ~1 bright)
STAR_PROFILE = 2.6  # where the azimuthal median falls to 10% of the peak, in PSF FWHMs
STAR_ELONGATION = 1.3  # a / b
# the radius of its area above DETECT_SIGMA, in PSF FWHMs, at most a + b x its peak's level above the sky (0-255): a
# brighter star spreads wider in the stretched image, a galaxy of the same peak wider still (its disc or envelope);
# the widest of 300 stars drawn at 1.0-2.0" seeing (tests/sky_cases.py) lie on this line
STAR_ISOPHOTE = (1.2, 0.0115)
SATURATED_STAR_PROFILE = 2.0  # saturated: 10% radius within this many (core radius + PSF FWHM)
ROUND_CORE = 20  # pixels a saturated core needs before its roundness is asked
# lines
LINE_ELONGATION = 4.0
LINE_REACH = 0.3  # of the frame, from the centre along its major axis, on both sides (a galaxy touching a neighbour: one side)
LINE_CONCENTRATION = 1.6  # mean light within 0.1 n of the centre over that beyond 0.25 n: a line is flat


@dataclass(frozen=True)
class Verdict:
    """What the centre of one image holds; ``status`` one of STATUSES, ``reason`` in words (empty for a galaxy),
    ``rule`` which of the rules decided it."""

    status: str
    rule: str = ""

    @property
    def is_galaxy(self) -> bool:
        return self.status == "galaxy"

    @property
    def reason(self) -> str:
        return REASONS.get(self.status, "")


GALAXY = Verdict("galaxy", "a source of its own at the centre, not a star or a line")


def psf_fwhm_px(geometry: dict, petro_r90: float | None = None) -> float:
    """The seeing in pixels of a cutout of ``geometry`` (fixed: its scale; adaptive: the galaxy's radius times adaptive_k)."""
    if geometry["scale_mode"] == "fixed":
        scale = float(geometry["scale"])
    else:
        radius = petro_r90 if petro_r90 is not None and np.isfinite(petro_r90) and petro_r90 > 0 else TYPICAL_PETRO_R90_ARCSEC
        scale = float(geometry["adaptive_k"]) * radius
    return SEEING_ARCSEC / scale


def inspect(rgb: np.ndarray, psf_fwhm: float) -> Verdict:
    """What the centre of an (H, W, 3) uint8 cutout holds (the whole cutout, before cropping).

    A cutout refused as holding no source, or only an artefact, is looked at once more on a finer
    sky (a mesh of n / 8 px, which follows a bright star's halo across a galaxy); a galaxy found
    there, ending inside the frame, is a galaxy.
    """
    first = _Inspection(rgb, psf_fwhm).verdict()
    if first.status in ("no_source", "artefact"):
        again = _Inspection(rgb, psf_fwhm, fine_sky=True)
        if again.verdict().is_galaxy and again.central_is_bounded():
            return Verdict("galaxy", "a source of its own at the centre on a finer sky")
    return first


def inspect_many(images: np.ndarray, psf_fwhm: float | np.ndarray) -> list[Verdict]:
    """``inspect`` of each of (N, H, W, 3) images; ``psf_fwhm`` one value or one per image."""
    psf = np.broadcast_to(np.asarray(psf_fwhm, dtype=float), (len(images),))
    return [inspect(image, p) for image, p in zip(images, psf, strict=True)]


# ---- measuring -------------------------------------------------------------------------------


def _robust(values: np.ndarray, iterations: int = 5) -> tuple[float, float]:
    """(median, standard deviation) of ``values`` after clipping at 3 sigma (sigma from the MAD)."""
    v = values.ravel()
    for _ in range(iterations):
        med = np.median(v)
        mad = 1.4826 * np.median(np.abs(v - med))
        keep = np.abs(v - med) <= 3.0 * max(mad, 1e-6)
        if keep.all():
            break
        v = v[keep]
    return float(np.median(v)), float(v.std())


def _median_of_integers(values: np.ndarray) -> float:
    """np.median of an integer array, from its histogram (the values of a cutout span a few hundred levels: 10x faster)."""
    low = int(values.min())
    cumulative = np.cumsum(np.bincount(values - low))
    n = len(values)
    lower, upper = np.searchsorted(cumulative, [(n - 1) // 2 + 1, n // 2 + 1])
    return low + (int(lower) + int(upper)) / 2


def _noise(levels: np.ndarray) -> float:
    """Pixel noise from neighbouring-pixel differences (a gradient or extended light does not count): their MAD.

    ``levels``: the sum of the three channels (integers, 3 x the grey image), so the medians are of integers."""
    d = np.diff(levels.astype(np.int32), axis=1).ravel()
    twice_median = int(round(2 * _median_of_integers(d)))
    mad = _median_of_integers(np.abs(2 * d - twice_median)) / 2 / 3  # in grey levels
    return max(float(1.4826 * mad / np.sqrt(2.0)), 1.0)  # at least one JPEG level: smaller steps are the JPEG's quantisation


def _dilated(mask: np.ndarray, iterations: int) -> np.ndarray:
    """``ndi.binary_dilation(mask, iterations=...)`` with its default cross, as array shifts (9x faster on a cutout)."""
    out = mask
    for _ in range(iterations):
        grown = out.copy()
        grown[1:] |= out[:-1]
        grown[:-1] |= out[1:]
        grown[:, 1:] |= out[:, :-1]
        grown[:, :-1] |= out[:, 1:]
        out = grown
    return out


def _local_maxima(image: np.ndarray) -> np.ndarray:
    """``image == ndi.maximum_filter(image, size=3)`` (its reflected edges: the pixels beyond the frame ignored), as two
    separable passes of array maxima (3x faster on a cutout)."""
    padded = np.pad(image, 1, mode="edge")
    rows = np.maximum(np.maximum(padded[:, :-2], padded[:, 1:-1]), padded[:, 2:])
    return image == np.maximum(np.maximum(rows[:-2], rows[1:-1]), rows[2:])


def _pixels_by_label(seg: np.ndarray, count: int, top: int = 0, left: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    """(ys, xs) of the pixels of each label 1..count of a segmentation map, in row-major order, offset by (top, left):
    one pass over the map instead of one per label."""
    ys, xs = np.nonzero(seg)
    labels = seg[ys, xs]
    order = np.argsort(labels, kind="stable")
    bounds = np.searchsorted(labels[order], np.arange(1, count + 2))
    return [(ys[order[bounds[j] : bounds[j + 1]]] + top, xs[order[bounds[j] : bounds[j + 1]]] + left) for j in range(count)]


@lru_cache(maxsize=8)
def _radius_grid(h: int, w: int) -> np.ndarray:
    """Distance of each pixel from the centre of an (h, w) image (read-only, shared by every image of that shape)."""
    yy, xx = np.mgrid[:h, :w]
    radius = np.hypot(yy - (h - 1) / 2, xx - (w - 1) / 2)
    radius.flags.writeable = False
    return radius


def _sky(grey: np.ndarray, sigma: float, fine: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """(the sky under each pixel, the mask of the pixels that hold sources); a mesh of n / 4 px, or n / 8 when ``fine``."""
    n = min(grey.shape)
    box = max(8, n // (8 if fine else 4))
    plain = sep.Background(grey, bw=box, bh=box, fw=1, fh=1).back()
    _, seg = _extract(np.ascontiguousarray(grey - plain), sigma)
    mask = _dilated(seg > 0, 3)
    free = 1.0 - mask.mean()
    if free > 0.3:
        return sep.Background(grey, mask=mask, bw=box, bh=box, fw=1, fh=1).back(), mask
    level = np.median(grey[~mask]) if free > 0.02 else np.percentile(grey, 2)
    return np.full_like(grey, level), mask


def _extract(data: np.ndarray, sigma: float, deblend_nthresh: int = 1, deblend_cont: float = 1.0):
    """sep.extract at DETECT_SIGMA with its segmentation map; no deblending unless asked (one threshold: with 32
    levels and nothing to deblend it costs 7 times as long). Its pixel stack is sized to the image (no more pixels
    than it has can be above the threshold; twice that when deblending): the default 300,000 makes every call
    allocate for a much larger one, and sep's time grows with it. (sep stops when the stack is full, so a frame
    that is all above the threshold needs more than its own size.)"""
    sep.set_extract_pixstack(max(20_000, 2 * data.size) if deblend_nthresh > 1 else data.size + 1024)
    return sep.extract(
        data, DETECT_SIGMA, err=sigma, minarea=MIN_AREA, segmentation_map=True, deblend_nthresh=deblend_nthresh, deblend_cont=deblend_cont
    )


def _elongation(ys: np.ndarray, xs: np.ndarray) -> float:
    """a / b of a set of pixels, from their second moments."""
    eigen = np.linalg.eigvalsh(np.cov(np.vstack([xs, ys]).astype(float)) + 1e-3 * np.eye(2))
    return float(np.sqrt(eigen[1] / eigen[0]))


def _central_label(seg: np.ndarray, radius: np.ndarray, within: float, centre: tuple[int, int]) -> int | None:
    """Index of the object covering ``centre``, or covering most pixels within ``within`` of it; None if none."""
    k = int(seg[centre]) - 1
    if k >= 0:
        return k
    ids = seg[(radius <= within) & (seg > 0)]
    return int(np.bincount(ids).argmax()) - 1 if len(ids) else None


def _is_prominent(smooth: np.ndarray, y: int, x: int, floor: float, ridge: float, needed: float) -> bool:
    """Whether the local maximum at (y, x) rises at least ``needed`` over the highest level at which it joins higher
    ground (and over ``floor``); never on a ridge. Its prominence is at least ``needed`` exactly when, cut at
    ``needed`` below the peak, its island holds no higher ground: one labelling of the image, not a search for the
    saddle."""
    h = smooth[y, x]
    level = h - needed
    if level < floor:
        return False
    # the flat top it stands on, looked for in a window: one that reaches the window's edge is longer than the ridge
    reach = int(ridge) + 2
    window = (slice(max(0, y - reach), y + reach + 1), slice(max(0, x - reach), x + reach + 1))
    top = smooth[window]
    labels, _ = ndi.label(top >= h - 1e-3)
    ys, xs = np.nonzero(labels == labels[y - window[0].start, x - window[1].start])
    if max(np.ptp(ys), np.ptp(xs)) > ridge:
        return False  # a flat top a quarter of the frame long: a saturated line, not a peak
    if not (smooth > h + 1e-3).any():
        return True
    labels, _ = ndi.label(smooth > level)
    return not (smooth[labels == labels[y, x]] > h + 1e-3).any()


@dataclass
class _Source:
    """One sep object and what the rules ask of it."""

    a: float
    b: float
    peak: tuple[float, float]  # (y, x) of its brightest pixel
    peak_offset: float  # px from the centre of the image to its brightest pixel
    n_saturated: int
    saturated_offset: float  # px from the centre to its saturated pixels' centroid (inf when none)
    concentration: float
    edges: int  # frame edges its pixels touch
    extent: float  # px
    box: tuple[int, int, int, int]  # top, left, bottom, right (exclusive)
    reach: tuple[float, float]  # px from the centre to its farthest pixel along its major axis, either way
    isophote_radius: float  # px: the radius of a disc of its area
    ys: np.ndarray  # its pixels' rows and columns, in row-major order
    xs: np.ndarray

    @property
    def elongation(self) -> float:
        return self.a / max(self.b, 1e-6)

    @property
    def saturated(self) -> bool:
        return self.n_saturated >= MIN_SATURATED

    def is_line(self, n: int) -> bool:
        """Long, thin and flat, running through the centre: both of its ends LINE_REACH of the frame away from it."""
        return self.elongation >= LINE_ELONGATION and min(self.reach) >= LINE_REACH * n and self.concentration < LINE_CONCENTRATION


class _Inspection:
    def __init__(self, rgb: np.ndarray, psf_fwhm: float, fine_sky: bool = False):
        if rgb.ndim != 3 or rgb.shape[2] != 3:
            raise ValueError(f"inspect needs an (H, W, 3) image, not {rgb.shape}")
        self.rgb = rgb
        self.psf = float(psf_fwhm)
        red, green, blue = (rgb[..., c] for c in range(3))
        levels = red.astype(np.int16) + green + blue  # the channels' sum, an integer
        self.grey = levels.astype(np.float32) / np.float32(3)  # the channels' mean, as rgb.mean(axis=-1) in float32
        self.n = min(self.grey.shape)
        self.sigma = _noise(levels)
        sky, _ = _sky(self.grey, self.sigma, fine_sky)
        self.data = np.ascontiguousarray(self.grey - sky)
        h, w = self.grey.shape
        self.cy, self.cx = (h - 1) / 2, (w - 1) / 2
        self.radius = _radius_grid(h, w)
        self.saturated = np.maximum(np.maximum(red, green), blue) >= SATURATED
        self.near = 0.1 * self.n  # how far from the centre a source's own peak may lie
        self._parent: _Source | None = None
        self._smooth_data: tuple[np.ndarray, float] | None = None

    # -- the decision
    def verdict(self) -> Verdict:
        if not self._light_at_centre():
            return Verdict("no_source", "no light at the centre above the sky")
        parent = self._parent = self._central_blend()
        if parent is None:
            return Verdict("no_source", "no source detected at the centre")
        if parent.is_line(self.n):
            return Verdict("artefact", "a line across the frame")
        if self._saturated_line():
            return Verdict("artefact", "a saturated line through the centre (a bleed)")
        if not self._own_peak() and self._lit_from_outside(parent):
            return Verdict("artefact", "no peak of its own at the centre, lit from beyond it")
        if self._may_be_stars(parent) and self._stars_only(parent):
            return Verdict("point_source", "point sources only, the central one a star")
        return GALAXY

    def _smoothed(self, image: np.ndarray) -> tuple[np.ndarray, float]:
        """``image`` smoothed by the PSF, and the noise of that smoothed image (from the pixel noise: halos and
        gradients left in the sky pixels would inflate a direct measure)."""
        kernel = self.psf / 2.355
        return ndi.gaussian_filter(image, kernel), JPEG_NOISE_CORRELATION * self.sigma / (2 * np.sqrt(np.pi) * kernel)

    def central_is_bounded(self) -> bool:
        """The central source, deblended from what it touches, ends inside the frame within half its width (a halo's
        or a spike's remains do not)."""
        if self._parent is None:
            return False
        found = self._deblended(self._parent)
        return found is not None and found[0].edges == 0 and found[0].extent <= 0.5 * self.n

    def _smoothed_data(self) -> tuple[np.ndarray, float]:
        """``_smoothed(self.data)``, computed once."""
        if self._smooth_data is None:
            self._smooth_data = self._smoothed(self.data)
        return self._smooth_data

    def _light_at_centre(self) -> bool:
        smooth, spread = self._smoothed_data()
        return smooth[self.radius <= max(3.0, 0.05 * self.n)].mean() >= SIGNIFICANT * spread

    def _central_blend(self) -> _Source | None:
        """The connected light above DETECT_SIGMA that covers the centre (or most of the pixels within 0.05 n of it)."""
        blends, seg = _extract(self.data, self.sigma)
        k = _central_label(seg, self.radius, max(3.0, 0.05 * self.n), (int(round(self.cy)), int(round(self.cx))))
        return None if k is None else self._describe(blends[k], *np.nonzero(seg == k + 1))

    def _saturated_line(self) -> bool:
        """Saturated pixels near the centre that belong to a long thin run (a bleed column), not a round core."""
        core = self._saturated_core()
        if core is None or len(core[0]) < MIN_SATURATED:
            return False
        ys, xs = core
        return max(np.ptp(ys), np.ptp(xs)) + 1 >= 0.25 * self.n and _elongation(ys, xs) >= LINE_ELONGATION

    def _saturated_core(self) -> tuple[np.ndarray, np.ndarray] | None:
        """(ys, xs) of the connected saturated pixels with most pixels within ``near`` of the centre; None if none."""
        if not self.saturated[self.radius <= self.near].any():
            return None  # nothing saturated near the centre (most images): no labelling of the frame
        labels, _ = ndi.label(self.saturated)
        ids = labels[(self.radius <= self.near) & (labels > 0)]
        if not len(ids):
            return None
        return np.nonzero(labels == np.bincount(ids).argmax())

    def _lit_from_outside(self, blend: _Source) -> bool:
        """Light at the centre with no peak of its own, from a bright star (saturated pixels away from the centre) or
        brightening away from the centre (something beyond it); a galaxy whose brighter nucleus lies off the centre
        (a merger) is neither."""
        return blend.saturated_offset > self.near or blend.concentration < 1.0

    def _may_be_stars(self, blend: _Source) -> bool:
        """Small enough to be a star or two (DOUBLE_STAR_SIZE PSFs), or saturated near the centre: worth deblending."""
        return blend.a <= DOUBLE_STAR_SIZE * self.psf or blend.saturated_offset <= self.near

    def _stars_only(self, blend: _Source) -> bool:
        """The blend, deblended, is point sources (and lines, a star's spikes or bleed) and its central one a star."""
        found = self._deblended(blend)
        if found is None:
            return False
        central, others = found
        return self._stellar(central) and all(self._stellar(p) or p.is_line(self.n) for p in others)

    def _deblended(self, blend: _Source) -> tuple[_Source, Iterator[_Source]] | None:
        """(the part of ``blend`` at the centre, its other parts, described as they are asked for), deblended by sep within
        the blend's box; None if none."""
        top, left, bottom, right = blend.box
        inside = np.zeros((bottom - top, right - left), dtype=bool)
        inside[blend.ys - top, blend.xs - left] = True
        data = np.ascontiguousarray(np.where(inside, self.data[top:bottom, left:right], 0.0))
        objects, seg = _extract(data, self.sigma, deblend_nthresh=DEBLEND_LEVELS, deblend_cont=DEBLEND_CONTRAST)
        if not len(objects):
            return None
        full = np.zeros(self.data.shape, dtype=seg.dtype)
        full[top:bottom, left:right] = seg
        centre = (int(round(self.cy)), int(round(self.cx)))
        k = _central_label(full, self.radius, max(3.0, 0.05 * self.n), centre)
        if k is None:
            return None
        objects = objects.copy()
        objects["x"] += left
        objects["y"] += top
        objects["xpeak"] += left
        objects["ypeak"] += top
        pixels = _pixels_by_label(seg, len(objects), top, left)
        others = (self._describe(objects[j], *pixels[j]) for j in range(len(objects)) if j != k)
        return self._describe(objects[k], *pixels[k]), others

    def _describe(self, obj, ys: np.ndarray, xs: np.ndarray) -> _Source:
        """The sep object ``obj`` whose pixels are (ys, xs), in row-major order."""
        r = self.radius[ys, xs]
        values = self.data[ys, xs]
        inner, outer = values[r <= 0.1 * self.n], values[r >= 0.25 * self.n]
        concentration = inner.mean() / max(outer.mean(), 1e-3) if len(inner) and len(outer) else np.inf
        sat = self.saturated[ys, xs]
        h, w = self.grey.shape
        top, bottom, left, right = int(ys[0]), int(ys[-1]), int(xs.min()), int(xs.max())  # row-major: ys is sorted
        return _Source(
            a=float(obj["a"]),
            b=float(obj["b"]),
            peak=(float(obj["ypeak"]), float(obj["xpeak"])),
            peak_offset=float(np.hypot(obj["xpeak"] - self.cx, obj["ypeak"] - self.cy)),
            n_saturated=int(sat.sum()),
            saturated_offset=float(np.hypot(xs[sat].mean() - self.cx, ys[sat].mean() - self.cy)) if sat.any() else np.inf,
            concentration=float(concentration),
            edges=int(left == 0) + int(right == w - 1) + int(top == 0) + int(bottom == h - 1),
            extent=float(max(right - left, bottom - top) + 1),
            box=(top, left, bottom + 1, right + 1),
            reach=self._reach(obj, ys, xs),
            isophote_radius=float(np.sqrt(len(xs) / np.pi)),
            ys=ys,
            xs=xs,
        )

    def _reach(self, obj, ys: np.ndarray, xs: np.ndarray) -> tuple[float, float]:
        along = (xs - self.cx) * np.cos(obj["theta"]) + (ys - self.cy) * np.sin(obj["theta"])
        return float(max(along.max(), 0.0)), float(max(-along.min(), 0.0))

    def _own_peak(self) -> bool:
        """A local maximum of significant prominence within ``near`` of the centre, on this sky or on a finer one
        (measured only when this sky has none)."""
        if self._prominent_peak(*self._smoothed_data()):
            return True
        box = max(8, self.n // 8)
        fine = self.grey - sep.Background(self.grey, bw=box, bh=box, fw=1, fh=1).back()
        return self._prominent_peak(*self._smoothed(fine))

    def _prominent_peak(self, smooth: np.ndarray, spread: float) -> bool:
        peaks = _local_maxima(smooth) & (smooth >= SIGNIFICANT * spread) & (self.radius <= self.near)
        ridge = 0.25 * self.n
        return any(
            _is_prominent(smooth, y, x, 3.0 * spread, ridge, max(SIGNIFICANT * spread, PROMINENCE * smooth[y, x]))
            for y, x in zip(*np.nonzero(peaks), strict=True)
        )

    def _stellar(self, source: _Source) -> bool:
        if source.saturated:
            return self._saturated_star(source)
        return (
            source.elongation <= STAR_ELONGATION
            and source.a <= STAR_SIZE * self.psf
            and source.isophote_radius <= self.psf * (STAR_ISOPHOTE[0] + STAR_ISOPHOTE[1] * self._peak_level(source))
            and self._profile_radius(source) <= STAR_PROFILE * self.psf
        )

    def _peak_level(self, source: _Source) -> float:
        return float(self.data[int(source.peak[0]), int(source.peak[1])])

    def _saturated_star(self, source: _Source) -> bool:
        """A round saturated core at the centre, and light around it no wider than a star of that core throws."""
        if source.saturated_offset > self.near:
            return False
        core = self._saturated_core()
        if core is None or len(core[0]) < MIN_SATURATED:
            return False
        ys, xs = core
        if len(xs) >= ROUND_CORE and _elongation(ys, xs) > STAR_ELONGATION:  # a core of a few pixels has no shape to speak of
            return False
        core_radius = np.sqrt(len(xs) / np.pi)
        return self._profile_radius(source, (ys.mean(), xs.mean())) <= SATURATED_STAR_PROFILE * (core_radius + self.psf)

    def _profile_radius(self, source: _Source, centre: tuple[float, float] | None = None) -> float:
        """Where the azimuthal median of the light around ``centre`` (default the source's peak) falls to 10% of its peak."""
        cy, cx = centre if centre is not None else source.peak
        h, w = self.grey.shape
        yy, xx = np.mgrid[:h, :w]
        rings = np.hypot(yy - cy, xx - cx).astype(int).ravel()
        order = np.argsort(rings, kind="stable")
        rings, values = rings[order], self.data.ravel()[order]
        limit = self.n // 2
        bounds = np.searchsorted(rings, np.arange(limit + 1))
        profile = np.array([np.median(values[bounds[k] : bounds[k + 1]]) for k in range(limit)])
        top = profile[:3].max()
        below = np.flatnonzero(~(profile >= 0.1 * top))
        return float(below[0]) if len(below) else float(limit)
