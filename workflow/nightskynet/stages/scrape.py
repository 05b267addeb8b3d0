"""Stage ``scrape``: 120 x 120 JPEG cutouts from SkyServer's ImgCutout, one chunk job at a time.

Every galaxy the query returned is fetched, confident or not: the labels decide what is trained
on, the morphology stage classifies them all. Galaxies are spread over a fixed number of chunks by a stable hash of their objid, so the DAG
has O(chunks) jobs however large the catalog. Each job downloads the galaxies of its chunk with
the cutout client (``cutout_client``: polite, validated, cached by request). The chunk's outputs
are a tar of ``<objid>.jpg`` members and a manifest CSV:
``objid,status,http_status,attempts,reason,sha256``. The cutout geometry decides the outputs (the
rule's params); the client's settings only how they are fetched (the rule's resources).
"""

from __future__ import annotations

import asyncio
import io
import logging
import tarfile
from pathlib import Path

import pandas as pd

from ..core.chunks import chunk_of
from ..core.commands import Client, File, Run, Settings, Wildcard
from ..core.files import atomic_path, write_csv_atomic
from ..sky.cutout_client import Outcome, cutout_cache, download_all
from ..sky.sky_source import skyserver_base_url

log = logging.getLogger(__name__)

MANIFEST_COLUMNS = ("objid", "status", "http_status", "attempts", "reason", "sha256")


def write_chunk(outcomes: list[Outcome], tar_path: str | Path, manifest_path: str | Path) -> None:
    """The chunk's tar (``<objid>.jpg`` for every image present) and its manifest, both atomically."""
    with atomic_path(tar_path) as tmp:
        with tarfile.open(tmp, "w", format=tarfile.USTAR_FORMAT) as tar:
            for o in outcomes:
                if o.status not in ("ok", "cached"):
                    continue
                data = o.path.read_bytes()
                info = tarfile.TarInfo(f"{o.objid}.jpg")
                info.size, info.mtime, info.mode = len(data), 0, 0o644
                tar.addfile(info, io.BytesIO(data))
    manifest = pd.DataFrame([{k: getattr(o, k) for k in MANIFEST_COLUMNS} for o in outcomes], columns=list(MANIFEST_COLUMNS))
    manifest["status"] = manifest["status"].replace({"cached": "ok"})
    manifest["http_status"] = manifest["http_status"].astype("Int64")
    write_csv_atomic(manifest_path, manifest)


def run(
    *,
    catalog: File,
    tar: File,
    manifest: File,
    chunk: Wildcard,
    settings: Settings,
    client: Client,
    cache_dir: Run[str],
) -> list[Outcome]:
    """Stage ``scrape`` for one chunk: the ``tar`` of its cutouts and their ``manifest``. ``settings``: source,
    sdss/demo and ``scrape`` (chunks and the geometry); ``client``: the ``client_options.CLIENT_KEYS``;
    ``cache_dir``: the cutout cache's folder."""
    s = settings["scrape"]
    votes = pd.read_csv(catalog, dtype={"objid": "int64"}, usecols=lambda c: c in ("objid", "ra", "dec", "petroR90_r"))
    mine = votes[[chunk_of(o, s["chunks"]) == chunk for o in votes["objid"]]].sort_values("objid")
    cache = cutout_cache(settings, cache_dir)
    log.info("chunk %d of %d: %d galaxies; cache %s", chunk, s["chunks"], len(mine), cache.root)
    with skyserver_base_url(settings) as base_url:
        outcomes = asyncio.run(download_all(base_url, mine, cache, s, client, seed=chunk, job=f"chunk{chunk}-of-{s['chunks']}"))
    write_chunk(outcomes, tar, manifest)
    counts = pd.Series([o.status for o in outcomes], dtype=object).value_counts().to_dict()
    log.info("chunk %d: %s", chunk, ", ".join(f"{k}={v}" for k, v in sorted(counts.items())) or "no galaxies")
    for o in outcomes:
        if o.status in ("missing", "rejected", "failed"):
            log.warning("objid %d: %s after %d attempt(s): %s", o.objid, o.status, o.attempts, o.reason)
    return outcomes
