"""Stage ``scrape``: 120 x 120 JPEG cutouts from SkyServer's ImgCutout, one chunk job at a time.

Galaxies are spread over a fixed number of chunks by a stable hash of their objid, so the DAG
has O(chunks) jobs however large the catalog. Each job downloads the galaxies of its chunk with
aiohttp (bounded concurrency, optional global rate, retries with backoff + jitter honouring
Retry-After), accepting a 200 only when the body is a JPEG that decodes completely at the
requested size. Validated downloads go to a cache outside Snakemake's outputs (written
atomically), so a killed job started again fetches only what it did not have yet. The chunk's
outputs are a tar of ``<objid>.jpg`` members and a manifest CSV:
``objid,status,http_status,attempts,reason,sha256``.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import logging
import math
import os
import random
import shutil
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

import aiohttp
import pandas as pd
from PIL import Image
from tqdm import tqdm

from .files import atomic_path, write_bytes_via, write_csv_atomic
from .http_retry import USER_AGENT, FetchError, PermanentError, RateLimiter, RetryPolicy, TransientError, get_with_retries
from .query import describe_error_body
from .sky_source import cutout_url, skyserver_base_url

log = logging.getLogger(__name__)

MANIFEST_COLUMNS = ("objid", "status", "http_status", "attempts", "reason", "sha256")
MIN_SCALE, MAX_SCALE = 0.015, 60.0


def chunk_of(objid: int, chunks: int) -> int:
    """A stable chunk number for ``objid`` (independent of Python's hash seed and of the catalog)."""
    digest = hashlib.blake2b(str(int(objid)).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") % chunks


def cutout_scale(petro_r90: float, settings: dict) -> float:
    """Arcsec per pixel: fixed, or ``adaptive_k x petroR90_r`` clipped to the service's range."""
    if settings["scale_mode"] == "fixed":
        return float(settings["scale"])
    if not (petro_r90 > 0 and math.isfinite(petro_r90)):  # SDSS marks a failed radius as -9999
        raise ValueError(f"no valid petroR90_r ({petro_r90}) for an adaptive cutout scale")
    return float(min(MAX_SCALE, max(MIN_SCALE, settings["adaptive_k"] * petro_r90)))


def cache_folder(settings: dict) -> Path:
    """Cache folder per source, release and cutout geometry: images from one never mix with another's."""
    s = settings["scrape"]
    origin = "demo" if settings["source"] == "demo" else f"sdss-{settings['sdss']['release']}"
    geometry = f"{s['width']}x{s['height']}-" + (f"fixed{s['scale']:g}" if s["scale_mode"] == "fixed" else f"adaptive{s['adaptive_k']:g}")
    return Path(s["cache_dir"]) / origin / geometry


class OffFootprint(PermanentError):
    """The service's answer for a position outside the survey: HTTP 404 with a JPEG body."""


def jpeg_checker(width: int, height: int):
    def check(status: int, headers: Mapping[str, str], body: bytes) -> None:
        if status == 404 and body.startswith(b"\xff\xd8"):
            raise OffFootprint("HTTP 404: off the survey footprint", status=status)
        if status in (400, 404):  # a 404 without the JPEG: a wrong release or path, not the sky
            raise PermanentError(f"HTTP {status}: {describe_error_body(body)}", status=status)
        if status != 200:
            raise TransientError(f"HTTP {status}: {describe_error_body(body)}", status=status)
        if not body.startswith(b"\xff\xd8"):
            raise TransientError("HTTP 200 but the body is not a JPEG: " + describe_error_body(body), status=status)
        try:
            with Image.open(io.BytesIO(body)) as im:
                im.load()
                size = im.size
        except Exception as err:  # noqa: BLE001 - any decoder failure means a bad body
            raise TransientError(f"HTTP 200 but the JPEG does not decode: {err}", status=status) from err
        if size != (width, height):
            raise TransientError(f"HTTP 200 but the JPEG is {size[0]}x{size[1]}, not {width}x{height}", status=status)

    return check


@dataclass
class Outcome:
    objid: int
    status: str  # ok | cached | missing | rejected | failed
    http_status: int | None
    attempts: int
    reason: str
    sha256: str


async def download_all(base_url: str, release: str, galaxies: pd.DataFrame, cache: Path, settings: dict, seed: int = 0, show_progress: bool = True, job: str | None = None) -> list[Outcome]:
    """Download each galaxy's cutout into ``cache`` unless it is already there; one Outcome per galaxy.

    ``job`` names this writer's staging folder in the cache (default: one per process); several
    jobs can fill one cache at once, and a job started again under the same name first clears
    what its killed predecessor left half-written.
    """
    s = settings["scrape"]
    url = cutout_url(base_url, release)
    policy = RetryPolicy(max_attempts=s["max_attempts"], timeout_s=s["timeout_s"], backoff_base_s=s["backoff_base_s"], backoff_max_s=s["backoff_max_s"])
    check = jpeg_checker(s["width"], s["height"])
    limiter = RateLimiter(s["max_rate"])
    rng = random.Random(seed)
    semaphore = asyncio.Semaphore(s["concurrency"])
    staging = cache / f".incoming-{job or f'pid{os.getpid()}'}"
    if staging.exists():
        log.info("removing %s, left half-written by a killed run", staging)
        shutil.rmtree(staging)
    staging.mkdir(parents=True)

    async def one(session: aiohttp.ClientSession, row) -> Outcome:
        objid = int(row.objid)
        path = cache / f"{objid}.jpg"
        if path.exists():
            return Outcome(objid, "cached", None, 0, "", hashlib.sha256(path.read_bytes()).hexdigest())
        try:
            scale = cutout_scale(row.petroR90_r, s)
        except ValueError as err:
            return Outcome(objid, "rejected", None, 0, str(err), "")
        params = {"ra": f"{row.ra:.6f}", "dec": f"{row.dec:.6f}", "scale": f"{scale:.6g}", "width": str(s["width"]), "height": str(s["height"])}
        async with semaphore:
            try:
                body, attempts = await get_with_retries(session, url, params, check, policy, rng, limiter)
            except OffFootprint as err:
                return Outcome(objid, "missing", err.status, err.attempts, str(err), "")
            except PermanentError as err:
                return Outcome(objid, "rejected", err.status, err.attempts, str(err), "")
            except FetchError as err:
                return Outcome(objid, "failed", err.status, err.attempts, str(err), "")
        write_bytes_via(staging, path, body)
        return Outcome(objid, "ok", 200, attempts, "", hashlib.sha256(body).hexdigest())

    connector = aiohttp.TCPConnector(limit=s["concurrency"])
    outcomes: list[Outcome] = []
    async with aiohttp.ClientSession(headers={"User-Agent": USER_AGENT}, connector=connector) as session:
        tasks = [asyncio.create_task(one(session, row)) for row in galaxies.itertuples(index=False)]
        with tqdm(total=len(tasks), desc="cutouts", unit="img", disable=not show_progress, mininterval=2.0) as bar:
            for task in asyncio.as_completed(tasks):
                outcomes.append(await task)
                bar.update()
    shutil.rmtree(staging, ignore_errors=True)
    return sorted(outcomes, key=lambda o: o.objid)


def write_chunk(outcomes: list[Outcome], cache: Path, tar_path: str | Path, manifest_path: str | Path) -> None:
    """The chunk's tar (``<objid>.jpg`` for every image present) and its manifest, both atomically."""
    with atomic_path(tar_path) as tmp:
        with tarfile.open(tmp, "w", format=tarfile.USTAR_FORMAT) as tar:
            for o in outcomes:
                if o.status not in ("ok", "cached"):
                    continue
                data = (cache / f"{o.objid}.jpg").read_bytes()
                info = tarfile.TarInfo(f"{o.objid}.jpg")
                info.size, info.mtime, info.mode = len(data), 0, 0o644
                tar.addfile(info, io.BytesIO(data))
    manifest = pd.DataFrame([o.__dict__ for o in outcomes], columns=list(MANIFEST_COLUMNS))
    manifest["status"] = manifest["status"].replace({"cached": "ok"})
    manifest["http_status"] = manifest["http_status"].astype("Int64")
    write_csv_atomic(manifest_path, manifest)


def run(labels_csv: str | Path, chunk: int, tar_path: str | Path, manifest_path: str | Path, settings: dict) -> list[Outcome]:
    s = settings["scrape"]
    labels = pd.read_csv(labels_csv, dtype={"objid": "int64"})
    mine = labels[[chunk_of(o, s["chunks"]) == chunk for o in labels["objid"]]].sort_values("objid")
    cache = cache_folder(settings)
    log.info("chunk %d of %d: %d galaxies; cache %s", chunk, s["chunks"], len(mine), cache)
    with skyserver_base_url(settings) as base_url:
        outcomes = asyncio.run(download_all(base_url, settings["sdss"]["release"], mine, cache, settings, seed=chunk, job=f"chunk{chunk}-of-{s['chunks']}"))
    write_chunk(outcomes, cache, tar_path, manifest_path)
    counts = pd.Series([o.status for o in outcomes], dtype=object).value_counts().to_dict()
    log.info("chunk %d: %s", chunk, ", ".join(f"{k}={v}" for k, v in sorted(counts.items())) or "no galaxies")
    for o in outcomes:
        if o.status in ("missing", "rejected", "failed"):
            log.warning("objid %d: %s after %d attempt(s): %s", o.objid, o.status, o.attempts, o.reason)
    return outcomes
