"""Stage ``morphology``: the network's calibrated class probabilities for every galaxy the query returned.

One job per scrape chunk (``run_chunk``) classifies the chunk's cutouts straight from its tar:
worker processes decode and look at batches of JPEGs while the model works on the batch before
(``looking.classify_cutouts``), so memory holds a few batches however large the chunk, and a new
model reruns these jobs, never the scrape. Every galaxy of the chunk gets a row, confident or not,
with its split (``train``, ``val``, ``test``, ``uncertain``, or ``none``: not used by training or
evaluation), its renormalised vote fractions (``human_p_*``), the network's probabilities (``p_*``,
mean over the first ``morphology.views`` D4 views), and a ``status``:

* ``classified``: the cutout was classified;
* ``no_source``, ``point_source``, ``artefact``: its centre holds no source, a star, or a trail, bleed or
  a bright star's light (``images.sources``), so no class is given, as ``predict`` does;
* ``missing``, ``rejected``, ``failed``: no cutout (the scrape manifest's status, reason in its log).

A row without a classification has empty probabilities, an empty ``predicted`` and
``merger_candidate`` false. Beside each chunk's table go its galaxies' representations (the network's
penultimate features, averaged over the same views as the probabilities; NaN where not classified), in
``analysis.representations``' pair of arrays, row for row. Each image is checked against the scrape manifest's sha256 before it
is classified: an image that is not the one downloaded for that objid stops the job.

The merge job (``run_merge``) joins the chunk tables into one, sorted by objid (a streamed k-way
merge of the sorted chunk files), writes its FITS twin block by block, and compares network and
volunteers on every galaxy the network never trained on (``morphology_comparison``). The chunks'
representations are merged into the catalog's order (``representations.npy`` and its objids), written
through a memory map, so a catalog of a million galaxies never sits in memory twice.
"""

from __future__ import annotations

import hashlib
import heapq
import logging
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm import tqdm

from ..analysis import representations as representation_files
from ..analysis.votes_comparison import Comparison, plot_agreement_by_votes, plot_disagreements, plot_network_vs_votes
from ..core.architecture import model_geometry
from ..core.chunks import chunk_of
from ..core.commands import File, Files, Run, Settings, Wildcard
from ..core.errors import InputError
from ..core.files import atomic_path, write_json_atomic, write_npy_atomic
from ..core.prediction_columns import prediction_columns
from ..core.tables import PIPELINE_COLUMNS, ColumnInfo, write_fits_streamed
from ..core.vocabulary import CLASS_NAMES, HUMAN_COLUMNS, NEVER_TRAINED_ON, PROB_COLUMNS
from ..images.cutouts import iter_chunk
from ..images.sources import psf_fwhm_px
from ..net.inference import CPU_BATCH, GPU_BATCH, Calibration, Engine, open_engine
from ..net.looking import Cutout, classify_cutouts, default_workers
from ..sky.votes import class_probabilities, votes_kind

log = logging.getLogger(__name__)

COLUMNS = ("objid", "ra", "dec", "nvote", "votes", "split", *HUMAN_COLUMNS, *PROB_COLUMNS, "predicted", "merger_candidate", "status")
TEXT_WIDTHS = {"votes": 12, "split": 9, "predicted": 14, "status": 12}  # the longest value of each text column
CATALOG_VOTE_COLUMNS = ("objid", "ra", "dec", "nvote", "p_el", "p_cw", "p_acw", "p_edge", "p_mg", "votes", "petroR90_r")
BLOCK_ROWS = 100_000  # rows per block when streaming the merged table


def column_info(views_averaged: int) -> dict[str, ColumnInfo]:
    views = f"mean over {views_averaged} D4 views" if views_averaged > 1 else "one view"
    info = dict(PIPELINE_COLUMNS)
    info["split"] = ColumnInfo(None, "train, val, test, uncertain (held out to compare with the votes) or none (not used)")
    info["status"] = ColumnInfo(
        None,
        "classified; not classified: no_source, point_source (a star), artefact (a trail, bleed or a bright star's light) at the"
        " centre; missing, rejected, failed (no cutout)",
    )
    for name, column in zip(CLASS_NAMES, PROB_COLUMNS, strict=True):
        info[column] = ColumnInfo(None, f"the network's calibrated probability of class {name} ({views}); empty when not classified")
    return info


def chunk_galaxies(catalog_csv: str | Path, labels_csv: str | Path, chunk: int, chunks: int) -> pd.DataFrame:
    """Every galaxy of the query's catalog in ``chunk`` (the scrape's hash), sorted by objid: position,
    votes, renormalised vote fractions (NaN where every vote was don't-know) and split."""
    catalog = pd.read_csv(catalog_csv, dtype={"objid": "int64"}, usecols=lambda c: c in CATALOG_VOTE_COLUMNS)
    mine = catalog[np.fromiter((chunk_of(o, chunks) == chunk for o in catalog["objid"]), bool, len(catalog))]
    mine = mine.sort_values("objid").reset_index(drop=True)
    if mine["objid"].duplicated().any():
        raise InputError(f"{catalog_csv}: objid {mine.loc[mine['objid'].duplicated(), 'objid'].iloc[0]} appears twice")
    fractions = class_probabilities(mine)
    splits = pd.read_csv(labels_csv, dtype={"objid": "int64"}, usecols=["objid", "split"]).set_index("objid")["split"]
    out = mine[["objid", "ra", "dec", "nvote"]].copy()
    out["petroR90_r"] = mine["petroR90_r"] if "petroR90_r" in mine else np.nan  # the cutout's seeing under adaptive scales
    out["votes"] = mine["votes"] if "votes" in mine else "galaxy_zoo_1"
    out["split"] = splits.reindex(mine["objid"]).fillna("none").to_numpy()
    for col, human in zip(PROB_COLUMNS, HUMAN_COLUMNS, strict=True):
        out[human] = fractions[col].round(5).to_numpy()
    return out


def read_manifest(path: str | Path) -> pd.DataFrame:
    return pd.read_csv(path, dtype={"objid": "int64"}, usecols=["objid", "status", "sha256"]).set_index("objid")


def _batches(tar_path: str | Path, manifest: pd.DataFrame, geometry: dict, radii: pd.Series, batch: int):
    """(objids, their Cutouts) for each batch of the tar's images, each checked against its manifest row (the reading and
    looking at them is ``looking.classify_cutouts``'s, at the seeing of each cutout's scale)."""
    ids: list[int] = []
    cutouts: list[Cutout] = []
    for objid, jpeg in iter_chunk(tar_path):
        if objid not in manifest.index or manifest.at[objid, "status"] != "ok":
            raise InputError(f"{tar_path}: holds {objid}.jpg, which its manifest does not list as downloaded; scrape the chunk again")
        if hashlib.sha256(jpeg).hexdigest() != manifest.at[objid, "sha256"]:
            raise InputError(f"{tar_path}: {objid}.jpg is not the image its manifest lists (sha256 differs); scrape the chunk again")
        ids.append(objid)
        cutouts.append(Cutout(jpeg, psf_fwhm_px(geometry, radii.get(objid))))
        if len(ids) == batch:
            yield np.array(ids, dtype=np.int64), cutouts
            ids, cutouts = [], []
    if ids:
        yield np.array(ids, dtype=np.int64), cutouts


def classify_chunk(
    galaxies: pd.DataFrame,
    tar_path: str | Path,
    manifest: pd.DataFrame,
    engine: Engine,
    saved: dict,
    views: int,
    batch: int,
    workers: int,
) -> tuple[pd.DataFrame, np.ndarray]:
    """(``galaxies`` with the network's columns and a status, their representations (rows, F) float32, NaN where not
    classified), classified straight from the chunk's tar."""
    geometry, crop = model_geometry(saved)
    n = len(galaxies)
    probs = np.full((n, len(CLASS_NAMES)), np.nan)
    features: np.ndarray | None = None
    status = manifest["status"].reindex(galaxies["objid"]).to_numpy(dtype=object)
    unknown = pd.isna(status)
    if unknown.any():
        first = galaxies["objid"].to_numpy()[unknown][0]
        raise InputError(f"objid {first} of the catalog is not in the chunk's manifest; scrape the chunk again")
    row_of = pd.Index(galaxies["objid"])
    radii = galaxies.set_index("objid")["petroR90_r"]
    batches = _batches(tar_path, manifest, geometry, radii, batch)
    stream = classify_cutouts(engine, Calibration.of(saved), batches, geometry["size"], crop, views, workers)
    with tqdm(total=int((status == "ok").sum()), desc="classifying", unit="galaxy", mininterval=5.0, disable=n < 5000) as bar:
        for ids, looked, answers in stream:
            rows = row_of.get_indexer(ids)
            if (rows < 0).any():
                raise InputError(f"{tar_path}: holds {ids[rows < 0][0]}.jpg, a galaxy this chunk of the catalog does not have")
            classified = looked.classified
            probs[rows[classified]] = answers.probabilities
            if features is None:
                features = np.full((n, answers.features.shape[1]), np.nan, dtype=np.float32)
            features[rows[classified]] = answers.features
            status[rows] = looked.status
            bar.update(len(ids))
    lost = (status == "ok").sum()
    if lost:
        raise InputError(f"{tar_path}: {lost} cutouts its manifest lists as downloaded are not in it; scrape the chunk again")
    columns = prediction_columns(probs, saved.get("merger_threshold"), classified=status == "classified")
    out = pd.concat([galaxies.drop(columns="petroR90_r").reset_index(drop=True), columns], axis=1)
    out["status"] = status
    if features is None:  # nothing was classified: the width comes from the engine itself
        features = np.full((n, engine.outputs(np.zeros((1, crop, crop, 3), np.uint8), 1)[1].shape[-1]), np.nan, dtype=np.float32)
    return out[list(COLUMNS)], features


def run_chunk(
    *,
    model: File,
    catalog: File,
    labels: File,
    tar: File,
    manifest: File,
    chunk_csv: File,
    chunk_representations: File,
    chunk_representations_objid: File,
    chunk: Wildcard,
    settings: Settings,
    device: Run[str],
    batch_size: Run[int],
    threads: Run[int],
) -> pd.DataFrame:
    """Stage ``morphology``, one chunk: its table (``chunk_csv``) and its representations (and their objids).
    ``settings``: ``scrape.chunks`` and ``morphology.views``; ``device``, ``batch_size`` (0: ``CPU_BATCH`` on a CPU,
    1,024 on a GPU) and ``threads``: how the job runs."""
    engine, saved = open_engine(model, device, threads)
    views = int(settings["morphology"]["views"])
    batch = batch_size or (CPU_BATCH if engine.on_cpu else GPU_BATCH)
    galaxies = chunk_galaxies(catalog, labels, chunk, settings["scrape"]["chunks"])
    workers = default_workers(threads, len(galaxies), batch)
    table, features = classify_chunk(galaxies, tar, read_manifest(manifest), engine, saved, views, batch, workers)
    representation_files.write(chunk_representations, chunk_representations_objid, table["objid"].to_numpy(), features)
    with atomic_path(chunk_csv) as tmp:
        table.to_csv(tmp, index=False)
    counts = table["status"].value_counts().to_dict()
    log.info("chunk %d: %d galaxies (%s) -> %s", chunk, len(table), ", ".join(f"{k}={v}" for k, v in sorted(counts.items())), chunk_csv)
    return table


# ---- merge ---------------------------------------------------------------------------------------


def _rows(path: str | Path):
    with open(path) as f:
        header = f.readline()
        if header.rstrip("\n").split(",") != list(COLUMNS):
            raise InputError(f"{path}: not a catalog chunk of this version (header {header.strip()!r}); run the morphology stage again")
        yield from f


def merge_chunks(chunk_csvs: list[str], out_csv: str | Path) -> int:
    """The chunk tables as one CSV sorted by objid (a streamed k-way merge); returns its number of rows."""
    n = 0
    with atomic_path(out_csv) as tmp, open(tmp, "w") as out:
        out.write(",".join(COLUMNS) + "\n")
        for line in heapq.merge(*(_rows(p) for p in chunk_csvs), key=lambda line: int(line.split(",", 1)[0])):
            out.write(line)
            n += 1
    return n


DTYPES = {"objid": "int64", "nvote": "int64", "votes": str, "split": str, "predicted": str, "status": str, "merger_candidate": bool}


def blocks(csv_path: str | Path):
    """The merged table in blocks of ``BLOCK_ROWS`` rows, empty text as ''."""
    empty_is_nan = {c: [""] for c in (*HUMAN_COLUMNS, *PROB_COLUMNS)}
    yield from pd.read_csv(csv_path, dtype=DTYPES, keep_default_na=False, na_values=empty_is_nan, chunksize=BLOCK_ROWS)


def merge_representations(
    chunk_csvs: list[str],
    chunk_representations: list[str],
    chunk_objids: list[str],
    catalog_csv: str | Path,
    out_path: str | Path,
    out_objids: str | Path,
) -> int:
    """The chunks' representations in the merged catalog's row order, written through a memory map; returns the width."""
    order = pd.read_csv(catalog_csv, usecols=["objid"], dtype={"objid": "int64"})["objid"].to_numpy()
    if not len(chunk_csvs) == len(chunk_representations) == len(chunk_objids):
        raise InputError(f"{len(chunk_csvs)} chunk tables but {len(chunk_representations)} chunk representations")
    width = None
    with atomic_path(out_path) as tmp:
        merged = None
        filled = 0
        for table, path, objid_file in zip(chunk_csvs, chunk_representations, chunk_objids, strict=True):
            ids = pd.read_csv(table, usecols=["objid"], dtype={"objid": "int64"})["objid"].to_numpy()
            _, features = representation_files.read(path, objid_file, ids, mmap=True)
            if merged is None:
                width = features.shape[1]
                merged = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.float32, shape=(len(order), width))
            elif features.shape[1] != width:
                raise InputError(
                    f"{path}: {features.shape[1]} features a galaxy, the chunks before it {width}; run the morphology stage again"
                )
            rows = np.searchsorted(order, ids)
            merged[rows] = features
            filled += len(ids)
        if merged is None:
            raise InputError("no chunk to merge")
        if filled != len(order):
            raise InputError(f"{filled} representations for a catalog of {len(order)} rows")
        merged.flush()
        del merged
    write_npy_atomic(out_objids, order)
    return int(width)


def run_merge(
    *,
    chunk_csvs: Files,
    chunk_representations: Files,
    chunk_representations_objid: Files,
    chunk_tars: Files,
    catalog: File,
    catalog_fits: File,
    representations: File,
    representations_objid: File,
    comparison: File,
    vs_votes: File,
    by_votes: File,
    disagreements: File,
    settings: Settings,
) -> dict:
    """Stage ``morphology``, the merge: the ``catalog`` (CSV and FITS) and its ``representations`` (and their objids),
    the ``comparison`` with the volunteers (JSON) and its figures. ``settings``: ``source`` and ``morphology``."""
    n = merge_chunks(chunk_csvs, catalog)
    chunks = (chunk_csvs, chunk_representations, chunk_representations_objid)
    width = merge_representations(*chunks, catalog, representations, representations_objid)
    against_votes = Comparison()
    counts: dict[str, dict[str, int]] = {}

    def counted():
        for block in blocks(catalog):
            against_votes.add(block)
            for (split, status), k in block.groupby(["split", "status"]).size().items():
                counts.setdefault(split, {}).setdefault(status, 0)
                counts[split][status] += int(k)
            yield block

    write_fits_streamed(catalog_fits, counted(), n, column_info(int(settings["morphology"]["views"])), TEXT_WIDTHS)
    votes = votes_kind(settings["source"])
    summary = {
        "galaxies": n,
        "views": int(settings["morphology"]["views"]),
        "votes": votes,
        "representation_features": width,
        "by_split_and_status": counts,
        "compared_splits": list(NEVER_TRAINED_ON),
        **against_votes.summary(),
    }
    note = "simulated votes" if votes == "simulated" else "Galaxy Zoo 1 votes"
    plot_network_vs_votes(against_votes, vs_votes, note)
    plot_agreement_by_votes(against_votes, by_votes, note)
    plot_disagreements(against_votes, chunk_tars, disagreements, note)
    write_json_atomic(comparison, summary)
    log.info(
        "catalog: %d galaxies -> %s; compared with the votes on %d never trained on: top class agrees for %s",
        n,
        catalog,
        summary["compared"],
        summary["top_class_agreement"],
    )
    return summary
