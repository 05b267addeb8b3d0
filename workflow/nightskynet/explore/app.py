"""``nightskynet explore``: a local web app over one finished run (aiohttp, Jinja2 pages, a small JSON API).

Pages: a galaxy (its cutout, the network's probabilities beside the volunteers' votes, its scores, links out to
the SkyServer and Legacy Survey viewers, its nearest neighbours), search (objid, position, an uploaded image),
lists paged and sorted on the server (the most unusual, the most merger-like, the largest disagreements, ...,
filtered by class, probability, split and status), a sky map (a click lists the galaxies near that point), and
"more like these": marks of yes or no on any galaxy, the whole catalog ranked by a model of them, exported as
CSV, FITS or VOTable. The app reads what the run wrote and writes only its marks file (``explore.marks``).

Requests name galaxies by objid and lists by name: no parameter is ever opened as a path. A malformed parameter
is answered 400 with what was wrong, an unknown objid 404, never a traceback. The JSON API writes every objid as a
string: a 64-bit objid as a JSON number loses its last digits in a browser (JavaScript's numbers hold 53 bits), and
would name another galaxy.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import json
import logging
import math
import tempfile
import threading
from pathlib import Path

import jinja2
import numpy as np
from aiohttp import web

from ..core.errors import InputError
from ..core.layout import RunFiles
from ..core.vocabulary import CATALOG_SPLITS, CLASS_COLOURS, CLASS_LABELS, CLASS_NAMES, PROB_COLUMNS, STATUSES
from ..sky.positions import parse_angle
from .cutout_store import CutoutStore
from .marks import MARKS, Marks
from .ranking import Ranking, rank
from .run_data import LISTS, Filters, QueryError, RunData, objid_in
from .sky_map import SkyMap

log = logging.getLogger(__name__)

UPLOAD_LIMIT = 5 * 1024 * 1024  # bytes of an uploaded image
NEIGHBOURS = 12  # on a galaxy's page
PER_PAGE = (10, 200)  # a list page's least and most rows
DEFAULT_PER_PAGE = 50
SUGGESTED, INFORMATIVE = 12, 4  # shown on the ranking page
CONE_LIMIT = 200
MAX_RADIUS = 36_000.0  # arcsec (10 degrees): a cone search, not a query of the whole sky


class Explorer:
    """The run, its marks and the ranking they give, and the engine for uploaded images (opened on first use)."""

    def __init__(self, data: RunData, marks: Marks, cutouts: CutoutStore):
        self.data, self.marks, self.cutouts = data, marks, cutouts
        pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="sky-map")
        self._sky = pool.submit(SkyMap, data)  # drawn while the server starts (1.5 s at 893,000 galaxies)
        pool.shutdown(wait=False)  # the thread ends with the drawing
        self.views = data.run.views()
        self._engine = None
        self._ranking: Ranking | None = None
        self._ranked_marks: dict[int, str] | None = None
        self._ranking_lock = threading.Lock()

    @property
    def sky(self) -> SkyMap:
        return self._sky.result()

    def ranking(self) -> Ranking:
        """The ranking of the marks as they stand (fitted again only when they changed). One fit at a time: a request
        that waited finds the marks made meanwhile already ranked by the fit before it."""
        with self._ranking_lock:
            marks = self.marks.snapshot()
            if self._ranking is None or marks != self._ranked_marks:
                rows = {m: self.data.rows_of([o for o, v in marks.items() if v == m]) for m in MARKS}
                self._ranking = rank(self.data.unit, self.data.classified, rows["yes"], rows["no"])
                self._ranked_marks = marks
            return self._ranking

    def marked_rows(self) -> np.ndarray:
        marked = np.zeros(self.data.n, dtype=bool)
        marked[self.data.rows_of(list(self.marks.snapshot()))] = True
        return marked

    def engine(self):
        if self._engine is None:
            from ..net.inference import open_engine

            self._engine = open_engine(self.data.run.model, "cpu", 2)
        return self._engine


# ---- parameters ---------------------------------------------------------------------------------


def _int(query, name: str, default: int, low: int, high: int) -> int:
    text = query.get(name)
    if text is None or text == "":
        return default
    try:
        value = int(text)
    except ValueError:
        raise QueryError(f"{name} {text!r} is not a whole number") from None
    if not low <= value <= high:
        raise QueryError(f"{name} {value}: between {low} and {high}")
    return value


def _float(query, name: str, default: float | None, low: float, high: float) -> float | None:
    text = query.get(name)
    if text is None or text == "":
        return default
    try:
        value = float(text)
    except ValueError:
        raise QueryError(f"{name} {text!r} is not a number") from None
    if not (math.isfinite(value) and low <= value <= high):
        raise QueryError(f"{name} {value:g}: between {low:g} and {high:g}")
    return value


def _choice(query, name: str, allowed) -> str | None:
    value = query.get(name) or None
    if value is not None and value not in allowed:
        raise QueryError(f"{name} {value!r}: one of {', '.join(allowed)}")
    return value


def _position(query) -> tuple[float, float, float]:
    """(ra, dec in degrees, radius in arcsec) of ``ra``, ``dec`` (decimal degrees or sexagesimal) and ``radius``."""
    if not query.get("ra") or not query.get("dec"):
        raise QueryError("give ra and dec (decimal degrees, or sexagesimal: 10h21m00s or 10:21:00, +41d12m00s or +41:12:00)")
    try:
        ra, dec = parse_angle(query["ra"], "ra"), parse_angle(query["dec"], "dec")
    except ValueError as err:
        raise QueryError(f"position {query['ra']!r} {query['dec']!r}: {err}") from None
    if not (0 <= ra <= 360 and -90 <= dec <= 90):
        raise QueryError(f"ra {ra:g}, dec {dec:g}: not on the sky (ra 0-360, dec -90 to 90 degrees)")
    radius = _float(query, "radius", 10.0, 0.01, MAX_RADIUS)
    return ra, dec, radius


def _filters(query) -> Filters:
    return Filters(
        predicted=_choice(query, "predicted", CLASS_NAMES),
        split=_choice(query, "split", CATALOG_SPLITS),
        status=_choice(query, "status", tuple(STATUSES)),
        p_class=_choice(query, "p_class", CLASS_NAMES),
        p_min=_float(query, "p_min", 0.0, 0.0, 1.0),
        p_max=_float(query, "p_max", 1.0, 0.0, 1.0),
    )


# ---- pages and the API ---------------------------------------------------------------------------


@functools.cache
def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("nightskynet", "templates/explore"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.globals.update(
        classes=CLASS_NAMES,
        labels=CLASS_LABELS,
        colours=CLASS_COLOURS,
        lists=LISTS,
        splits=CATALOG_SPLITS,
        statuses=STATUSES,
    )
    env.filters["fmt"] = lambda v, spec=".3f": "n/a" if v is None else format(v, spec)
    return env


def page(name: str, **values) -> web.Response:
    return web.Response(text=environment().get_template(f"{name}.html.j2").render(**values), content_type="text/html")


def wants_json(request: web.Request) -> bool:
    return request.path.startswith("/api/") or request.path.startswith("/export/")


@web.middleware
async def errors(request: web.Request, handler):
    """A bad request answered 400 (404 for what is not there) with what was wrong; an unforeseen error 500, logged, never
    a traceback to the browser."""
    try:
        return await handler(request)
    except web.HTTPException:
        raise
    except (QueryError, ValueError) as err:
        status, message = 400, str(err)
    except KeyError as err:
        status, message = 404, f"{err.args[0]} is not in this run"
    except Exception:
        log.exception("%s %s failed", request.method, request.path_qs)
        status, message = 500, "the explorer failed on this request; its log says why"
    if wants_json(request):
        return web.json_response({"error": message}, status=status)
    response = page("error", message=message, status=status)
    response.set_status(status)
    return response


async def in_thread(fn, *args):
    """``fn(*args)`` in the default thread pool: the numpy and faiss work of a page runs off the event loop (and
    releases the GIL), so one slow request never holds up the others."""
    return await asyncio.get_running_loop().run_in_executor(None, fn, *args)


def routes(explorer: Explorer) -> web.RouteTableDef:
    r = web.RouteTableDef()
    data = explorer.data

    def galaxy_values(row: int) -> dict:
        g = data.galaxy(row)
        return {**g, "neighbours": data.neighbours(row, NEIGHBOURS), "mark": explorer.marks.snapshot().get(g["objid"])}

    @r.get("/")
    async def home(request):
        counts = {s: int((data.status == s).sum()) for s in STATUSES if (data.status == s).any()}
        return page("home", run=str(data.run.folder), n=data.n, counts=counts, marks=len(explorer.marks.snapshot()))

    @r.get(r"/galaxy/{objid}")
    async def galaxy(request):
        g = await in_thread(galaxy_values, objid_in(request.match_info["objid"], data))
        return page("galaxy", g=g, upload_limit=UPLOAD_LIMIT)

    @r.get(r"/api/galaxy/{objid}")
    async def api_galaxy(request):
        return web.json_response(await in_thread(galaxy_values, objid_in(request.match_info["objid"], data)))

    @r.get(r"/image/{objid:\d+}.jpg")
    async def image(request):
        objid = int(request.match_info["objid"])
        jpeg = await in_thread(explorer.cutouts.jpeg, objid)
        if jpeg is None:
            raise web.HTTPNotFound(text=f"no cutout of objid {objid} in this run")
        return web.Response(body=jpeg, content_type="image/jpeg", headers={"Cache-Control": "max-age=3600"})

    def list_values(request, name: str) -> dict:
        q = request.query
        filters = _filters(q)
        per_page = _int(q, "per_page", DEFAULT_PER_PAGE, *PER_PAGE)
        number = _int(q, "page", 1, 1, 10**7)
        ascending = _choice(q, "order", ("desc", "asc")) == "asc"
        rows, total = data.page(name, filters, number, per_page, ascending)
        pages = max(1, -(-total // per_page))
        return {"list": name, "rows": rows, "total": total, "page": number, "pages": pages, "per_page": per_page, "filters": filters}

    @r.get(r"/list/{name}")
    async def list_page(request):
        values = await in_thread(list_values, request, request.match_info["name"])
        query = {k: v for k, v in request.query.items() if k != "page"}
        return page("list", **values, about=LISTS.get(values["list"], ""), query=query)

    @r.get(r"/api/list/{name}")
    async def api_list(request):
        values = await in_thread(list_values, request, request.match_info["name"])
        values["filters"] = values["filters"].__dict__
        return web.json_response(values)

    def search_values(request) -> dict:
        q = request.query
        if q.get("objid"):
            return {"kind": "objid", "objid": str(data.objid[objid_in(q["objid"], data)])}
        ra, dec, radius = _position(q)
        return {"kind": "position", "ra": ra, "dec": dec, "radius": radius, "rows": data.cone(ra, dec, radius, CONE_LIMIT)}

    @r.get("/search")
    async def search_page(request):
        found = search_values(request)
        if found["kind"] == "objid":
            raise web.HTTPFound(f"/galaxy/{found['objid']}")
        return page("cone", **found)

    @r.get("/api/search")
    async def api_search(request):
        return web.json_response(search_values(request))

    async def looked_at_upload(request) -> dict:
        """The uploaded image read and looked at as predict does: refused with the reason, or its class and neighbours."""
        reader = await request.multipart()
        part = await reader.next()
        while part is not None and part.name != "image":
            part = await reader.next()
        if part is None:
            raise QueryError("no file: send the image as the form field 'image'")
        body = bytearray()
        while chunk := await part.read_chunk(65536):
            body.extend(chunk)
            if len(body) > UPLOAD_LIMIT:
                raise QueryError(f"the image is larger than {UPLOAD_LIMIT // (1024 * 1024)} MB: send a cutout, not a survey frame")
        return await in_thread(represent_upload, explorer, bytes(body), part.filename or "image")

    @r.post("/search/image")
    async def image_search_page(request):
        return page("image_search", **(await looked_at_upload(request)))

    @r.post("/api/image")
    async def api_image(request):
        return web.json_response(await looked_at_upload(request))

    @r.get("/sky")
    async def sky(request):
        return page("sky", box=explorer.sky.box, n=data.n)

    @r.get("/sky.png")
    async def sky_png(request):
        return web.Response(body=explorer.sky.png, content_type="image/png", headers={"Cache-Control": "max-age=3600"})

    @r.get("/api/cone")
    async def api_cone(request):
        ra, dec, radius = _position(request.query)
        return web.json_response({"ra": ra, "dec": dec, "radius": radius, "rows": data.cone(ra, dec, radius, CONE_LIMIT)})

    def ranking_values() -> dict:
        ranking = explorer.ranking()
        marked = explorer.marked_rows()
        best = ranking.best_unmarked(marked, SUGGESTED)
        informative = ranking.most_informative(marked, INFORMATIVE, best)
        marks = explorer.marks.snapshot()

        def shown(rows):
            return [{**data.summary(int(i)), "score": round(float(ranking.scores[i]), 4)} for i in rows]

        return {
            "yes": ranking.yes,
            "no": ranking.no,
            "suggested": shown(best),
            "informative": shown(informative),
            "marked": [{"objid": str(o), "mark": m} for o, m in sorted(marks.items())],
        }

    @r.get("/ranking")
    async def ranking_page(request):
        return page("ranking", **(await in_thread(ranking_values)))

    @r.get("/api/ranking")
    async def api_ranking(request):
        return web.json_response(await in_thread(ranking_values))

    @r.get("/api/marks")
    async def api_marks(request):
        return web.json_response({"marks": [{"objid": str(o), "mark": m} for o, m in sorted(explorer.marks.snapshot().items())]})

    @r.post("/api/marks")
    async def api_mark(request):
        try:
            body = await request.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise QueryError('send JSON: {"objid": "N", "mark": "yes" | "no" | "clear"}') from None
        if not isinstance(body, dict) or "objid" not in body or "mark" not in body:
            raise QueryError('send JSON: {"objid": "N", "mark": "yes" | "no" | "clear"}')
        row = objid_in(str(body["objid"]), data)
        mark = body["mark"]
        if mark not in (*MARKS, "clear"):
            raise QueryError(f"mark {mark!r}: yes, no or clear")
        objid = int(data.objid[row])
        await in_thread(explorer.marks.set, objid, None if mark == "clear" else mark)
        answer = {"objid": str(objid), "mark": None if mark == "clear" else mark, "marks": len(explorer.marks.snapshot())}
        return web.json_response(answer)

    @r.get(r"/export/ranking.{fmt}")
    async def export(request):
        fmt = request.match_info["fmt"]
        formats = {"csv": ("text/csv", ".csv"), "fits": ("application/fits", ".fits"), "vot": ("application/x-votable+xml", ".vot")}
        if fmt not in formats:
            raise QueryError(f"ranking.{fmt}: export as ranking.csv, ranking.fits or ranking.vot")
        body = await in_thread(export_ranking, explorer, formats[fmt][1])
        name = f"{data.run.folder.name}-ranking{formats[fmt][1]}"
        return web.Response(body=body, content_type=formats[fmt][0], headers={"Content-Disposition": f'attachment; filename="{name}"'})

    @r.get(r"/static/{name}")
    async def static(request):
        name = request.match_info["name"]
        if name not in STATIC:
            raise web.HTTPNotFound(text="no such file")
        return web.Response(text=static_text(name), content_type=STATIC[name])

    return r


STATIC = {"explore.css": "text/css", "explore.js": "application/javascript"}


@functools.cache
def static_text(name: str) -> str:
    return environment().loader.get_source(environment(), name)[0]


def represent_upload(explorer: Explorer, body: bytes, filename: str) -> dict:
    """An uploaded image, read and looked at as ``predict`` does (``looking.look_at``): refused with the reason, or the
    network's probabilities and the run's galaxies most like it."""
    from ..core.architecture import model_geometry
    from ..images.sources import psf_fwhm_px
    from ..net.inference import Calibration, answer
    from ..net.looking import Cutout, look_at

    engine, saved = explorer.engine()
    geometry, crop_size = model_geometry(saved)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "upload"
        path.write_bytes(body)
        looked = look_at([Cutout(path, psf_fwhm_px(geometry, None))], geometry["size"], crop_size)
    name = Path(filename).name
    if not looked.classified[0]:
        return {"filename": name, "refused": True, "status": looked.status[0], "reason": looked.notes[0], "neighbours": []}
    answers = answer(engine, looked.crops, Calibration.of(saved), explorer.views)  # averaged as the catalog's were
    p = {c: round(float(v), 4) for c, v in zip(CLASS_NAMES, answers.probabilities[0], strict=True)}
    return {
        "filename": name,
        "refused": False,
        "status": "classified",
        "reason": looked.notes[0],
        "p": p,
        "predicted": max(p, key=p.get),
        "neighbours": explorer.data.like(answers.features.astype(np.float32), NEIGHBOURS),
    }


def export_ranking(explorer: Explorer, suffix: str) -> bytes:
    """The ranking as a table: every classified galaxy with the catalog's columns and the score, best first."""
    import pandas as pd

    from ..core.tables import PIPELINE_COLUMNS, ColumnInfo, write_table

    data, ranking = explorer.data, explorer.ranking()
    rows = np.flatnonzero(np.isfinite(ranking.scores))
    rows = rows[np.argsort(-ranking.scores[rows], kind="stable")]
    marks = explorer.marks.snapshot()
    table = pd.DataFrame(
        {
            "rank": np.arange(1, len(rows) + 1),
            "objid": data.objid[rows],
            "score": np.round(ranking.scores[rows].astype(float), 6),
            "mark": [marks.get(int(o), "") for o in data.objid[rows]],
            "ra": data.ra[rows],
            "dec": data.dec[rows],
            "split": data.split[rows],
            "status": data.status[rows],
            "predicted": data.predicted[rows],
            **{c: np.round(data.p[rows, k].astype(float), 5) for k, c in enumerate(PROB_COLUMNS)},
            "unusual": np.round(data.unusual[rows].astype(float), 6),
            "merger_likeness": np.round(data.merger_likeness[rows].astype(float), 6),
        }
    )
    info = dict(PIPELINE_COLUMNS)
    info["rank"] = ColumnInfo(None, "1 for the galaxy most like the marked ones")
    info["score"] = ColumnInfo(None, "the marks' model's probability that the galaxy is of the kind marked yes")
    info["mark"] = ColumnInfo(None, "yes or no where marked, else empty")
    info["unusual"] = ColumnInfo(None, "1 - cosine similarity of the galaxy's k-th nearest other galaxy")
    info["merger_likeness"] = ColumnInfo(None, "likeness to the training mergers, by example")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"ranking{suffix}"
        write_table(path, table, info)
        return path.read_bytes()


def build_app(explorer: Explorer) -> web.Application:
    app = web.Application(middlewares=[errors], client_max_size=UPLOAD_LIMIT + 1024 * 1024)
    app.add_routes(routes(explorer))
    return app


def open_explorer(folder: Path) -> Explorer:
    """The explorer of the run in ``folder``: its data read, its marks read back, its cutouts indexed in the background."""
    if not folder.is_dir():
        raise InputError(f"{folder}: no such run folder; give --results results/<run> of a finished run")
    run = RunFiles(folder)
    data = RunData.load(run)
    cutouts = CutoutStore(run.chunk_tars())
    cutouts.start_indexing()
    return Explorer(data, Marks(run.marks), cutouts)


LOOPBACK = ("127.0.0.1", "localhost", "::1")


def serve(folder: Path, host: str, port: int) -> None:
    """Serve the run's explorer until interrupted, printing its address first (and a warning off loopback)."""
    explorer = open_explorer(folder)
    app = build_app(explorer)

    async def main() -> None:
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, host, port)
        await site.start()
        bound = site._server.sockets[0].getsockname()[1] if site._server and site._server.sockets else port
        shown = f"[{host}]" if ":" in host else host
        print(f"Night Sky Net explorer: http://{shown}:{bound}/  ({folder}, {explorer.data.n:,} galaxies; Ctrl-C to stop)", flush=True)
        if host not in LOOPBACK:
            print(
                f"WARNING: listening on {host}: anyone who can reach port {bound} can read this run's catalog and write its marks",
                flush=True,
            )
        try:
            await asyncio.Event().wait()
        finally:
            await runner.cleanup()

    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        pass
