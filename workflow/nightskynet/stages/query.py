"""Stage ``query``: Galaxy Zoo 1 vote fractions and positions from SkyServer's SqlSearch.

Pages through each table by objid (``SELECT TOP n ... WHERE z.objid > last ORDER BY z.objid``)
until a page comes back empty, so a server row cap of any size never truncates the catalog
silently. Every answer is checked before it is parsed; rows are validated and what is dropped
is counted by reason in the log.
"""

from __future__ import annotations

import asyncio
import io
import logging
import random
from typing import Mapping

import aiohttp
import numpy as np
import pandas as pd

from ..core.commands import File, Run, Settings
from ..core.errors import SkyServerError
from ..core.tables import write_csv_and_fits
from ..sky.http_retry import USER_AGENT, PermanentError, RetryPolicy, TransientError, describe_error_body, get_with_retries
from ..sky.sky_source import release, skyserver_base_url, sql_url
from ..sky.votes import votes_kind

log = logging.getLogger(__name__)

ZOO_FIELDS = ("objid", "ra", "dec", "nvote", "p_el", "p_cw", "p_acw", "p_edge", "p_dk", "p_mg", "p_cs")
FRACTIONS = ("p_el", "p_cw", "p_acw", "p_edge", "p_dk", "p_mg", "p_cs")
CATALOG_COLUMNS = (*ZOO_FIELDS, "petroR90_r", "table", "votes")


def build_sql(table: str, after_objid: int, top: int) -> str:
    cols = ", ".join(f"z.{c}" for c in ZOO_FIELDS)
    return (
        f"SELECT TOP {top} {cols}, p.petroR90_r FROM {table} AS z "
        f"JOIN PhotoObj AS p ON p.objid = z.objid WHERE z.objid > {after_objid} ORDER BY z.objid"
    )


def check_sql_answer(status: int, headers: Mapping[str, str], body: bytes) -> None:
    """Accept only a 200 whose body is a #Table1 CSV; classify everything else."""
    if status == 200 and body.lstrip().startswith(b"#Table1"):
        return
    reason = describe_error_body(body)
    if status == 200 or status == 429 or status >= 500:
        raise TransientError(f"SkyServer SqlSearch HTTP {status}: {reason}", status=status)
    raise PermanentError(f"SkyServer SqlSearch HTTP {status}: {reason}", status=status)


def parse_table_csv(body: bytes) -> pd.DataFrame:
    """Parse a ``#Table1`` CSV body into typed columns (objid as int64)."""
    text = body.decode("utf-8")
    first, _, rest = text.lstrip().partition("\n")
    if first.strip() != "#Table1":
        raise SkyServerError(f"expected '#Table1' as first line, got {first[:80]!r}")
    if not rest.strip():
        return pd.DataFrame(columns=list(ZOO_FIELDS) + ["petroR90_r"])
    frame = pd.read_csv(io.StringIO(rest), dtype={"objid": "int64", "nvote": "int64"})
    return frame


async def fetch_table(
    session: aiohttp.ClientSession, url: str, table: str, page_size: int, limit: int, policy: RetryPolicy, rng: random.Random
) -> pd.DataFrame:
    pages: list[pd.DataFrame] = []
    last, total = -1, 0
    while True:
        top = page_size if limit <= 0 else min(page_size, limit - total)
        if top <= 0:
            break
        body, attempts = await get_with_retries(
            session, url, {"cmd": build_sql(table, last, top), "format": "csv"}, check_sql_answer, policy, rng
        )
        page = parse_table_csv(body)
        log.info("%s: page after objid %d: %d rows (%d attempt%s)", table, last, len(page), attempts, "s" * (attempts > 1))
        if page.empty:
            break
        if not page["objid"].is_monotonic_increasing or page["objid"].iloc[0] <= last:
            raise SkyServerError(f"{table}: page after objid {last} is not ordered by objid; cannot page safely")
        pages.append(page)
        total += len(page)
        last = int(page["objid"].iloc[-1])
    frame = pd.concat(pages, ignore_index=True) if pages else pd.DataFrame(columns=list(ZOO_FIELDS) + ["petroR90_r"])
    frame["table"] = table
    return frame


def validate_rows(frame: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, int]]:
    """Drop rows that cannot be right; return the kept rows and the count dropped per reason."""
    dropped: dict[str, int] = {}
    keep = pd.Series(True, index=frame.index)

    def drop(reason: str, bad: pd.Series) -> None:
        bad = bad & keep
        if bad.any():
            dropped[reason] = int(bad.sum())
            keep.loc[bad] = False

    drop("missing values", frame[list(ZOO_FIELDS)].isna().any(axis=1))
    for col in FRACTIONS:
        drop(f"{col} outside [0, 1]", ~frame[col].between(0.0, 1.0))
    drop("nvote <= 0", ~(frame["nvote"] > 0))
    drop("ra outside [0, 360]", ~frame["ra"].between(0.0, 360.0))
    drop("dec outside [-90, 90]", ~frame["dec"].between(-90.0, 90.0))
    drop("duplicate objid", frame["objid"].duplicated(keep="first"))
    return frame[keep].reset_index(drop=True), dropped


async def fetch_catalog(
    base_url: str, release: str, tables: list[str], page_size: int, limit: int, policy: RetryPolicy, seed: int = 0
) -> pd.DataFrame:
    url = sql_url(base_url, release)
    rng = random.Random(seed)
    frames = []
    async with aiohttp.ClientSession(headers={"User-Agent": USER_AGENT}) as session:
        for table in tables:
            remaining = 0 if limit <= 0 else limit - sum(len(f) for f in frames)
            if limit > 0 and remaining <= 0:
                break
            frames.append(await fetch_table(session, url, table, page_size, remaining, policy, rng))
    return pd.concat(frames, ignore_index=True)


def run(
    *,
    catalog: File,
    catalog_fits: File,
    settings: Settings,
    page_size: Run[int],
    sql_timeout_s: Run[float],
    max_attempts: Run[int],
    demo_max_rows: Run[int],
) -> pd.DataFrame:
    """Fetch, validate and write the catalog (CSV and FITS); return it.

    ``settings``: ``source``, its section (``sdss`` or ``demo``) and ``query`` (tables, limit): what
    decides the catalog. ``page_size``, ``sql_timeout_s``, ``max_attempts`` and, for the demo sky,
    ``demo_max_rows``: how it is fetched, which never changes the catalog.
    """
    q = settings["query"]
    policy = RetryPolicy(max_attempts=max_attempts, timeout_s=sql_timeout_s)
    with skyserver_base_url(settings, demo_max_rows=demo_max_rows) as base_url:
        log.info("querying %s (%s) tables %s", base_url, release(settings), ", ".join(q["tables"]))
        raw = asyncio.run(fetch_catalog(base_url, release(settings), list(q["tables"]), page_size, q["limit"], policy))
    table, dropped = validate_rows(raw)
    # every table that shows the demo sky's votes says they are simulated
    table["votes"] = votes_kind(settings["source"])
    for reason, count in dropped.items():
        log.warning("dropped %d rows: %s", count, reason)
    table = table[list(CATALOG_COLUMNS)].sort_values("objid").reset_index(drop=True)
    table["objid"] = table["objid"].astype(np.int64)
    write_csv_and_fits(catalog, catalog_fits, table)
    log.info("wrote %d galaxies (%d fetched, %d dropped) to %s", len(table), len(raw), len(raw) - len(table), catalog)
    return table
