"""Where the SkyServer is: the real SDSS service (``source: sdss``) or the local demo sky (``source: demo``)."""

from __future__ import annotations

import contextlib
from typing import Iterator

from .demo_server import DEFAULT_MAX_ROWS, running_demo_sky


def sql_url(base_url: str, release: str) -> str:
    return f"{base_url.rstrip('/')}/{release}/SkyServerWS/SearchTools/SqlSearch"


def cutout_url(base_url: str, release: str) -> str:
    return f"{base_url.rstrip('/')}/{release}/SkyServerWS/ImgCutout/getjpeg"


@contextlib.contextmanager
def skyserver_base_url(settings: dict) -> Iterator[str]:
    """Yield the base URL to talk to; for ``source: demo`` start the demo SkyServer for the duration."""
    source = settings["source"]
    if source == "sdss":
        yield settings["sdss"]["base_url"]
    elif source == "demo":
        demo = settings["demo"]
        with running_demo_sky(demo["sky_dir"], seed=demo["seed"], max_rows=demo.get("max_rows", DEFAULT_MAX_ROWS)) as url:
            yield url
    else:
        raise ValueError(f"source must be 'demo' or 'sdss', got {source!r}")
