"""``nightskynet similar``: the galaxies of a finished run most like a given one.

One query: a galaxy of the run's catalog by objid or by position, or an image file (read and looked at as
``predict`` does, represented on the fly by the run's model). Answered from the run's similarity index
(``layout.INDEX``, built by the workflow's similarity rule), as a table and, if asked, an HTML page of their
cutouts (read from the run's chunk tars by objid).
"""

from __future__ import annotations

import functools
from pathlib import Path

import jinja2
import numpy as np
import pandas as pd

from .analysis.neighbours import read_index, search
from .analysis.representations import catalog_with_representations
from .core.errors import InputError
from .core.files import write_csv_atomic, write_text_atomic
from .core.layout import RunFiles
from .core.vocabulary import CLASS_LABELS, CLASS_NAMES, HUMAN_COLUMNS, PROB_COLUMNS
from .images.cutouts import read_chunks, tars_holding


def query_by_position(catalog: pd.DataFrame, ra: float, dec: float, radius_arcsec: float) -> int:
    """The catalog row nearest (ra, dec), within ``radius_arcsec``; else an error naming the nearest."""
    ra0, dec0 = np.radians(ra), np.radians(dec)
    ras, decs = np.radians(catalog["ra"].to_numpy()), np.radians(catalog["dec"].to_numpy())
    cos = np.sin(dec0) * np.sin(decs) + np.cos(dec0) * np.cos(decs) * np.cos(ras - ra0)
    sep = np.degrees(np.arccos(np.clip(cos, -1, 1))) * 3600
    row = int(np.argmin(sep))
    if sep[row] > radius_arcsec:
        raise InputError(
            f"no galaxy of the catalog within {radius_arcsec:g} arcsec of RA {ra:.5f} Dec {dec:+.5f}; the nearest, "
            f"{catalog['objid'].iat[row]}, is {sep[row]:.1f} arcsec away (--radius to widen)"
        )
    return row


def represent_image(model_path: str | Path, image_path: str | Path, views: int, threads: int) -> tuple[np.ndarray, np.ndarray]:
    """(representation (1, F), probabilities (1, 4)) of one image file, read and looked at as ``predict`` does
    (``looking.look_at``); an image without a galaxy at its centre is refused with the reason, never represented."""
    from .core.architecture import model_geometry
    from .images.sources import psf_fwhm_px
    from .net.inference import Calibration, answer, open_engine
    from .net.looking import Cutout, look_at

    engine, saved = open_engine(model_path, "cpu", threads)
    geometry, crop_size = model_geometry(saved)
    looked = look_at([Cutout(Path(image_path), psf_fwhm_px(geometry, None))], geometry["size"], crop_size)
    if not looked.classified[0]:
        raise InputError(f"{image_path}: {looked.status[0]}: {looked.notes[0]}; no galaxy to compare")
    answers = answer(engine, looked.crops, Calibration.of(saved), views)
    return answers.features.astype(np.float32), answers.probabilities


def similar(
    *,
    run: RunFiles,
    k: int,
    objid: int | None = None,
    position: tuple[float, float] | None = None,
    image: str | None = None,
    model_path: str | Path | None = None,
    radius_arcsec: float,
    out_csv: str | None = None,
    out_html: str | None = None,
    threads: int,
) -> pd.DataFrame:
    """The k galaxies of the run's catalog most like the query (exactly one of ``objid``, ``position``, ``image``),
    most similar first: objid, ra, dec, similarity, the network's p_*, the vote fractions, and ``unusual`` and
    ``merger_likeness`` where the run has its scores. The query galaxy itself is not among them. ``model_path``:
    for an image, the model to represent it with (default: the run's)."""
    import faiss

    faiss.omp_set_num_threads(max(1, int(threads)))
    if sum(q is not None for q in (objid, position, image)) != 1:
        raise InputError("give exactly one query: --objid, --ra with --dec, or --image")
    if k < 1:
        raise InputError(f"-k {k}: ask for one neighbour or more")
    for path, rule in ((run.catalog, "morphology"), (run.index, "similarity")):
        if not path.is_file():
            raise InputError(f"{path}: no such file; run the workflow's {rule} rule first (snakemake {rule})")
    catalog_csv, index_path = run.catalog, run.index
    catalog, features = catalog_with_representations(catalog_csv, run.representations, run.representations_objid, mmap=True)
    index = read_index(index_path)
    if index.ntotal and features.shape[1] != index.d:
        raise InputError(f"{index_path}: an index of {index.d} features, the catalog's representations have {features.shape[1]}")
    model_path = run.model if model_path is None else model_path
    exclude = None
    if image is not None:
        query, _ = represent_image(model_path, image, run.views(), threads)  # averaged as the catalog's were
        if query.shape[1] != index.d:
            raise InputError(f"--model {model_path}: {query.shape[1]} features, the index {index.d}: not the model of this catalog")
        about = f"the image {image}"
    else:
        row = (
            int(np.flatnonzero(catalog["objid"].to_numpy() == objid)[0])
            if objid is not None and (catalog["objid"] == objid).any()
            else None
        )
        if objid is not None and row is None:
            raise InputError(f"objid {objid} is not in {catalog_csv}")
        if position is not None:
            row = query_by_position(catalog, position[0], position[1], radius_arcsec)
        status = catalog["status"].iat[row]
        if status != "classified" or not np.isfinite(features[row]).all():
            raise InputError(f"objid {catalog['objid'].iat[row]}: status {status}, so it has no representation to compare")
        query = np.asarray(features[row : row + 1], dtype=np.float32)
        exclude = np.array([catalog["objid"].iat[row]])
        about = f"objid {catalog['objid'].iat[row]} (RA {catalog['ra'].iat[row]:.5f} Dec {catalog['dec'].iat[row]:+.5f})"
    sims, ids = search(index, query, k, exclude=exclude)
    found = ids[0] >= 0
    table = pd.DataFrame({"objid": ids[0][found], "similarity": np.round(sims[0][found], 6)})
    by_id = catalog.set_index("objid")
    missing = ~table["objid"].isin(by_id.index)
    if missing.any():
        raise InputError(
            f"{index_path}: names objid {table['objid'][missing].iat[0]}, which {catalog_csv} does not hold: not this catalog's index"
        )
    cols = ["ra", "dec", "predicted", *PROB_COLUMNS, *HUMAN_COLUMNS]
    table = table.join(by_id[cols], on="objid")
    if run.scores.is_file():
        scores = pd.read_csv(run.scores, dtype={"objid": "int64"}).set_index("objid")
        table = table.join(scores[["unusual", "merger_likeness"]], on="objid")
    table.insert(0, "rank", np.arange(1, len(table) + 1))
    table = table[
        ["rank", "objid", "ra", "dec", "similarity", *[c for c in table.columns if c not in ("rank", "objid", "ra", "dec", "similarity")]]
    ]
    if out_csv:
        write_csv_atomic(out_csv, table)
    if out_html:
        query_objid = None if exclude is None else int(exclude[0])
        write_text_atomic(out_html, similar_page(table, about, [str(p) for p in run.chunk_tars()], image, query_objid))
    return table


@functools.cache
def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.PackageLoader("nightskynet", "templates/similar"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def _jpeg_uri(data: bytes) -> str:
    import base64

    return "data:image/jpeg;base64," + base64.b64encode(data).decode()


def similar_page(table: pd.DataFrame, about: str, chunk_tars: list[str], image: str | None, query_objid: int | None) -> str:
    """A self-contained HTML page: the query and its neighbours' cutouts (from the chunk tars) with their numbers."""
    wanted = set(table["objid"].tolist()) | ({query_objid} if query_objid is not None else set())
    jpegs = read_chunks(tars_holding(chunk_tars, wanted), wanted) if chunk_tars else {}
    query_uri = _jpeg_uri(jpegs[query_objid]) if query_objid in jpegs else None
    if image is not None:
        import io

        from PIL import Image

        buffer = io.BytesIO()
        Image.open(image).convert("RGB").save(buffer, format="JPEG", quality=92)
        query_uri = _jpeg_uri(buffer.getvalue())
    galaxies = []
    for r in table.itertuples(index=False):
        votes = getattr(r, "human_p_merger", float("nan"))
        galaxies.append(
            {
                "rank": r.rank,
                "objid": r.objid,
                "position": f"RA {r.ra:.5f} Dec {r.dec:+.5f}",
                "similarity": f"{r.similarity:.3f}",
                "predicted": CLASS_LABELS.get(r.predicted, r.predicted),
                "p": ", ".join(f"{getattr(r, f'p_{c}'):.2f}" for c in CLASS_NAMES),
                "merger_votes": "n/a" if not np.isfinite(votes) else f"{votes:.2f}",
                "uri": _jpeg_uri(jpegs[r.objid]) if r.objid in jpegs else None,
            }
        )
    return (
        _environment()
        .get_template("similar.html.j2")
        .render(about=about, query_uri=query_uri, galaxies=galaxies, classes=", ".join(CLASS_LABELS[c] for c in CLASS_NAMES))
    )
