"""Stage ``similarity``: galaxies like this one, the unusual ones, and mergers by example.

The rule (``run``) reads the morphology catalog and its representations (``analysis.representations``) and
writes, under ``similarity/``:

* ``index.faiss``: a faiss HNSW index of every classified galaxy's representation, its ids the objids
  (``analysis.neighbours``);
* ``scores.csv``: one row per catalog row (objid order): ``unusual`` (1 - the similarity of the galaxy's
  k-th nearest other galaxy) and ``merger_likeness`` (its likeness to the training mergers, by example),
  each with its rank (1: the most unusual, the most merger-like); empty where not classified;
* ``summary.json``: what the index holds and how this run's test split scores (neighbour purity, the
  mergers found by likeness beside those found by p_merger);
* figures for the report: the 16 most unusual galaxies, a query galaxy of each class with its 8 nearest
  neighbours, a 2-D map of the representations (PCA) by class and by vote fraction, and the galaxies most
  like the training mergers that were not trained on as mergers.

``nightskynet similar`` (``similar.py``, beside the command line) and ``nightskynet explore`` search them.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import numpy as np
import pandas as pd

from ..analysis.figures import galaxy_caption, plot_gallery, plt, save_figure
from ..analysis.neighbours import (
    IndexSettings,
    build_index,
    merger_likeness,
    neighbour_purity,
    pca_2d,
    search,
    unusual_scores,
    write_index,
)
from ..analysis.rankings import precision_recall
from ..analysis.representations import catalog_with_representations
from ..core.commands import File, Files, Run, Settings
from ..core.errors import InputError
from ..core.files import write_csv_atomic, write_json_atomic
from ..core.vocabulary import (
    CLASS_COLOURS,
    CLASS_LABELS,
    CLASS_NAMES,
    HUMAN_COLUMNS,
    NEVER_TRAINED_ON,
    PROB_COLUMNS,
    TRAINED_ON,
    is_confident,
)
from ..images.cutouts import decode, read_chunks, tars_holding

log = logging.getLogger(__name__)


def classified_rows(catalog: pd.DataFrame, features: np.ndarray) -> np.ndarray:
    """Rows with a class and a finite representation: what the index holds."""
    finite = np.isfinite(features).all(axis=1) if len(features) else np.zeros(0, bool)
    return np.flatnonzero((catalog["status"].to_numpy() == "classified") & finite)


def training_mergers(labels_csv: str | Path, threshold: float) -> pd.DataFrame:
    """The labelled training galaxies (train and val splits, confident): objid, label, is_merger."""
    labels = pd.read_csv(labels_csv, dtype={"objid": "int64"}, usecols=["objid", "label", "confidence", "split"])
    known = labels[labels["split"].isin(TRAINED_ON) & is_confident(labels["confidence"], threshold)]
    return known.assign(is_merger=known["label"] == "merger")[["objid", "label", "is_merger"]]


def ranks(values: np.ndarray) -> np.ndarray:
    """1 for the largest value, 2 for the next...; NaN stays NaN (ties: the lower objid row first)."""
    out = np.full(len(values), np.nan)
    finite = np.flatnonzero(np.isfinite(values))
    order = finite[np.argsort(-values[finite], kind="stable")]
    out[order] = np.arange(1, len(order) + 1)
    return out


def average_precision(scores: np.ndarray, positive: np.ndarray) -> float | None:
    """Average precision of a ranking (``rankings.precision_recall``'s, as the evaluate stage scores); None without a
    positive."""
    positive = np.asarray(positive, bool)
    return precision_recall(np.asarray(scores, float), positive)[2] if positive.any() else None


def precision_at_recall(scores: np.ndarray, positive: np.ndarray, recall: float) -> float | None:
    """The precision of the shortest top of the ranking that holds ``recall`` of the positives."""
    positive = np.asarray(positive, bool)
    if not positive.any():
        return None
    hits = np.cumsum(positive[np.argsort(-scores, kind="stable")])
    top = int(np.searchsorted(hits, np.ceil(recall * positive.sum() - 1e-9))) + 1
    return float(hits[top - 1] / top)


def images_of(chunk_tars: list[str], objids: set[int]) -> dict[int, np.ndarray]:
    """The cutouts of these galaxies, read from the tars of the run (all of them) that can hold them."""
    return {objid: decode(jpeg, None) for objid, jpeg in read_chunks(tars_holding(chunk_tars, objids), objids).items()}


def most_unusual(unusual: np.ndarray, n: int = 16) -> list[int]:
    return [int(i) for i in np.argsort(-np.nan_to_num(unusual, nan=-np.inf), kind="stable")[:n] if np.isfinite(unusual[i])]


def plot_unusual(catalog: pd.DataFrame, unusual: np.ndarray, found: dict[int, np.ndarray], path: str) -> list[int]:
    rows = most_unusual(unusual)
    rows = [i for i in rows if int(catalog["objid"].iat[i]) in found]
    images = np.stack([found[int(catalog["objid"].iat[i])] for i in rows]) if rows else np.zeros((0, 1, 1, 3), np.uint8)
    titles = [
        f"unusual {unusual[i]:.3f}, network: {CLASS_LABELS.get(catalog['predicted'].iat[i], '?')}\n"
        + galaxy_caption(int(catalog["objid"].iat[i]), catalog["ra"].iat[i], catalog["dec"].iat[i])
        for i in rows
    ]
    plot_gallery(images, titles, path, f"The {len(rows)} most unusual of {np.isfinite(unusual).sum():,} classified galaxies")
    return [int(catalog["objid"].iat[i]) for i in rows]


def query_galaxies(catalog: pd.DataFrame, indexed: np.ndarray) -> dict[str, int]:
    """A query galaxy per class: of the classified galaxies never trained on, the one the network is surest of."""
    held = catalog.iloc[indexed]
    held = held[held["split"].isin(NEVER_TRAINED_ON)] if held["split"].isin(NEVER_TRAINED_ON).any() else held
    out = {}
    for c, column in zip(CLASS_NAMES, PROB_COLUMNS, strict=True):
        mine = held[held["predicted"] == c]
        if len(mine):
            out[c] = int(mine.loc[mine[column].idxmax(), "objid"])
    return out


def plot_neighbours(
    catalog: pd.DataFrame, queries: dict[str, tuple[int, np.ndarray, np.ndarray]], found: dict[int, np.ndarray], path: str
) -> None:
    """Per class a row: the query galaxy (framed) and its 8 nearest neighbours with their similarity and class."""
    by_id = catalog.set_index("objid")
    columns = 1 + max((len(ids) for _, _, ids in queries.values()), default=8)
    fig, axes = plt.subplots(max(1, len(queries)), columns, figsize=(1.3 * columns, 1.8 * max(1, len(queries))), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for r, (c, (query, sims, ids)) in enumerate(queries.items()):
        cells = [(query, f"query: {CLASS_LABELS[c]}\n{query}", True)]
        cells += [
            (int(i), f"{s:.3f} {CLASS_LABELS.get(by_id.at[int(i), 'predicted'], '?')}\n{int(i)}", False)
            for s, i in zip(sims, ids, strict=True)
            if i >= 0
        ]
        for k, (objid, title, is_query) in enumerate(cells):
            ax = axes[r][k]
            if objid in found:
                ax.imshow(found[objid])
            ax.set_title(title, fontsize=7, linespacing=1.2)
            if is_query:
                ax.axis("on")
                ax.set_xticks([])
                ax.set_yticks([])
                for spine in ax.spines.values():
                    spine.set_edgecolor(CLASS_COLOURS[c])
                    spine.set_linewidth(3)
    fig.suptitle(
        "A galaxy of each class (framed) and its 8 nearest neighbours in the catalog: cosine similarity, network's class", fontsize=9
    )
    fig.tight_layout()
    save_figure(fig, path)


def plot_map(catalog: pd.DataFrame, indexed: np.ndarray, xy: np.ndarray, path: str) -> None:
    """The representations on their first two principal axes: by the network's class, by two vote fractions."""
    sub = catalog.iloc[indexed]
    order = np.random.default_rng(0).permutation(len(sub))  # no class drawn entirely on top of another
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.9), layout="constrained")
    size = float(np.clip(4000 / max(1, len(sub)), 0.3, 8))
    predicted = sub["predicted"].to_numpy()
    for c in CLASS_NAMES:  # the rare mergers last and larger, so that they show
        mine = order[predicted[order] == c]
        axes[0].scatter(xy[mine, 0], xy[mine, 1], s=size * (3 if c == "merger" else 1), c=CLASS_COLOURS[c], lw=0)
        axes[0].scatter([], [], s=20, c=CLASS_COLOURS[c], label=f"{CLASS_LABELS[c]} ({len(mine):,})")
    axes[0].legend(fontsize=8, markerscale=1.2, loc="best")
    axes[0].set_title("coloured by the network's class", fontsize=10)
    for ax, c in ((axes[1], "elliptical"), (axes[2], "merger")):
        votes = sub[HUMAN_COLUMNS[CLASS_NAMES.index(c)]].to_numpy()
        known = np.isfinite(votes)
        ax.scatter(xy[~known, 0], xy[~known, 1], s=size, c="#dddddd", lw=0)
        rising = np.flatnonzero(known)[np.argsort(votes[known], kind="stable")]  # the highest fractions drawn on top
        points = ax.scatter(xy[rising, 0], xy[rising, 1], s=size, c=votes[rising], cmap="viridis", vmin=0, vmax=1, lw=0)
        fig.colorbar(points, ax=ax, label=f"volunteers' {CLASS_LABELS[c]} vote fraction")
        ax.set_title(f"coloured by the {CLASS_LABELS[c]} vote fraction (grey: no votes)", fontsize=10)
    for ax in axes:
        ax.set_xlabel("first principal axis")
        ax.set_ylabel("second principal axis")
        ax.grid(alpha=0.3)
    fig.suptitle(f"The {len(sub):,} classified galaxies' representations, projected on their first two principal axes (PCA)", fontsize=10)
    save_figure(fig, path)


def most_merger_like(catalog: pd.DataFrame, likeness: np.ndarray, n: int = 16) -> list[int]:
    """Rows of the galaxies never trained on (split test, uncertain or none) most like the training mergers."""
    held = catalog["split"].isin(NEVER_TRAINED_ON).to_numpy()
    order = np.argsort(-np.nan_to_num(likeness, nan=-np.inf), kind="stable")
    return [int(i) for i in order if np.isfinite(likeness[i]) and held[i]][:n]


def plot_merger_like(catalog: pd.DataFrame, likeness: np.ndarray, found: dict[int, np.ndarray], path: str) -> None:
    """The galaxies never trained on (split test, uncertain or none) most like the training mergers."""
    objids = catalog["objid"].to_numpy()
    held = catalog["split"].isin(NEVER_TRAINED_ON).to_numpy()
    rows = most_merger_like(catalog, likeness)
    rows = [i for i in rows if int(objids[i]) in found]
    images = np.stack([found[int(objids[i])] for i in rows]) if rows else np.zeros((0, 1, 1, 3), np.uint8)
    titles = []
    for i in rows:
        votes = catalog["human_p_merger"].iat[i]
        titles.append(
            f"likeness {likeness[i]:.3f}, p_merger {catalog['p_merger'].iat[i]:.2f}\n"
            f"{catalog['split'].iat[i]}, merger votes {'n/a' if not np.isfinite(votes) else f'{votes:.2f}'}\n"
            + galaxy_caption(int(objids[i]), catalog["ra"].iat[i], catalog["dec"].iat[i])
        )
    plot_gallery(images, titles, path, f"Of the {held.sum():,} galaxies never trained on, the {len(rows)} most like the training mergers")


def test_split_scores(catalog: pd.DataFrame, x: np.ndarray, indexed: np.ndarray, likeness: np.ndarray, labels_csv: str) -> dict:
    """This run's test split: 10-NN class purity among the training galaxies, and mergers by likeness vs by p_merger.
    ``x``: the representations of the rows ``indexed`` (what the index holds, already in memory)."""
    labels = pd.read_csv(labels_csv, dtype={"objid": "int64"}, usecols=["objid", "label", "split"]).set_index("objid")
    sub = catalog.iloc[indexed]
    label = labels["label"].reindex(sub["objid"]).to_numpy()
    split = sub["split"].to_numpy()
    train = np.isin(split, TRAINED_ON) & pd.notna(label)
    test = (split == "test") & pd.notna(label)
    out: dict = {"test_galaxies": int(test.sum()), "reference_galaxies": int(train.sum())}
    if not test.any() or not train.any():
        return out
    three = tuple(c for c in CLASS_NAMES if c != "merger")
    mine = test & np.isin(label, three)
    if mine.any():
        purity = neighbour_purity(x[mine], label[mine], x[train], label[train], three, k=10)
        out["neighbour_purity"] = purity
    is_merger = label[test] == "merger"
    out["test_mergers"] = int(is_merger.sum())
    for name, score in (("merger_likeness", likeness[indexed][test]), ("p_merger", sub["p_merger"].to_numpy()[test])):
        out[name] = {
            "average_precision": average_precision(score, is_merger),
            "precision_at_recall_0.7": precision_at_recall(score, is_merger, 0.7),
        }
    return out


def run(
    *,
    catalog: File,
    representations: File,
    representations_objid: File,
    labels: File,
    labels_summary: File,
    chunk_tars: Files,
    index: File,
    scores: File,
    summary: File,
    unusual: File,
    neighbours: File,
    map: File,
    merger_like: File,
    settings: Settings,
    threads: Run[int],
) -> dict:
    """Stage ``similarity``: the faiss ``index`` of the catalog's representations, the ``scores`` (unusual and
    merger_likeness of every galaxy), a ``summary`` and four figures. ``settings``: the ``similarity`` section;
    ``threads``: how the job runs (faiss's threads)."""
    import faiss

    faiss.omp_set_num_threads(max(1, int(threads)))
    section = settings["similarity"]
    table, features = catalog_with_representations(catalog, representations, representations_objid, mmap=True)
    indexed = classified_rows(table, features)
    if len(indexed) < 2:
        raise InputError(f"{catalog}: {len(indexed)} classified galaxies; the similarity index needs two or more")
    objids = table["objid"].to_numpy()[indexed]
    x = np.ascontiguousarray(features[indexed], dtype=np.float32)
    t0 = time.monotonic()
    built = build_index(objids, x, IndexSettings.from_config(section["index"]))
    t1 = time.monotonic()
    log.info("index of %d galaxies x %d features built in %.1f s", len(objids), x.shape[1], t1 - t0)
    k = int(section["neighbours"])
    oddness = np.full(len(table), np.nan)
    oddness[indexed] = unusual_scores(built, objids, x, k)
    t2 = time.monotonic()
    threshold = float(json.loads(Path(labels_summary).read_text())["threshold"])
    reference = training_mergers(labels, threshold)
    row_of = pd.Series(np.arange(len(objids)), index=objids)
    reference = reference[reference["objid"].isin(row_of.index)]
    ref_rows = row_of[reference["objid"]].to_numpy()
    likeness = np.full(len(table), np.nan)
    merger = section["merger_likeness"]
    if len(reference):
        likeness[indexed] = merger_likeness(
            x, objids, objids[ref_rows], x[ref_rows], reference["is_merger"].to_numpy(), merger["method"], int(merger["neighbours"])
        )
    t3 = time.monotonic()
    scored = pd.DataFrame(
        {
            "objid": table["objid"],
            "unusual": np.round(oddness, 6),
            "unusual_rank": pd.array(ranks(oddness), dtype="Int64"),
            "merger_likeness": np.round(likeness, 6),
            "merger_likeness_rank": pd.array(ranks(likeness), dtype="Int64"),
        }
    )
    write_index(built, index)
    write_csv_atomic(scores, scored)
    queries = {}
    for c, query in query_galaxies(table, indexed).items():
        sims, ids = search(built, x[row_of[query] : row_of[query] + 1], 8, exclude=np.array([query]))
        queries[c] = (query, sims[0], ids[0])
    all_objids = table["objid"].to_numpy()
    wanted = {int(all_objids[i]) for i in (*most_unusual(oddness), *most_merger_like(table, likeness))}
    wanted |= {q for q, _, _ in queries.values()} | {int(i) for _, _, ids in queries.values() for i in ids if i >= 0}
    found = images_of(chunk_tars, wanted)  # one pass over the tars for every figure
    shown = plot_unusual(table, oddness, found, unusual)
    plot_neighbours(table, queries, found, neighbours)
    plot_map(table, indexed, pca_2d(x), map)
    plot_merger_like(table, likeness, found, merger_like)
    counts = {
        "galaxies": len(table),
        "indexed": len(objids),
        "features": int(x.shape[1]),
        "index": {"kind": "faiss IndexHNSWFlat (inner product on L2-normalised representations)", **section["index"]},
        "unusual": {"neighbour": k, "most_unusual": shown},
        "merger_likeness": {**merger, "reference_galaxies": len(reference), "reference_mergers": int(reference["is_merger"].sum())},
        "queries": {c: {"objid": q, "neighbours": [int(i) for i in ids if i >= 0]} for c, (q, _, ids) in queries.items()},
        "test_split": test_split_scores(table, x, indexed, likeness, labels),
        "seconds": {"index": round(t1 - t0, 2), "unusual": round(t2 - t1, 2), "merger_likeness": round(t3 - t2, 2)},
    }
    write_json_atomic(summary, counts)
    log.info("similarity: %d galaxies indexed -> %s; scores -> %s", len(objids), index, scores)
    return counts
