"""Figures: matplotlib without a display, saved atomically as PNG."""

from __future__ import annotations

import base64
from pathlib import Path

import matplotlib
import numpy as np

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from ..core.files import atomic_path  # noqa: E402


def save_figure(fig, path: str | Path) -> None:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)


def png_data_uri(path: str | Path) -> str:
    """A PNG file as a data URI, to embed in a self-contained page."""
    return "data:image/png;base64," + base64.b64encode(Path(path).read_bytes()).decode()


def plot_gallery(images: np.ndarray, titles: list[str], path: str | Path, suptitle: str, columns: int = 4) -> None:
    """A grid of galaxy crops, each with its own (multi-line) title above it, rows spaced to fit them."""
    n = max(1, len(images))
    rows = (n + columns - 1) // columns
    lines = max((t.count("\n") + 1 for t in titles), default=1)
    fig, axes = plt.subplots(rows, columns, figsize=(2.6 * columns, (2.2 + 0.17 * lines) * rows + 0.4), squeeze=False, layout="constrained")
    for k, ax in enumerate(axes.ravel()):
        ax.axis("off")
        if k < len(images):
            ax.imshow(images[k])
            ax.set_title(titles[k], fontsize=7, linespacing=1.25)
    if not len(images):
        axes[0][0].text(0.0, 0.5, "none", fontsize=10)
    fig.suptitle(suptitle, fontsize=10)
    save_figure(fig, path)


def galaxy_caption(objid: int, ra: float, dec: float) -> str:
    """objid and position of a galaxy, for a panel a person can follow up."""
    return f"{objid}\nRA {ra:.5f}  Dec {dec:+.5f}"
