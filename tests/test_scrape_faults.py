"""The scrape client against a server that misbehaves: one test per fault the real service shows.

Each test checks that the run finishes, every good image is present and decodes, the failure is
recorded with its reason, attempts are bounded, and no corrupt or partial file is left.
"""

import asyncio
import io
import time

import pandas as pd
import pytest
from conftest import client, geometry
from faulty_skyserver import FaultySkyServer, ServedInThread
from PIL import Image

from nightskynet.sky import cutout_client
from nightskynet.sky.client_options import CLIENT_KEYS

N = 6
MAX_ATTEMPTS = 4


def galaxies() -> pd.DataFrame:
    return pd.DataFrame(
        {"objid": range(100, 100 + N), "ra": [180.0 + i / 10 for i in range(N)], "dec": [20.0] * N, "petroR90_r": [5.0] * N}
    )


def run(server: FaultySkyServer, tmp_path, **overrides):
    geo = geometry(**{k: v for k, v in overrides.items() if k in cutout_client.GEOMETRY_KEYS})
    cfg = client(
        **{
            "concurrency": 4,
            "timeout_s": 5,
            "max_attempts": MAX_ATTEMPTS,
            "backoff_max_s": 0.05,
            **{k: v for k, v in overrides.items() if k in CLIENT_KEYS},
        }
    )
    cache = cutout_client.CutoutCache(tmp_path / "cache", "test-server", "dr17")
    with ServedInThread(server.app()) as served:
        t0 = time.monotonic()
        outcomes = asyncio.run(cutout_client.download_all(served.url, galaxies(), cache, geo, cfg, show_progress=False))
        elapsed = time.monotonic() - t0
    by_id = {o.objid: o for o in outcomes}
    assert sorted(by_id) == list(range(100, 100 + N))  # the run finished, one outcome per galaxy
    files = sorted(p for p in cache.root.rglob("*") if p.is_file())
    assert not [f for f in files if f.name.endswith(".part")]  # nothing partial
    for f in files:  # nothing corrupt: every cached file is a complete JPEG of the requested size
        with Image.open(io.BytesIO(f.read_bytes())) as im:
            im.load()
            assert im.size == (120, 120)
    for o in outcomes:
        assert 1 <= o.attempts <= MAX_ATTEMPTS
        assert (o.status == "ok") == (o.path is not None and o.path.exists())
    assert len(files) == sum(o.status == "ok" for o in outcomes)
    return by_id, elapsed


FAULTY = {180.0, 180.2, 180.4}  # galaxies 100, 102, 104 misbehave; 101, 103, 105 are fine


@pytest.mark.parametrize("fault", ["503html", "500json", "cut", "truncated", "html200", "wrongsize"])
def test_transient_faults_are_retried_until_good(tmp_path, fault):
    server = FaultySkyServer(fault, failures=2, faulty_ra=FAULTY)
    by_id, _ = run(server, tmp_path)
    assert all(o.status == "ok" for o in by_id.values())
    for objid in (100, 102, 104):
        assert by_id[objid].attempts == 3  # two bad answers, then a good one
    for objid in (101, 103, 105):
        assert by_id[objid].attempts == 1


@pytest.mark.parametrize(
    "fault, reason",
    [
        ("503html", "No server is available"),
        ("500json", "Internal cutout failure"),
        ("truncated", "does not decode"),
        ("html200", "not a JPEG"),
        ("cut", "Payload"),
        ("wrongsize", "60x60, not 120x120"),
    ],
)
def test_a_fault_that_never_ends_is_recorded_after_bounded_attempts(tmp_path, fault, reason):
    server = FaultySkyServer(fault, failures=10**6, faulty_ra=FAULTY)
    by_id, _ = run(server, tmp_path)
    for objid in (100, 102, 104):
        o = by_id[objid]
        assert o.status == "failed" and o.attempts == MAX_ATTEMPTS and reason in o.reason, o
    assert sum(server.requests[(ra, 20.0)] for ra in FAULTY) == 3 * MAX_ATTEMPTS
    assert all(by_id[i].status == "ok" for i in (101, 103, 105))


def test_429_retry_after_is_honoured(tmp_path):
    server = FaultySkyServer("429", failures=1, faulty_ra=FAULTY, retry_after="1")
    by_id, elapsed = run(server, tmp_path)
    assert all(o.status == "ok" for o in by_id.values())
    assert by_id[100].attempts == 2
    assert elapsed >= 1.0  # the backoff alone (<= 0.05 s) would not have waited this long


def test_a_slow_answer_past_the_timeout_is_retried(tmp_path):
    server = FaultySkyServer("slow", failures=1, faulty_ra=FAULTY, slow_s=3.0)
    by_id, elapsed = run(server, tmp_path, timeout_s=0.5)
    assert all(o.status == "ok" for o in by_id.values())
    assert by_id[100].attempts == 2 and by_id[101].attempts == 1
    assert elapsed < 3.0


@pytest.mark.parametrize("fault, status, http", [("404", "missing", 404), ("400", "rejected", 400)])
def test_404_with_jpeg_and_400_are_permanent_not_retried(tmp_path, fault, status, http):
    server = FaultySkyServer(fault, faulty_ra=FAULTY)
    by_id, _ = run(server, tmp_path)
    for objid in (100, 102, 104):
        o = by_id[objid]
        assert (o.status, o.http_status, o.attempts) == (status, http, 1)
        assert str(http) in o.reason
    assert server.requests[(180.0, 20.0)] == 1
    assert all(by_id[i].status == "ok" for i in (101, 103, 105))


def test_a_404_that_is_not_a_jpeg_is_not_taken_for_the_sky_edge(tmp_path):
    """An HTML 404 (a wrong release or path) is rejected with the server's words, not 'missing'."""
    from nightskynet.core.errors import PermanentError

    check = cutout_client.jpeg_checker(120)
    with pytest.raises(cutout_client.OffFootprint):
        check(404, {}, b"\xff\xd8\xff\xe0 a jpeg with an error drawn on it")
    with pytest.raises(PermanentError, match="Skyserver Error") as info:
        check(404, {}, b"<html><body><h2>Skyserver Error</h2></body></html>")
    assert not isinstance(info.value, cutout_client.OffFootprint)


def test_adaptive_scale_without_a_valid_radius_is_rejected_not_guessed(tmp_path):
    frame = galaxies()
    frame.loc[0, "petroR90_r"] = -9999.0  # SDSS's mark for a failed Petrosian radius
    server = FaultySkyServer("none", failures=0)
    cache = cutout_client.CutoutCache(tmp_path / "cache", "test-server", "dr17")
    with ServedInThread(server.app()) as served:
        outcomes = asyncio.run(
            cutout_client.download_all(served.url, frame, cache, geometry(scale_mode="adaptive"), client(), show_progress=False)
        )
    by_id = {o.objid: o for o in outcomes}
    assert by_id[100].status == "rejected" and "petroR90_r" in by_id[100].reason and by_id[100].attempts == 0
    assert all(by_id[i].status == "ok" for i in range(101, 106))
