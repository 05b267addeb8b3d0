"""The report's own figures: the training curves, example galaxies of each class, the galaxies on the sky, and a
drawing of the network. The report stage saves them beside its page and shows them on it."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..core.vocabulary import CLASS_COLOURS, CLASS_LABELS, CLASS_NAMES
from ..images.cutouts import decode, read_chunks
from .figures import plt


def training_curves(history: pd.DataFrame):
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.8))
    axes[0].plot(history["epoch"], history["train_loss"], "o-", label="train")
    axes[0].plot(history["epoch"], history["val_loss"], "o-", label="validation")
    axes[0].set_ylabel("cross-entropy loss")
    axes[1].plot(history["epoch"], history["train_accuracy"], "o-", label="train")
    axes[1].plot(history["epoch"], history["val_accuracy"], "o-", label="validation")
    axes[1].set_ylabel("accuracy")
    for ax in axes:
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    return fig


def example_grid(labels: pd.DataFrame, chunk_tars: list[str], per_class: int, size: int, seed: int):
    """A row of real cutouts per class, from the confident galaxies."""
    rng = np.random.default_rng(seed)
    wanted: dict[str, list[int]] = {}
    confident = labels[labels["split"] != "uncertain"]
    for c in CLASS_NAMES:
        ids = confident.loc[confident["label"] == c, "objid"].to_numpy()
        wanted[c] = [int(i) for i in rng.permutation(ids)[: per_class * 3]]
    all_ids = {i for ids in wanted.values() for i in ids}
    found = {objid: decode(jpeg, size) for objid, jpeg in read_chunks(chunk_tars, all_ids).items()}
    fig, axes = plt.subplots(len(CLASS_NAMES), per_class, figsize=(1.4 * per_class, 1.55 * len(CLASS_NAMES)), squeeze=False)
    for r, c in enumerate(CLASS_NAMES):
        ids = [i for i in wanted[c] if i in found][:per_class]
        for k in range(per_class):
            ax = axes[r][k]
            ax.axis("off")
            if k < len(ids):
                ax.imshow(found[ids[k]])
        axes[r][0].set_title(CLASS_LABELS[c], loc="left", fontsize=10)
    fig.tight_layout()
    return fig


def sky_map(labels: pd.DataFrame, predicted: pd.DataFrame):
    """The galaxies on the sky: an all-sky Mollweide map (east left, right ascension in hours) and a
    close-up of the footprint; galaxies with a network class coloured by it, the test galaxies
    ringed, the others grey. ``predicted``: objid, predicted, is_test."""
    import astropy.units as u
    from astropy.coordinates import SkyCoord
    from matplotlib.lines import Line2D
    from matplotlib.ticker import FuncFormatter

    positions = labels.set_index("objid")[["ra", "dec"]]
    coords = SkyCoord(ra=positions["ra"].to_numpy() * u.deg, dec=positions["dec"].to_numpy() * u.deg, frame="icrs")
    mean_ra = np.degrees(np.arctan2(np.sin(coords.ra.radian).mean(), np.cos(coords.ra.radian).mean()))
    centre = (round(mean_ra / 15) * 15) % 360  # the map centred on the galaxies, at a whole hour of right ascension
    lon = -(coords.ra - centre * u.deg).wrap_at(180 * u.deg).radian  # east to the left, as on the sky
    lat = coords.dec.radian
    row = pd.Series(np.arange(len(positions)), index=positions.index)
    shown = predicted[predicted["objid"].isin(positions.index)]
    at = row[shown["objid"]].to_numpy()
    fig = plt.figure(figsize=(12, 5.2))
    ax_sky = fig.add_subplot(1, 2, 1, projection="mollweide")
    ax_zoom = fig.add_subplot(1, 2, 2)
    others = np.setdiff1d(np.arange(len(positions)), at)
    ra_near_centre = centre - np.degrees(lon)  # continuous across RA 0 for the close-up; labelled modulo 360
    for ax, x, y in ((ax_sky, lon, lat), (ax_zoom, ra_near_centre, positions["dec"].to_numpy())):
        ax.scatter(x[others], y[others], s=3, c="#c8c8c8", lw=0, label="no network class shown")
        for name in CLASS_NAMES:
            for is_test, size, edge in ((False, 9, "none"), (True, 26, "black")):
                pick = at[(shown["predicted"].to_numpy() == name) & (shown["is_test"].to_numpy() == is_test)]
                ax.scatter(x[pick], y[pick], s=size, c=CLASS_COLOURS[name], edgecolors=edge, linewidths=0.6)
        ax.grid(alpha=0.3)
    ticks = np.radians(np.arange(-150, 181, 30))
    ax_sky.set_xticks(ticks[:-1])
    ax_sky.set_xticklabels([])
    label_lat = np.radians(np.clip(np.degrees(lat.min()) - 10, -75, 60))  # right ascension labelled below the galaxies
    for t in ticks[1:-1]:
        ax_sky.text(t, label_lat, f"{round((centre - np.degrees(t)) % 360 / 15) % 24}h", fontsize=8, color="#555", ha="center", va="top")
    ax_sky.set_title("All sky (Mollweide, ICRS)", fontsize=10)
    ax_zoom.set_xlim(ax_zoom.get_xlim()[::-1])  # right ascension grows to the east, on the left
    ax_zoom.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v % 360:g}"))
    ax_zoom.set_aspect(1 / max(0.1, np.cos(np.radians(positions["dec"].median()))))
    ax_zoom.set_xlabel("right ascension (deg)")
    ax_zoom.set_ylabel("declination (deg)")
    ax_zoom.set_title("The survey area", fontsize=10)
    handles = [Line2D([], [], ls="", marker="o", ms=6, color=CLASS_COLOURS[c], label=CLASS_LABELS[c]) for c in CLASS_NAMES]
    handles += [
        Line2D([], [], ls="", marker="o", ms=7, color="white", markeredgecolor="black", label="test galaxy (ringed)"),
        Line2D([], [], ls="", marker="o", ms=4, color="#c8c8c8", label="trained on, or no cutout"),
    ]
    fig.legend(handles=handles, loc="lower center", ncol=6, frameon=False, fontsize=9, title="colour: the network's class")
    fig.subplots_adjust(left=0.04, right=0.98, top=0.92, bottom=0.2, wspace=0.15)
    return fig


def network_drawing(shapes: list[tuple[str, tuple[int, ...]]], input_size: int):
    """Boxes left to right, one per layer, height growing with the layer's size (log scale), its
    output shape under it and its name above, a dropout folded into the layer it follows."""
    items: list[tuple[str, tuple[int, ...]]] = [("input", (3, input_size, input_size))]
    for name, shape in shapes:
        if name.startswith("dropout") and items:
            items[-1] = (items[-1][0] + ", + " + name, items[-1][1])
        else:
            items.append((name, shape))
    items.append(("softmax", (4,)))
    fig, ax = plt.subplots(figsize=(max(8.0, 1.15 * len(items)), 3.6))
    sizes = [float(np.prod(shape)) for _, shape in items]
    lo, hi = np.log10(min(sizes)), np.log10(max(sizes))
    colours = {
        "conv": "#4c72b0",
        "max ": "#8fa8d8",
        "dens": "#dd8452",
        "maxo": "#c44e52",
        "inpu": "#55a868",
        "soft": "#55a868",
        "stem": "#4c72b0",
        "resi": "#64b5cd",
        "glob": "#8fa8d8",
    }
    for k, ((name, shape), size) in enumerate(zip(items, sizes, strict=True)):
        h = 0.35 + 1.6 * (np.log10(size) - lo) / max(1e-9, hi - lo)
        ax.add_patch(plt.Rectangle((k - 0.38, -h / 2), 0.76, h, color=colours.get(name[:4], "#999"), alpha=0.85))
        ax.text(k, -h / 2 - 0.12, " x ".join(str(v) for v in shape), ha="center", va="top", fontsize=7)
        label = name.replace("stem: ", "stem\n").replace(", ", "\n").replace(" (", "\n(")
        ax.text(k, h / 2 + 0.1, label, ha="center", va="bottom", fontsize=6.5, linespacing=1.15)
        if k:
            ax.annotate("", xy=(k - 0.4, 0), xytext=(k - 0.6, 0), arrowprops={"arrowstyle": "->", "color": "#444"})
    ax.set_xlim(-0.6, len(items) - 0.4)
    ax.set_ylim(-1.55, 2.25)
    ax.axis("off")
    fig.tight_layout()
    return fig
