"""Figures: matplotlib without a display, saved atomically as PNG."""

from __future__ import annotations

import base64
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from .files import atomic_path  # noqa: E402


def save_figure(fig, path: str | Path) -> None:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)


def png_data_uri(path: str | Path) -> str:
    """A PNG file as a data URI, to embed in a self-contained page."""
    return "data:image/png;base64," + base64.b64encode(Path(path).read_bytes()).decode()
