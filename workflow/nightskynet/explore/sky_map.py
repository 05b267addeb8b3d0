"""The catalog on the sky, for the explorer: a density map coloured by the network's class, and where it lies on the
image, so that a click can be turned back into a position.

The map is a plate carree of the catalog's own footprint (right ascension increasing to the left, as on the sky),
its galaxies binned: a bin's colour is the mix of its classified galaxies' classes, its brightness the logarithm of
how many galaxies it holds (grey where none is classified). Drawn once when the explorer starts.
"""

from __future__ import annotations

import io

import numpy as np

from ..analysis.figures import plt
from ..core.vocabulary import CLASS_COLOURS, CLASS_LABELS, CLASS_NAMES

WIDTH, HEIGHT, DPI = 11.0, 5.6, 100  # inches, and pixels per inch: an 1100 x 560 image


class SkyMap:
    def __init__(self, data, bins: int | None = None):
        ra, dec = data.ra, data.dec
        pad_ra, pad_dec = max(0.5, 0.03 * np.ptp(ra)), max(0.5, 0.05 * np.ptp(dec))
        self.ra_range = (max(0.0, ra.min() - pad_ra), min(360.0, ra.max() + pad_ra))
        self.dec_range = (max(-90.0, dec.min() - pad_dec), min(90.0, dec.max() + pad_dec))
        span_ra, span_dec = np.ptp(self.ra_range), np.ptp(self.dec_range)
        nx = bins or int(np.clip(4 * np.sqrt(data.n), 60, 360))  # bins across: fewer for a sparse catalog, so a galaxy shows
        ny = max(20, int(round(nx * span_dec / max(span_ra, 1e-6))))
        edges = (np.linspace(*self.dec_range, ny + 1), np.linspace(*self.ra_range, nx + 1))
        total, _, _ = np.histogram2d(dec, ra, bins=edges)
        rgb = np.zeros((ny, nx, 3))
        counted = np.zeros((ny, nx))
        for c in CLASS_NAMES:
            mine = data.predicted == c
            h, _, _ = np.histogram2d(dec[mine], ra[mine], bins=edges)
            rgb += h[..., None] * np.array(_rgb(CLASS_COLOURS[c]))
            counted += h
        with np.errstate(invalid="ignore", divide="ignore"):
            mix = np.where(counted[..., None] > 0, rgb / counted[..., None], 0.6)
            level = np.log1p(total) / max(np.log1p(total.max()), 1e-9)
        image = np.where(total[..., None] > 0, 1 - (1 - mix) * (0.35 + 0.65 * level[..., None]), 1.0)
        fig = plt.figure(figsize=(WIDTH, HEIGHT), dpi=DPI)
        ax = fig.add_axes((0.06, 0.1, 0.8, 0.8))
        ax.imshow(
            image[:, ::-1],
            origin="lower",
            aspect="auto",
            extent=(self.ra_range[1], self.ra_range[0], *self.dec_range),
            interpolation="nearest",
        )
        ax.set_xlabel("right ascension (degrees, east to the left)")
        ax.set_ylabel("declination (degrees)")
        ax.set_title(
            f"{data.n:,} galaxies, coloured by the network's class (brighter: more galaxies); click to list those near a point", fontsize=10
        )
        for c in CLASS_NAMES:
            ax.scatter([], [], s=40, c=CLASS_COLOURS[c], label=CLASS_LABELS[c])
        ax.scatter([], [], s=40, c="#999999", label="no class")
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi=DPI)
        plt.close(fig)
        self.png = buffer.getvalue()
        left, bottom, width, height = ax.get_position().bounds
        w, h = WIDTH * DPI, HEIGHT * DPI
        # where the axes lie on the image, in pixels from its top left, and the positions at their edges
        self.box = {
            "left": left * w,
            "top": (1 - bottom - height) * h,
            "width": width * w,
            "height": height * h,
            "image_width": w,
            "image_height": h,
            "ra_left": self.ra_range[1],
            "ra_right": self.ra_range[0],
            "dec_top": self.dec_range[1],
            "dec_bottom": self.dec_range[0],
            "radius": round(float(min(36_000.0, max(0.05, 3600 * span_ra / nx * 2))), 1),  # arcsec: two bins, at most 10 degrees
        }


def _rgb(colour: str) -> tuple[float, float, float]:
    return tuple(int(colour[i : i + 2], 16) / 255 for i in (1, 3, 5))
