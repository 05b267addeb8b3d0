"""A local SkyServer over the demo sky: the two endpoints the workflow uses, answered as the real one does.

* ``GET /{release}/SkyServerWS/SearchTools/SqlSearch?cmd=<sql>&format=csv|json`` answers the query
  stage's paged SQL (``SELECT TOP n z.<cols>[, p.petroR90_r] FROM zooSpec|zooNoSpec AS z
  [JOIN PhotoObj AS p ON p.objid = z.objid] WHERE z.objid > N ORDER BY z.objid``) with a
  ``#Table1`` CSV body, capped at ``max_rows`` rows like the real 500,000-row cap (silently).
  Anything else is a 400 with the real JSON error body.
* ``GET /{release}/SkyServerWS/ImgCutout/getjpeg?ra=&dec=&scale=&width=&height=`` answers a JPEG
  cutout resampled from the stored images around (ra, dec); width and height are silently clipped
  to [64, 2048]; off the demo footprint it is a 404 with a JPEG body; bad ra/dec/scale is a 400 JSON.

Run it alone with ``python -m nightskynet demo-sky``: it serves until Ctrl-C. The workflow starts it
with ``running_demo_sky``, as a child that exits by itself when its parent dies, however the parent
dies (even ``kill -9``, which skips the parent's own clean-up): see ``EXIT_WITH_PARENT_ENV``.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import math
import os
import re
import selectors
import subprocess
import sys
import tempfile
import threading
import time
from collections import OrderedDict
from pathlib import Path
from typing import Iterator

import numpy as np
from aiohttp import web
from PIL import Image, ImageDraw

from ..core.errors import DemoSkyError
from .demo_sky import (
    FOOTPRINT_DEC,
    FOOTPRINT_RA,
    NATIVE_SCALE,
    STORED_SIZE_PX,
    TABLES,
    ZOO_COLUMNS,
    DemoSky,
    SkyIndex,
    build_demo_sky,
)

READY_PREFIX = "NIGHTSKYNET_DEMO_SKY_READY "
# Set to 1 by ``running_demo_sky`` for its child: the server then also exits when its stdin, a pipe the
# parent holds open and never writes to, reaches end of file (which the operating system makes happen
# when the parent dies, on every platform), or, on POSIX, when its parent process changes (the orphan
# was adopted), whichever comes first. Unset, as when run by hand, it serves until Ctrl-C.
EXIT_WITH_PARENT_ENV = "NIGHTSKYNET_DEMO_SKY_EXIT_WITH_PARENT"
PARENT_POLL_S = 0.5
RELEASE_RE = re.compile(r"^dr([7-9]|1[0-9])$", re.I)
SQL_RE = re.compile(
    r"^\s*SELECT\s+TOP\s+(?P<top>\d+)\s+(?P<cols>.+?)\s+FROM\s+(?P<table>\w+)\s+AS\s+z"
    r"(?P<join>\s+JOIN\s+PhotoObj\s+AS\s+p\s+ON\s+p\.objid\s*=\s*z\.objid)?"
    r"\s+WHERE\s+z\.objid\s*>\s*(?P<after>-?\d+)\s+ORDER\s+BY\s+z\.objid\s*;?\s*$",
    re.IGNORECASE | re.DOTALL,
)
DEFAULT_MAX_ROWS = 500_000
_FORMATS = {"objid": "{:d}", "dr7objid": "{:d}", "nvote": "{:d}", "ra": "{:.6f}", "dec": "{:.6f}", "petroR90_r": "{:.4f}"}


def _json_error(status: int, error_type: str, message: str) -> web.Response:
    body = {"ErrorCode": status, "ErrorType": error_type, "ErrorMessage": message, "LogMessage": ""}
    return web.Response(status=status, text=json.dumps(body), content_type="application/json")


class SqlRejected(ValueError):
    pass


class DemoSkyServer:
    """The demo sky's answers, independent of HTTP (so tests can call them directly too)."""

    def __init__(self, sky: DemoSky, max_rows: int = DEFAULT_MAX_ROWS, jpeg_quality: int = 90):
        self.sky = sky
        self.max_rows = max_rows
        self.jpeg_quality = jpeg_quality
        cat = sky.catalog.sort_values("objid").reset_index(drop=True)
        self.tables = {name: cat[cat["table"] == name].reset_index(drop=True) for name in TABLES}
        self.catalog = cat
        self._ra, self._dec = cat["ra"].to_numpy(), cat["dec"].to_numpy()
        names, self._image_of = np.unique(cat["image"].to_numpy(), return_inverse=True)  # a scaled sky repeats images
        self._images = [sky.sky_dir / name for name in names]
        self._index = SkyIndex(self._ra, self._dec)
        self._resized: OrderedDict[tuple[int, int], Image.Image] = OrderedDict()

    # ---- SQL -------------------------------------------------------------------------------
    def sql_rows(self, sql: str) -> tuple[list[str], list[list[object]]]:
        m = SQL_RE.match(sql)
        if not m:
            raise SqlRejected(
                "Incorrect syntax: the demo sky answers only SELECT TOP n z.<cols> FROM zooSpec|zooNoSpec AS z [JOIN PhotoObj "
                "AS p ON p.objid = z.objid] WHERE z.objid > N ORDER BY z.objid"
            )
        table_name = next((t for t in TABLES if t.lower() == m["table"].lower()), None)
        if table_name is None:
            raise SqlRejected(f"Invalid object name '{m['table']}'.")
        joined = m["join"] is not None
        columns: list[str] = []
        for raw in m["cols"].split(","):
            prefix, _, name = raw.strip().partition(".")
            name = name.strip()
            known = (
                {c.lower(): c for c in ZOO_COLUMNS}
                if prefix.lower() == "z"
                else ({"petror90_r": "petroR90_r"} if prefix.lower() == "p" and joined else {})
            )
            if name.lower() not in known:
                raise SqlRejected(f"Invalid column name '{raw.strip()}'.")
            columns.append(known[name.lower()])
        top = min(int(m["top"]), self.max_rows)
        table = self.tables[table_name]
        rows = table[table["objid"] > int(m["after"])].head(top)
        # column by column, so 64-bit objids never pass through float64
        return columns, [list(r) for r in zip(*(rows[c].tolist() for c in columns), strict=True)]

    @staticmethod
    def rows_as_csv(columns: list[str], rows: list[list[object]]) -> str:
        out = ["#Table1", ",".join(columns)]
        fmts = [_FORMATS.get(c, "{:.3f}") for c in columns]
        for row in rows:
            out.append(",".join(fmt.format(int(v) if fmt == "{:d}" else float(v)) for fmt, v in zip(fmts, row, strict=True)))
        return "\n".join(out) + "\n"

    @staticmethod
    def rows_as_json(columns: list[str], rows: list[list[object]]) -> str:
        records = [
            {c: (int(v) if c in ("objid", "dr7objid", "nvote") else float(v)) for c, v in zip(columns, row, strict=True)} for row in rows
        ]
        return json.dumps([{"TableName": "Table1", "Rows": records}, {"TableName": "SqlQuery", "Rows": []}])

    # ---- cutouts ---------------------------------------------------------------------------
    def in_footprint(self, ra: float, dec: float) -> bool:
        return FOOTPRINT_RA[0] <= ra <= FOOTPRINT_RA[1] and FOOTPRINT_DEC[0] <= dec <= FOOTPRINT_DEC[1]

    def _stored_resized(self, image: int, size: int) -> Image.Image:
        key = (image, size)
        if key in self._resized:
            self._resized.move_to_end(key)
            return self._resized[key]
        with Image.open(self._images[image]) as im:
            im.draft("RGB", (size, size))  # let libjpeg decode at a reduced scale when shrinking
            img = im.convert("RGB").resize((size, size), Image.Resampling.LANCZOS)
        self._resized[key] = img
        if len(self._resized) > 2048:
            self._resized.popitem(last=False)
        return img

    def cutout(self, ra: float, dec: float, scale: float, width: int, height: int) -> bytes:
        """A JPEG of width x height pixels at ``scale`` arcsec/px centred on (ra, dec), north up, east left."""
        canvas = Image.new("RGB", (width, height), (0, 0, 0))
        field_radius = math.hypot(width, height) * scale / 2 + STORED_SIZE_PX * NATIVE_SCALE / math.sqrt(2)
        candidates = self._index.candidates(ra, dec, field_radius / 3600)
        sep_deg = self._index.separations_deg(candidates, ra, dec)
        inside = sep_deg * 3600 < field_radius
        near, sep_deg = candidates[inside], sep_deg[inside]
        size = max(1, round(STORED_SIZE_PX * NATIVE_SCALE / scale))
        for index in near[np.argsort(-sep_deg, kind="stable")]:  # nearest galaxy drawn last, on top
            g_ra, g_dec = self._ra[index], self._dec[index]
            d_ra = ((g_ra - ra + 180.0) % 360.0) - 180.0
            x = width / 2 - d_ra * math.cos(math.radians(dec)) * 3600 / scale
            y = height / 2 - (g_dec - dec) * 3600 / scale
            canvas.paste(self._stored_resized(int(self._image_of[index]), size), (round(x - size / 2), round(y - size / 2)))
        buf = io.BytesIO()
        canvas.save(buf, format="JPEG", quality=self.jpeg_quality)
        return buf.getvalue()

    @staticmethod
    def error_jpeg(width: int, height: int, text: str) -> bytes:
        img = Image.new("RGB", (width, height), (40, 40, 40))
        ImageDraw.Draw(img).text((4, height // 2 - 6), text, fill=(255, 80, 80))
        buf = io.BytesIO()
        img.save(buf, format="JPEG", quality=75)
        return buf.getvalue()


UNKNOWN_RELEASE = "<html><body><h1>Skyserver Error</h1>Unknown release</body></html>"  # what the real service's proxy answers


def cutout_request(query) -> tuple[tuple[float, float, float, int, int] | None, web.Response | None]:
    """(ra, dec, scale, width, height) of a getjpeg query, sizes clipped to [64, 2048] as the real service does;
    or the 400 JSON answer the real service gives to a bad parameter."""
    try:
        ra, dec, scale = float(query.get("ra", "nan")), float(query.get("dec", "nan")), float(query.get("scale", "0.396127"))
        width, height = int(float(query.get("width", "128"))), int(float(query.get("height", "128")))
    except ValueError as err:
        return None, _json_error(400, "ImgCutout", f"Bad parameter: {err}")
    checks = (
        (0.0 <= ra <= 360.0, f"ra must be in [0, 360], got {ra}"),
        (-90.0 <= dec <= 90.0, f"dec must be in [-90, 90], got {dec}"),
        (0.015 <= scale <= 60.0, f"scale must be in [0.015, 60], got {scale}"),
    )
    for ok, message in checks:
        if not ok:
            return None, _json_error(400, "ImgCutout", message)
    return (ra, dec, scale, min(max(width, 64), 2048), min(max(height, 64), 2048)), None


def make_app(server: DemoSkyServer, latency_s: float = 0.0) -> web.Application:
    """The aiohttp application serving ``server`` on the real SkyServer paths."""

    async def answerable(request: web.Request) -> web.Response | None:
        """After the injected latency: the error page of an unknown release, or None to go on."""
        if latency_s:
            await asyncio.sleep(latency_s)
        if not RELEASE_RE.match(request.match_info["release"]):
            return web.Response(status=404, text=UNKNOWN_RELEASE, content_type="text/html")
        return None

    async def sql_search(request: web.Request) -> web.Response:
        if (refused := await answerable(request)) is not None:
            return refused
        cmd, fmt = request.query.get("cmd"), request.query.get("format", "csv").lower()
        if not cmd:
            return _json_error(400, "SqlSearch", "The cmd parameter is required.")
        try:
            columns, rows = server.sql_rows(cmd)
        except SqlRejected as err:
            return _json_error(400, "System.Data.SqlClient.SqlException", str(err))
        if fmt == "json":
            return web.Response(text=server.rows_as_json(columns, rows), content_type="application/json")
        return web.Response(text=server.rows_as_csv(columns, rows), content_type="text/plain")

    async def getjpeg(request: web.Request) -> web.Response:
        if (refused := await answerable(request)) is not None:
            return refused
        params, bad = cutout_request(request.query)
        if bad is not None:
            return bad
        ra, dec, scale, width, height = params
        if not server.in_footprint(ra, dec):
            return web.Response(status=404, body=server.error_jpeg(width, height, "Outside footprint"), content_type="image/jpeg")
        body = await asyncio.get_running_loop().run_in_executor(None, server.cutout, ra, dec, scale, width, height)
        return web.Response(body=body, content_type="image/jpeg")

    app = web.Application()
    app.router.add_get("/{release}/SkyServerWS/SearchTools/SqlSearch", sql_search)
    app.router.add_get("/{release}/SkyServerWS/ImgCutout/getjpeg", getjpeg)
    return app


async def serve(
    sky_dir: str,
    seed: int,
    host: str,
    port: int,
    max_rows: int,
    latency_s: float,
    scale_to: int = 0,
    exit_with_parent: bool | None = None,
) -> None:
    """Serve the demo sky on host:port (0: a free port) and print the ready line with its URL.

    Serves until cancelled (Ctrl-C); with ``exit_with_parent`` (default: whether ``EXIT_WITH_PARENT_ENV``
    is 1) also returns as soon as the parent process is gone: stdin at end of file, or another parent.
    """
    if exit_with_parent is None:
        exit_with_parent = os.environ.get(EXIT_WITH_PARENT_ENV) == "1"
    parent_pid = os.getppid()
    parent_gone = asyncio.Event()
    watcher = None
    if exit_with_parent:
        watch_stdin_until_eof(parent_gone)
        if os.name == "posix":  # on Windows the parent pid never changes (and a venv's launcher sits in between)
            watcher = asyncio.create_task(watch_parent_pid(parent_pid, parent_gone))
    server = DemoSkyServer(build_demo_sky(sky_dir, seed, scale_to), max_rows=max_rows)
    runner = web.AppRunner(make_app(server, latency_s), access_log=None, shutdown_timeout=5.0)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    bound_host, bound_port = runner.addresses[0][:2]
    print(f"{READY_PREFIX}http://{bound_host}:{bound_port}", flush=True)
    try:
        await parent_gone.wait()
        print(f"demo SkyServer: its parent (pid {parent_pid}) is gone; stopping", file=sys.stderr, flush=True)
    finally:
        if watcher is not None:
            watcher.cancel()
        await runner.cleanup()


def watch_stdin_until_eof(parent_gone: asyncio.Event) -> None:
    """Set ``parent_gone`` (from a daemon thread) when stdin reaches end of file: the parent's end of the pipe closed.

    A blocking read in a thread rather than the event loop's pipe reader, so it works on every
    platform and for any kind of stdin; anything written to it is read and ignored.
    """
    loop = asyncio.get_running_loop()
    try:
        fd = sys.stdin.fileno()
    except (AttributeError, OSError, ValueError):  # no stdin at all: the pid watch alone decides
        return

    def wait_for_eof() -> None:
        try:
            while os.read(fd, 4096):
                pass
        except OSError:
            pass
        try:
            loop.call_soon_threadsafe(parent_gone.set)
        except RuntimeError:  # the loop already closed: the server stopped some other way
            pass

    threading.Thread(target=wait_for_eof, name="demo-sky-stdin-eof", daemon=True).start()


async def watch_parent_pid(parent_pid: int, parent_gone: asyncio.Event) -> None:
    """Set ``parent_gone`` once this process's parent is no longer ``parent_pid`` (POSIX re-parents an orphan).

    Catches a parent killed while a process it forked still holds the stdin pipe open.
    """
    while os.getppid() == parent_pid:
        await asyncio.sleep(PARENT_POLL_S)
    parent_gone.set()


def wait_until_ready(proc: subprocess.Popen, errors, startup_timeout_s: float) -> str:
    """The base URL the child prints once it listens; a DemoSkyError (with its last word) when it stops or stays silent."""
    deadline = time.monotonic() + startup_timeout_s
    line = ""
    with selectors.DefaultSelector() as ready:
        ready.register(proc.stdout, selectors.EVENT_READ)
        while (remaining := deadline - time.monotonic()) > 0 and ready.select(remaining):
            line = proc.stdout.readline()  # the child prints one line, the ready line, on stdout
            if line.startswith(READY_PREFIX) or not line:
                break
    if line.startswith(READY_PREFIX):
        return line[len(READY_PREFIX) :].strip()
    exited = proc.poll() is not None
    proc.kill()
    proc.wait(timeout=10)
    errors.seek(0)
    said = ([ln for ln in errors.read().strip().splitlines() if ln.strip()] or ["no output"])[-1]
    if exited:
        raise DemoSkyError(f"the demo SkyServer stopped before it was ready: {said}")
    raise DemoSkyError(f"the demo SkyServer did not start within {startup_timeout_s:g} s: {said}")


def stop(proc: subprocess.Popen) -> None:
    """End the child now (SIGTERM, then SIGKILL after 10 s) and reap it."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@contextlib.contextmanager
def running_demo_sky(
    sky_dir: str | Path,
    seed: int = 1,
    max_rows: int = DEFAULT_MAX_ROWS,
    latency_s: float = 0.0,
    startup_timeout_s: float = 60.0,
    scale_to: int = 0,
) -> Iterator[str]:
    """Start the demo SkyServer in a child process on a free loopback port; yield its base URL; stop it.

    The child's stdin is a pipe this process holds open: if this process dies without stopping it
    (``kill -9``, a crash), the pipe reaches end of file and the child exits by itself (``EXIT_WITH_PARENT_ENV``).
    """
    options = {
        "--sky-dir": Path(sky_dir).resolve(),
        "--seed": seed,
        "--host": "127.0.0.1",
        "--port": 0,
        "--max-rows": max_rows,
        "--latency-ms": latency_s * 1000,
        "--scale-to": scale_to,
    }
    cmd = [sys.executable, "-m", "nightskynet", "demo-sky", *(str(part) for item in options.items() for part in item)]
    with tempfile.TemporaryFile(mode="w+") as errors:
        env = {**os.environ, EXIT_WITH_PARENT_ENV: "1"}
        proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=errors, text=True, env=env)
        try:
            yield wait_until_ready(proc, errors, startup_timeout_s)
        finally:
            stop(proc)
            proc.stdin.close()
            proc.stdout.close()
