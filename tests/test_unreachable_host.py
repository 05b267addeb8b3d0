"""A cutout host that cannot be reached at all stops a run early with one clear error, not a failure per row.

Real sockets: a loopback port that was bound and closed again (connection refused), a name under
``.invalid`` (no such host), a listener that accepts connections but never answers, and a real
server that answers 500 to everything. Only the first two are "unreachable"; the others are
reached, and each row is recorded as it ends.
"""

import asyncio
import json
import socket
import subprocess
import sys
import time

import pandas as pd
import pytest
from conftest import client, geometry, project_config
from faulty_skyserver import FaultySkyServer, ServedInThread

from nightskynet.core.errors import ServiceUnreachable
from nightskynet.sky import cutout_client

ROWS = 160
# the retries of a slow, polite client: ~0.45 s of backoff per cutout before it is given up
SLOW_RETRIES = {"concurrency": 8, "max_attempts": 3, "backoff_base_s": 0.2, "backoff_max_s": 1.0, "timeout_s": 5}


def galaxies(n: int = ROWS) -> pd.DataFrame:
    return pd.DataFrame({"objid": range(1, n + 1), "ra": [180.0 + i / 1000 for i in range(n)], "dec": [20.0] * n, "petroR90_r": [5.0] * n})


def closed_port() -> int:
    """A loopback port nothing listens on: bound (so it was free), then closed."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def download(base_url: str, tmp_path, frame: pd.DataFrame | None = None, **overrides):
    """download_all of ``frame`` (default: ROWS galaxies) from ``base_url``; (outcomes, seconds)."""
    cache = cutout_client.CutoutCache(tmp_path / "cache", "test-server", "dr17")
    t0 = time.monotonic()
    try:
        outcomes = asyncio.run(
            cutout_client.download_all(
                base_url,
                galaxies() if frame is None else frame,
                cache,
                geometry(),
                client(**{**SLOW_RETRIES, **overrides}),
                show_progress=False,
            )
        )
    finally:
        elapsed = time.monotonic() - t0
        assert not list(cache.root.glob(".incoming-*")), "the staging folder is left behind"
    return outcomes, elapsed


def test_a_refused_port_stops_early_with_one_error_naming_the_host(tmp_path):
    port = closed_port()
    t0 = time.monotonic()
    with pytest.raises(ServiceUnreachable) as info:
        download(f"http://127.0.0.1:{port}", tmp_path)
    elapsed = time.monotonic() - t0
    message = str(info.value)
    assert f"127.0.0.1:{port}" in message and "cannot reach" in message and "sdss.base_url" in message
    assert "\n" not in message
    assert elapsed < 5, f"took {elapsed:.1f} s (every row would take ~{ROWS / 8 * 0.45:.0f} s)"
    assert info.value.attempts == cutout_client.UNREACHABLE_AFTER * SLOW_RETRIES["max_attempts"]  # retried, then stopped


def test_a_name_that_does_not_resolve_is_unreachable_too(tmp_path):
    with pytest.raises(ServiceUnreachable, match=r"no-such-skyserver\.invalid"):
        download("http://no-such-skyserver.invalid", tmp_path, timeout_s=3)


def test_fewer_cutouts_to_fetch_than_the_threshold_still_end_in_the_one_error(tmp_path):
    with pytest.raises(ServiceUnreachable, match=r"1 cutout\(s\) failed"):
        download(f"http://127.0.0.1:{closed_port()}", tmp_path, frame=galaxies(1))


def test_a_server_that_answers_500_to_everything_is_reached_so_every_row_is_recorded(tmp_path):
    server = FaultySkyServer("500json", failures=10**6)
    with ServedInThread(server.app()) as served:
        outcomes, _ = download(served.url, tmp_path, backoff_base_s=0.01, backoff_max_s=0.05)
    assert len(outcomes) == ROWS
    assert all(o.status == "failed" and o.http_status == 500 and o.attempts == 3 for o in outcomes)
    assert sum(server.requests.values()) == ROWS * 3  # no early stop: every row was tried in full


def test_a_listener_that_never_answers_is_reached_and_not_taken_for_unreachable(tmp_path):
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(64)  # the kernel completes the connections; nobody ever answers
        port = listener.getsockname()[1]
        outcomes, _ = download(f"http://127.0.0.1:{port}", tmp_path, frame=galaxies(6), timeout_s=0.3, max_attempts=2, backoff_max_s=0.05)
    assert [o.status for o in outcomes] == ["failed"] * 6 and all("Timeout" in o.reason for o in outcomes)


def test_the_scrape_stage_fails_in_one_line_and_writes_no_chunk(tmp_path):
    """Through the command line, as Snakemake runs it: exit 1, one error line naming the host, no warning per row, no outputs."""
    catalog = galaxies()
    catalog.to_csv(tmp_path / "catalog.csv", index=False)
    port = closed_port()
    settings = project_config({"source": "sdss", "sdss": {"base_url": f"http://127.0.0.1:{port}"}, "scrape": {"chunks": 1}})
    settings = {k: settings[k] for k in ("source", "sdss", "demo", "scrape")}
    options = {k.replace("_", "-"): v for k, v in client(**SLOW_RETRIES).items()}
    cmd = [sys.executable, "-m", "nightskynet", "scrape", "--settings", json.dumps(settings), "--catalog", str(tmp_path / "catalog.csv")]
    cmd += ["--chunk", "0", "--tar", str(tmp_path / "chunk_0.tar"), "--manifest", str(tmp_path / "chunk_0.manifest.csv")]
    cmd += [part for key, value in options.items() for part in (f"--{key}", str(value))] + ["--cache-dir", str(tmp_path / "cache")]
    t0 = time.monotonic()
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    elapsed = time.monotonic() - t0
    assert proc.returncode == 1, proc.stderr
    errors = [line for line in proc.stderr.splitlines() if " ERROR " in line]
    assert len(errors) == 1 and f"scrape failed: cannot reach the cutout service at 127.0.0.1:{port}" in errors[0], proc.stderr
    assert "Traceback" not in proc.stderr and " WARNING " not in proc.stderr
    assert not (tmp_path / "chunk_0.tar").exists() and not (tmp_path / "chunk_0.manifest.csv").exists()
    assert not list((tmp_path / "cache").glob(".incoming-*"))
    assert elapsed < 15
