"""The SkyServer cutout client: polite, validated, cached downloads of getjpeg cutouts.

Shared by the scrape stage (a chunk of the catalog's galaxies) and ``predict`` (a user's catalog).
Downloads use aiohttp with bounded concurrency, an optional rate, and retries with backoff +
jitter honouring Retry-After; a 200 is accepted only when the body is a JPEG that decodes
completely at the requested size. Validated images go to a cache written atomically, so a killed
job started again fetches only what it did not have yet. The cache is keyed by the request
itself (service, release, ra, dec, scale, size), never by objid: two catalogs that reuse an objid
for different positions can never get each other's image, and the workflow and ``predict`` can
share one cache safely. A host that cannot be reached at all (no connection made: refused, no such
host, connect timeout) stops the run early with one ``ServiceUnreachable`` instead of every row failing
slowly; any answer at all, even a 500, means the host is there and each row is recorded as it ends.

Settings come in two kinds: the cutout's geometry (``GEOMETRY_KEYS``: ``size, scale_mode,
scale, adaptive_k``; cutouts are square, ``size`` x ``size`` px), which decides the images, and
the client's (``client_options.CLIENT_KEYS``), which only decide how they are fetched.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import logging
import math
import os
import random
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping
from urllib.parse import urlsplit

import aiohttp
import astropy.units as u
import pandas as pd
from PIL import Image
from tqdm import tqdm

from ..core.errors import ServiceUnreachable
from ..core.files import write_bytes_via
from .http_retry import (
    USER_AGENT,
    ConnectionWatch,
    FetchError,
    PermanentError,
    RateLimiter,
    RetryPolicy,
    TransientError,
    describe_error_body,
    get_with_retries,
)
from .sky_source import cutout_url, release, service_id

log = logging.getLogger(__name__)

PER_PIXEL = u.arcsec / u.pix
SERVICE_SCALES = (0.015 * PER_PIXEL, 60.0 * PER_PIXEL)  # what getjpeg accepts
GEOMETRY_KEYS = ("size", "scale_mode", "scale", "adaptive_k")
# cutouts that failed after all their attempts, while no connection to the host had ever been made,
# before the host is taken for unreachable (fewer if fewer were fetched at all)
UNREACHABLE_AFTER = 3


def cutout_scale(petro_r90: float, settings: dict) -> float:
    """Arcsec per pixel, as the service takes it: fixed, or ``adaptive_k x petroR90_r`` per pixel.

    An adaptive scale outside what the service allows is refused (ValueError naming the radius,
    the scale and the field it would give), never clipped: a clipped galaxy would be framed
    unlike every other.
    """
    if settings["scale_mode"] == "fixed":
        return float(settings["scale"])
    if not (petro_r90 > 0 and math.isfinite(petro_r90)):  # SDSS marks a failed radius as -9999
        raise ValueError(f"no valid petroR90_r ({petro_r90}) for an adaptive cutout scale")
    radius = petro_r90 * u.arcsec
    scale = settings["adaptive_k"] * radius / u.pix
    lo, hi = SERVICE_SCALES
    if not lo <= scale <= hi:
        field = (scale * settings["size"] * u.pix).to(u.arcmin)
        raise ValueError(
            f"petroR90_r = {radius:.4g} frames a {settings['size']} pix cutout at {scale:.4g} ({field:.3g} across), "
            f"outside the {lo:g} to {hi:g} the cutout service allows"
        )
    return float(scale.to_value(PER_PIXEL))


def request_params(ra: float, dec: float, scale: float, size: int) -> dict[str, str]:
    """The getjpeg query string for one square cutout, formatted once: what is sent is what the cache is keyed by."""
    return {"ra": f"{ra:.6f}", "dec": f"{dec:.6f}", "scale": f"{scale:.6g}", "width": str(int(size)), "height": str(int(size))}


class CutoutCache:
    """Validated cutouts on disk, one file per distinct request.

    The file of a request is ``<root>/<k[:2]>/<k>.jpg`` with k the sha256 of (service, release and
    the query string), so an image is found again only by the very request that made it.
    """

    def __init__(self, root: str | Path, service: str, release: str):
        self.root, self.service, self.release = Path(root), service, release

    def path(self, params: dict[str, str]) -> Path:
        key = hashlib.sha256(
            json.dumps({"service": self.service, "release": self.release.lower(), **params}, sort_keys=True).encode()
        ).hexdigest()
        return self.root / key[:2] / f"{key}.jpg"


def cutout_cache(settings: dict, cache_dir: str | Path) -> CutoutCache:
    """The cache for the SkyServer that ``settings`` names (the real one or the demo sky), under ``cache_dir``."""
    return CutoutCache(cache_dir, service_id(settings), release(settings))


class OffFootprint(PermanentError):
    """The service's answer for a position outside the survey: HTTP 404 with a JPEG body."""


def jpeg_checker(size: int):
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
                got = im.size
        except Exception as err:  # noqa: BLE001 - any decoder failure means a bad body
            raise TransientError(f"HTTP 200 but the JPEG does not decode: {err}", status=status) from err
        if got != (size, size):
            raise TransientError(f"HTTP 200 but the JPEG is {got[0]}x{got[1]}, not {size}x{size}", status=status)

    return check


@dataclass
class Outcome:
    objid: int
    status: str  # ok | cached | missing | rejected | failed
    http_status: int | None
    attempts: int
    reason: str
    sha256: str
    path: Path | None = None  # the cached image, for ok and cached


async def download_all(
    base_url: str,
    galaxies: pd.DataFrame,
    cache: CutoutCache,
    geometry: dict,
    client: dict,
    seed: int = 0,
    show_progress: bool = True,
    job: str | None = None,
) -> list[Outcome]:
    """Download each galaxy's cutout into ``cache`` unless it is already there; one Outcome per row of ``galaxies``, in its order.

    ``geometry`` holds the cutout's ``GEOMETRY_KEYS``, ``client`` the ``client_options.CLIENT_KEYS``. ``job`` names
    this writer's staging folder in the cache (default: one per process); several jobs can fill
    one cache at once, and a job started again under the same name first clears what its killed
    predecessor left half-written. The staging folder is removed however the run ends.

    Raises ``ServiceUnreachable`` (after cancelling the downloads in flight) once ``UNREACHABLE_AFTER``
    cutouts, or every cutout fetched if fewer, have failed without a single connection to the host.
    """
    url = cutout_url(base_url, cache.release)
    policy = RetryPolicy(
        max_attempts=client["max_attempts"],
        timeout_s=client["timeout_s"],
        backoff_base_s=client["backoff_base_s"],
        backoff_max_s=client["backoff_max_s"],
    )
    check = jpeg_checker(geometry["size"])
    limiter = RateLimiter(client["max_rate"])
    rng = random.Random(seed)
    semaphore = asyncio.Semaphore(client["concurrency"])
    staging = cache.root / f".incoming-{job or f'pid{os.getpid()}'}"
    if staging.exists():
        log.info("removing %s, left half-written by a killed run", staging)
        shutil.rmtree(staging)
    staging.mkdir(parents=True)
    try:
        return await _download(url, galaxies, cache, staging, geometry, client, policy, check, limiter, rng, semaphore, show_progress)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def unreachable_error(url: str, failures: list[Outcome]) -> ServiceUnreachable:
    """The one-line error for cutouts that all failed without any connection to the host of ``url``."""
    host = urlsplit(url).netloc or url
    return ServiceUnreachable(
        f"cannot reach the cutout service at {host}: {len(failures)} cutout(s) failed, {sum(o.attempts for o in failures)} attempts "
        f"in all, without a single connection (last: {failures[-1].reason}); check the service's address (the source and "
        "sdss.base_url settings) and the network",
        attempts=sum(o.attempts for o in failures),
    )


async def _download(
    url, galaxies, cache, staging, geometry, client, policy, check, limiter, rng, semaphore, show_progress
) -> list[Outcome]:
    async def one(session: aiohttp.ClientSession, row) -> Outcome:
        objid = int(row.objid)
        try:
            scale = cutout_scale(row.petroR90_r, geometry)
        except ValueError as err:
            return Outcome(objid, "rejected", None, 0, str(err), "")
        params = request_params(row.ra, row.dec, scale, geometry["size"])
        path = cache.path(params)
        if path.exists():
            return Outcome(objid, "cached", None, 0, "", hashlib.sha256(path.read_bytes()).hexdigest(), path)
        async with semaphore:
            try:
                body, attempts = await get_with_retries(session, url, params, check, policy, rng, limiter)
            except OffFootprint as err:
                return Outcome(objid, "missing", err.status, err.attempts, str(err), "")
            except PermanentError as err:
                return Outcome(objid, "rejected", err.status, err.attempts, str(err), "")
            except FetchError as err:
                return Outcome(objid, "failed", err.status, err.attempts, str(err), "")
        path.parent.mkdir(exist_ok=True)
        write_bytes_via(staging, path, body)
        return Outcome(objid, "ok", 200, attempts, "", hashlib.sha256(body).hexdigest(), path)

    watch = ConnectionWatch()
    connector = aiohttp.TCPConnector(limit=client["concurrency"])
    async with aiohttp.ClientSession(
        headers={"User-Agent": USER_AGENT}, connector=connector, trace_configs=[watch.trace_config()]
    ) as session:
        tasks = [asyncio.create_task(one(session, row)) for row in galaxies.itertuples(index=False)]
        unreached: list[Outcome] = []  # failed while no connection to the host had ever been made
        try:
            with tqdm(total=len(tasks), desc="cutouts", unit="img", disable=not show_progress, mininterval=2.0) as bar:
                for done in asyncio.as_completed(tasks):
                    outcome = await done
                    bar.update()
                    if outcome.status == "failed" and not watch.connected:
                        unreached.append(outcome)
                        if len(unreached) >= UNREACHABLE_AFTER:
                            raise unreachable_error(url, unreached)
            if unreached and not watch.connected:
                raise unreachable_error(url, unreached)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)  # let them unwind before the session closes
        return [task.result() for task in tasks]
