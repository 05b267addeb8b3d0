"""The network against the volunteers, on every catalogued galaxy it never trained on.

The study's next step: compare the network's class probabilities with the human vote fractions on
the galaxies the humans were unsure of. ``Comparison`` does it on the whole catalog in one streamed
pass (memory: fixed-size sums and histograms, however many galaxies), over the galaxies of the
``NEVER_TRAINED_ON`` (test, uncertain, none: never trained or calibrated on) that were classified
and have at least one vote outside don't-know:

* per class: the network's probability binned by vote fraction (mean and standard deviation per
  bin, a 2-D histogram behind them), Pearson's r and the mean absolute difference;
* by number of votes: how the mean absolute difference and the top-class agreement change as a
  galaxy's vote fractions get less noisy;
* the galaxies where network and volunteers differ most, in any class, with their images.
"""

from __future__ import annotations

import heapq
from pathlib import Path

import numpy as np
import pandas as pd

from ..core.vocabulary import CLASS_LABELS, CLASS_NAMES, HUMAN_COLUMNS, NEVER_TRAINED_ON, PROB_COLUMNS
from ..images.cutouts import decode, read_chunks
from .figures import galaxy_caption, plot_gallery, plt, save_figure

FRACTION_BINS = 10  # bins of vote fraction for the binned means
HISTOGRAM_BINS = 25  # cells per axis of the 2-D histogram
NVOTE_EDGES = (0, 10, 20, 30, 40, 50, 60, 80, 100, 1_000_000)
SHOWN = 12  # largest disagreements drawn


class Comparison:
    """Streamed sums of network probability against vote fraction; ``add`` a block of catalog rows at a time."""

    def __init__(self) -> None:
        k, b = len(CLASS_NAMES), FRACTION_BINS
        self.n = 0
        self.sums = np.zeros((5, k))  # x, y, xx, yy, xy per class (Pearson's r)
        self.abs_diff = np.zeros(k)
        self.bin_n = np.zeros((k, b))
        self.bin_sum = np.zeros((k, b))
        self.bin_sumsq = np.zeros((k, b))
        self.histogram = np.zeros((k, HISTOGRAM_BINS, HISTOGRAM_BINS))
        m = len(NVOTE_EDGES) - 1
        self.nvote_n = np.zeros(m)
        self.nvote_abs = np.zeros(m)
        self.nvote_agree = np.zeros(m)
        self.agree = 0
        self.worst: list[tuple] = []  # min-heap of (gap, -objid, row) of the SHOWN largest gaps

    def add(self, block: pd.DataFrame) -> None:
        use = block[block["split"].isin(NEVER_TRAINED_ON) & (block["status"] == "classified") & block[HUMAN_COLUMNS[0]].notna()]
        if use.empty:
            return
        v = use[list(HUMAN_COLUMNS)].to_numpy(float)
        p = use[list(PROB_COLUMNS)].to_numpy(float)
        self.n += len(use)
        self.sums += np.stack([v.sum(0), p.sum(0), (v * v).sum(0), (p * p).sum(0), (v * p).sum(0)])
        diff = np.abs(p - v)
        self.abs_diff += diff.sum(0)
        cells = np.minimum((v * FRACTION_BINS).astype(int), FRACTION_BINS - 1)
        hx = np.minimum((v * HISTOGRAM_BINS).astype(int), HISTOGRAM_BINS - 1)
        hy = np.minimum((p * HISTOGRAM_BINS).astype(int), HISTOGRAM_BINS - 1)
        for c in range(len(CLASS_NAMES)):
            np.add.at(self.bin_n[c], cells[:, c], 1)
            np.add.at(self.bin_sum[c], cells[:, c], p[:, c])
            np.add.at(self.bin_sumsq[c], cells[:, c], p[:, c] ** 2)
            np.add.at(self.histogram[c], (hy[:, c], hx[:, c]), 1)
        agree = p.argmax(1) == v.argmax(1)
        self.agree += int(agree.sum())
        bins = np.searchsorted(NVOTE_EDGES, use["nvote"].to_numpy(), side="right") - 1
        np.add.at(self.nvote_n, bins, 1)
        np.add.at(self.nvote_abs, bins, diff.mean(1))
        np.add.at(self.nvote_agree, bins, agree)
        gap = diff.max(1)
        for i in np.argsort(-gap, kind="stable")[:SHOWN]:
            row = use.iloc[i]
            c = int(diff[i].argmax())
            item = (float(gap[i]), -int(row["objid"]), {
                "objid": int(row["objid"]), "ra": float(row["ra"]), "dec": float(row["dec"]), "split": row["split"],
                "nvote": int(row["nvote"]), "class": CLASS_NAMES[c], "human": round(float(v[i, c]), 3), "network": round(float(p[i, c]), 3),
            })  # fmt: skip
            if len(self.worst) < SHOWN:
                heapq.heappush(self.worst, item)
            elif item[:2] > self.worst[0][:2]:
                heapq.heapreplace(self.worst, item)

    def pearson(self) -> np.ndarray:
        sx, sy, sxx, syy, sxy = self.sums
        n = max(self.n, 1)
        cov = sxy / n - sx * sy / n**2
        var = (sxx / n - (sx / n) ** 2) * (syy / n - (sy / n) ** 2)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where((self.n > 2) & (var > 0), cov / np.sqrt(np.where(var > 0, var, 1.0)), np.nan)

    def binned(self) -> tuple[np.ndarray, np.ndarray]:
        """(mean, standard deviation) of the network's probability per class and vote-fraction bin (NaN where empty)."""
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = self.bin_sum / self.bin_n
            sd = np.sqrt(np.maximum(self.bin_sumsq / self.bin_n - mean**2, 0.0))
        return mean, sd

    def largest_disagreements(self) -> list[dict]:
        return [row for _, _, row in sorted(self.worst, key=lambda t: (-t[0], -t[1]))]

    def summary(self) -> dict:
        r, (mean, sd) = self.pearson(), self.binned()
        edges = np.linspace(0, 1, FRACTION_BINS + 1)

        def num(x, digits=4):
            return None if not np.isfinite(x) else round(float(x), digits)

        per_class = {
            name: {
                "pearson_r": num(r[c]),
                "mean_abs_diff": num(self.abs_diff[c] / self.n) if self.n else None,
                "binned": [
                    {
                        "vote_fraction": [round(edges[b], 2), round(edges[b + 1], 2)],
                        "n": int(self.bin_n[c, b]),
                        "mean": num(mean[c, b]),
                        "sd": num(sd[c, b]),
                    }
                    for b in range(FRACTION_BINS)
                ],  # fmt: skip
            }
            for c, name in enumerate(CLASS_NAMES)
        }
        by_nvote = [
            {
                "nvote": [NVOTE_EDGES[b], NVOTE_EDGES[b + 1] - 1 if b + 2 < len(NVOTE_EDGES) else None],
                "n": int(self.nvote_n[b]),
                "mean_abs_diff": num(self.nvote_abs[b] / self.nvote_n[b]) if self.nvote_n[b] else None,
                "top_class_agreement": num(self.nvote_agree[b] / self.nvote_n[b]) if self.nvote_n[b] else None,
            }
            for b in range(len(NVOTE_EDGES) - 1)
        ]
        return {
            "compared": int(self.n),
            "top_class_agreement": num(self.agree / self.n) if self.n else None,
            "per_class": per_class,
            "by_nvote": by_nvote,
            "largest_disagreements": self.largest_disagreements(),
        }


def plot_network_vs_votes(comparison: Comparison, path: str | Path, votes_note: str) -> None:
    """Per class: where the galaxies lie (2-D histogram), the binned mean of the network's probability with +-1 sd, the diagonal."""
    mean, sd = comparison.binned()
    r = comparison.pearson()
    centres = (np.arange(FRACTION_BINS) + 0.5) / FRACTION_BINS
    fig, axes = plt.subplots(2, 2, figsize=(11, 9.5))
    for c, (ax, name) in enumerate(zip(axes.ravel(), CLASS_NAMES, strict=True)):
        counts = comparison.histogram[c]
        shown = np.where(counts > 0, counts, np.nan)
        norm = "log" if counts.max(initial=0) > 1 else None
        image = ax.imshow(shown, origin="lower", extent=(0, 1, 0, 1), cmap="Greys", norm=norm)
        fig.colorbar(image, ax=ax, label="galaxies per cell", shrink=0.85)
        ok = comparison.bin_n[c] > 0
        label = "network, mean +- 1 sd per bin"
        ax.errorbar(centres[ok], mean[c, ok], yerr=sd[c, ok], fmt="o-", color="#1f77b4", ms=4, capsize=3, label=label)
        ax.plot([0, 1], [0, 1], color="#d62728", lw=1.2, ls="--", label="agreement")
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        ax.set_xlabel(f"vote fraction ({votes_note})")
        ax.set_ylabel("network probability")
        rc = "n/a" if not np.isfinite(r[c]) else f"{r[c]:.2f}"
        mad = comparison.abs_diff[c] / comparison.n if comparison.n else float("nan")
        ax.set_title(f"{CLASS_LABELS[name]}: r = {rc}, mean |diff| = {mad:.2f}", fontsize=10)
        ax.legend(fontsize=7, loc="upper left")
    fig.suptitle(f"Every catalogued galaxy the network never trained on (n = {comparison.n:,}): network vs volunteers")
    fig.tight_layout()
    save_figure(fig, path)


def plot_agreement_by_votes(comparison: Comparison, path: str | Path, votes_note: str) -> None:
    """Mean absolute difference and top-class agreement against the number of votes (bins holding galaxies only,
    each labelled with how many)."""
    ok = np.flatnonzero(comparison.nvote_n > 0)
    names = [f"{lo}-{hi - 1}" if hi < NVOTE_EDGES[-1] else f">= {lo}" for lo, hi in zip(NVOTE_EDGES[:-1], NVOTE_EDGES[1:], strict=True)]
    ticks = [f"{names[b]}\n({int(comparison.nvote_n[b]):,})" for b in ok]
    x = np.arange(len(ok))
    with np.errstate(invalid="ignore", divide="ignore"):
        mad = comparison.nvote_abs[ok] / comparison.nvote_n[ok]
        agree = comparison.nvote_agree[ok] / comparison.nvote_n[ok]
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.4))
    left.plot(x, mad, "o-", color="#1f77b4")
    left.set_ylabel("mean |network - votes| (over the 4 classes)")
    left.set_ylim(0, max(0.05, float(np.nanmax(mad, initial=0)) * 1.15))
    right.plot(x, agree, "o-", color="#2ca02c")
    right.set_ylabel("share whose top class agrees")
    right.set_ylim(0, 1.05)
    for ax in (left, right):
        ax.set_xticks(x, ticks, fontsize=8)
        ax.set_xlabel("number of votes (galaxies in the bin)")
        ax.grid(alpha=0.3)
    if not len(ok):
        left.text(0.5, 0.5, "no galaxy to compare", ha="center", transform=left.transAxes)
    fig.suptitle(f"Network vs volunteers ({votes_note}) by number of votes, on {comparison.n:,} galaxies never trained on", fontsize=10)
    fig.tight_layout()
    save_figure(fig, path)


def plot_disagreements(comparison: Comparison, chunk_tars: list[str], path: str | Path, votes_note: str) -> None:
    """The galaxies where network and volunteers differ most, with their cutouts."""
    rows = comparison.largest_disagreements()
    jpegs = read_chunks(chunk_tars, {r["objid"] for r in rows})
    images = np.stack([decode(jpegs[r["objid"]], None) for r in rows]) if rows else np.zeros((0, 1, 1, 3), np.uint8)
    titles = [
        f"{CLASS_LABELS[r['class']]}: votes {r['human']:.2f}, network {r['network']:.2f}\n"
        f"{r['split']}, {r['nvote']} votes\n" + galaxy_caption(r["objid"], r["ra"], r["dec"])
        for r in rows
    ]
    plot_gallery(images, titles, path, f"Where the network and the volunteers ({votes_note}) disagree most, of {comparison.n:,} galaxies")
