"""A local SkyServer that misbehaves the way the real one (and the proxies in front of it) do.

Served by real aiohttp in a background thread on a loopback port. For each distinct request
(keyed by ra, dec or by the SQL text) the first ``failures`` answers are the chosen fault; later
ones are good. Every request is counted, so tests can check that attempts are bounded.
"""

from __future__ import annotations

import asyncio
import io
import json
import threading
from collections import Counter

from aiohttp import web
from PIL import Image

HTML_503 = (
    "<html><head><title>503 Service Unavailable</title></head><body><h1>No server is available to handle this request.</h1></body></html>"
)
HTML_ERROR = "<html><body><h2>Skyserver Error</h2><p>Something went wrong</p></body></html>"


def jpeg(width: int, height: int, colour=(200, 120, 40)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (width, height), colour).save(buf, format="JPEG", quality=90)
    return buf.getvalue()


class FaultySkyServer:
    def __init__(
        self,
        fault: str,
        failures: int = 2,
        faulty_ra: set[float] | None = None,
        retry_after: str = "1",
        slow_s: float = 2.0,
        latency_s: float = 0.0,
    ):
        self.fault, self.failures, self.faulty_ra = fault, failures, faulty_ra
        self.retry_after, self.slow_s, self.latency_s = retry_after, slow_s, latency_s
        self.requests: Counter = Counter()
        self.sql_pages: list[str] = []

    def is_faulty(self, ra: float) -> bool:
        return self.faulty_ra is None or round(ra, 4) in self.faulty_ra

    async def fault_response(self, request: web.Request, width: int, height: int) -> web.StreamResponse:
        f = self.fault
        if f == "429":
            return web.Response(status=429, text="Too Many Requests", headers={"Retry-After": self.retry_after})
        if f == "503html":
            return web.Response(status=503, text=HTML_503, content_type="text/html")
        if f == "500json":
            return web.Response(
                status=500,
                text=json.dumps({"ErrorCode": 500, "ErrorType": "System.Exception", "ErrorMessage": "Internal cutout failure"}),
                content_type="application/json",
            )
        if f == "html200":
            return web.Response(status=200, text=HTML_ERROR, content_type="text/html")
        if f == "truncated":
            body = jpeg(width, height)
            return web.Response(status=200, body=body[: len(body) // 2], content_type="image/jpeg")
        if f == "wrongsize":
            return web.Response(status=200, body=jpeg(width // 2, height // 2), content_type="image/jpeg")
        if f == "slow":
            await asyncio.sleep(self.slow_s)
            return web.Response(status=200, body=jpeg(width, height), content_type="image/jpeg")
        if f == "cut":
            body = jpeg(width, height)
            resp = web.StreamResponse(status=200, headers={"Content-Type": "image/jpeg", "Content-Length": str(len(body))})
            await resp.prepare(request)
            await resp.write(body[: len(body) // 3])
            request.transport.abort()  # the connection drops mid-body
            return resp
        if f == "404":
            return web.Response(status=404, body=jpeg(width, height, (60, 60, 60)), content_type="image/jpeg")
        if f == "400":
            return web.Response(
                status=400,
                text=json.dumps({"ErrorCode": 400, "ErrorType": "ImgCutout", "ErrorMessage": "scale must be in [0.015, 60]"}),
                content_type="application/json",
            )
        raise AssertionError(f"unknown fault {f}")

    async def getjpeg(self, request: web.Request) -> web.StreamResponse:
        q = request.query
        ra, dec = float(q["ra"]), float(q["dec"])
        width, height = int(q["width"]), int(q["height"])
        self.requests[(round(ra, 4), round(dec, 4))] += 1
        if self.latency_s:
            await asyncio.sleep(self.latency_s)
        permanent = self.fault in ("404", "400")
        if self.is_faulty(ra) and (permanent or self.requests[(round(ra, 4), round(dec, 4))] <= self.failures):
            return await self.fault_response(request, width, height)
        return web.Response(status=200, body=jpeg(width, height), content_type="image/jpeg")

    async def sql(self, request: web.Request) -> web.Response:
        cmd = request.query["cmd"]
        self.requests[cmd] += 1
        if self.requests[cmd] <= self.failures:
            if self.fault == "503html":
                return web.Response(status=503, text=HTML_503, content_type="text/html")
            if self.fault in ("500json", "400json"):
                status = 500 if self.fault == "500json" else 400
                body = {
                    "ErrorCode": status,
                    "ErrorType": "System.Data.SqlClient.SqlException",
                    "ErrorMessage": "Query timeout expired" if status == 500 else "Incorrect syntax near 'TOP'.",
                }
                return web.Response(status=status, text=json.dumps(body), content_type="application/json")
            if self.fault == "html200":
                return web.Response(status=200, text=HTML_ERROR, content_type="text/html")
        self.sql_pages.append(cmd)
        after = int(cmd.split("z.objid >")[1].split()[0])
        rows = [r for r in range(1, 8) if r > after][:3]
        lines = ["#Table1", "objid,ra,dec,nvote,p_el,p_cw,p_acw,p_edge,p_dk,p_mg,p_cs,petroR90_r"]
        lines += [f"{r},{180 + r / 10:.6f},{20:.6f},30,0.900,0.000,0.000,0.100,0.000,0.000,0.100,5.0000" for r in rows]
        return web.Response(text="\n".join(lines) + "\n", content_type="text/plain")

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/{release}/SkyServerWS/ImgCutout/getjpeg", self.getjpeg)
        app.router.add_get("/{release}/SkyServerWS/SearchTools/SqlSearch", self.sql)
        return app


class ServedInThread:
    """Run an aiohttp app on 127.0.0.1:<free port> in a background thread (a context manager)."""

    def __init__(self, app: web.Application):
        self._app = app
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self.url = ""

    def __enter__(self) -> "ServedInThread":
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("test server did not start")
        return self

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        runner = web.AppRunner(self._app, access_log=None)
        self._loop.run_until_complete(runner.setup())
        site = web.TCPSite(runner, "127.0.0.1", 0)
        self._loop.run_until_complete(site.start())
        host, port = runner.addresses[0][:2]
        self.url = f"http://{host}:{port}"
        self._runner = runner
        self._ready.set()
        self._loop.run_forever()
        self._loop.run_until_complete(runner.cleanup())
        self._loop.close()

    def __exit__(self, *exc) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
