"""Where the SkyServer is: the real SDSS service (``source: sdss``) or the local demo sky (``source: demo``).

Under ``source: demo`` no ``sdss.*`` setting is read, and under ``source: sdss`` no ``demo.*``
setting, so the settings of the source not in use never change a result.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Iterator

from ..core.errors import SettingsError

DEMO_RELEASE = "dr17"  # the demo SkyServer answers on any release's path; the workflow uses this one


def sql_url(base_url: str, release: str) -> str:
    return f"{base_url.rstrip('/')}/{release}/SkyServerWS/SearchTools/SqlSearch"


def cutout_url(base_url: str, release: str) -> str:
    return f"{base_url.rstrip('/')}/{release}/SkyServerWS/ImgCutout/getjpeg"


def release(settings: dict) -> str:
    """The data release in the service's URL."""
    return settings["sdss"]["release"] if settings["source"] == "sdss" else DEMO_RELEASE


def service_id(settings: dict) -> str:
    """What identifies the service's images, for caching: its URL, or the demo sky's folder and seed."""
    if settings["source"] == "sdss":
        return settings["sdss"]["base_url"].rstrip("/")
    demo = settings["demo"]
    scaled = f" scale_to {demo['scale_to']}" if demo.get("scale_to") else ""  # the bundled sky keeps the key it always had
    return f"demo-sky {Path(demo['sky_dir']).resolve()} seed {demo['seed']}{scaled}"


@contextlib.contextmanager
def skyserver_base_url(settings: dict, demo_max_rows: int | None = None) -> Iterator[str]:
    """Yield the base URL to talk to; for ``source: demo`` start the demo SkyServer for the duration."""
    source = settings["source"]
    if source == "sdss":
        yield settings["sdss"]["base_url"]
    elif source == "demo":
        from .demo_server import DEFAULT_MAX_ROWS, running_demo_sky  # only demo runs load the server

        demo = settings["demo"]
        with running_demo_sky(
            demo["sky_dir"], seed=demo["seed"], max_rows=demo_max_rows or DEFAULT_MAX_ROWS, scale_to=demo.get("scale_to", 0)
        ) as url:
            yield url
    else:
        raise SettingsError(f"source must be 'demo' or 'sdss', got {source!r}")
