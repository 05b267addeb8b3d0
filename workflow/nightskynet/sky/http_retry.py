"""Polite HTTP GETs with bounded retries: exponential backoff with jitter, honouring Retry-After.

Shared by the query stage (SQL pages) and the scrape stage (cutouts). A caller passes a
``check`` function that looks at (status, headers, body) and either returns normally (accepted),
raises ``PermanentError`` (never retried: a 400, a 404 off the footprint) or ``TransientError``
(retried: a 5xx, an HTML page from a proxy, a truncated JPEG). Network errors and timeouts are
transient; 429 and 5xx answers are transient unless ``check`` says otherwise. ``ConnectionWatch``
tells a caller whether its session ever reached the host at all, so it can stop early when not.
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import random
import time
from dataclasses import dataclass
from typing import Awaitable, Callable, Mapping

import aiohttp

from ..core.errors import FetchError, PermanentError, TransientError  # noqa: F401 (re-exported)

USER_AGENT = "NightSkyNet/0.1 (galaxy morphology pipeline; +https://github.com/night-sky-net)"


RETRY_AFTER_MAX_S = 300.0  # a Retry-After longer than this is taken as 5 minutes


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 5
    timeout_s: float = 60.0
    backoff_base_s: float = 0.5
    backoff_max_s: float = 60.0

    def delay(self, attempt: int, retry_after: float | None, rng: random.Random) -> float:
        """Seconds to wait before attempt ``attempt + 1``: jittered exponential backoff, at least Retry-After."""
        backoff = min(self.backoff_max_s, self.backoff_base_s * 2 ** (attempt - 1))
        wait = rng.uniform(0.5 * backoff, backoff)
        if retry_after is not None:
            wait = max(wait, min(retry_after, RETRY_AFTER_MAX_S))
        return wait


def parse_retry_after(value: str | None) -> float | None:
    """Retry-After as seconds: either delta-seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def describe_error_body(body: bytes) -> str:
    """The server's own words for a failed answer: ErrorMessage from JSON, a title from HTML."""
    text = body.decode("utf-8", errors="replace").strip()
    if text.startswith("{"):
        try:
            return str(json.loads(text).get("ErrorMessage", text[:300]))
        except (ValueError, AttributeError):
            pass
    if text.startswith("<"):
        return "HTML page instead of data: " + " ".join(text.replace("<", " <").split())[:200]
    return text[:300] or "empty body"


Check = Callable[[int, Mapping[str, str], bytes], None]


class ConnectionWatch:
    """Whether a session has ever opened a connection to its host (then the host is reachable, whatever it answers).

    Pass ``trace_config()`` to the ``aiohttp.ClientSession``; ``connected`` turns true at the first
    connection made, before any answer, so a server that answers only 500s, or nothing in time, counts as reached.
    """

    def __init__(self) -> None:
        self.connected = False

    def trace_config(self) -> aiohttp.TraceConfig:
        async def made(session, context, params) -> None:
            self.connected = True

        trace = aiohttp.TraceConfig()
        trace.on_connection_create_end.append(made)
        return trace


class RateLimiter:
    """At most ``rate`` request starts per second across all tasks sharing it (0 = unlimited)."""

    def __init__(self, rate: float):
        self.interval = 1.0 / rate if rate > 0 else 0.0
        self._next = 0.0
        self._lock = asyncio.Lock()

    async def wait(self) -> None:
        if not self.interval:
            return
        async with self._lock:
            now = time.monotonic()
            start = max(now, self._next)
            self._next = start + self.interval
        if start > now:
            await asyncio.sleep(start - now)


async def get_with_retries(
    session: aiohttp.ClientSession,
    url: str,
    params: Mapping[str, str],
    check: Check,
    policy: RetryPolicy,
    rng: random.Random,
    limiter: RateLimiter | None = None,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> tuple[bytes, int]:
    """GET until ``check`` accepts the answer; return (body, attempts). Raises FetchError subclasses."""
    last: TransientError | None = None
    for attempt in range(1, policy.max_attempts + 1):
        if limiter:
            await limiter.wait()
        retry_after = None
        try:
            timeout = aiohttp.ClientTimeout(total=policy.timeout_s)
            async with session.get(url, params=params, timeout=timeout) as resp:
                retry_after = parse_retry_after(resp.headers.get("Retry-After"))
                body = await resp.read()
                status, headers = resp.status, resp.headers
            check(status, headers, body)
            if status == 429 or status >= 500:
                raise TransientError(f"HTTP {status}", status=status)
            return body, attempt
        except PermanentError as err:
            err.attempts = attempt
            raise
        except TransientError as err:
            last = err
        except (aiohttp.ClientError, asyncio.TimeoutError) as err:
            last = TransientError(f"{type(err).__name__}: {err}" if str(err) else type(err).__name__)
        last.attempts = attempt
        if last.retry_after is None:
            last.retry_after = retry_after
        if attempt < policy.max_attempts:
            await sleep(policy.delay(attempt, last.retry_after, rng))
    assert last is not None
    raise last
