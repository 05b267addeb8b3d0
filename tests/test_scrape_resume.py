"""A scrape job killed with SIGKILL and started again fetches only what it did not have."""

import json
import os
import signal
import subprocess
import sys
import tarfile
import time

import pandas as pd
from conftest import client, geometry
from faulty_skyserver import FaultySkyServer, ServedInThread

N = 120
CONCURRENCY = 4


def test_kill_minus_9_then_resume_downloads_only_the_rest(tmp_path):
    catalog = pd.DataFrame(
        {"objid": range(1000, 1000 + N), "ra": [150.0 + i / 100 for i in range(N)], "dec": [10.0] * N, "petroR90_r": [5.0] * N}
    )
    catalog.to_csv(tmp_path / "gz1_votes.csv", index=False)
    server = FaultySkyServer("none", failures=0, latency_s=0.05)
    cache = tmp_path / "cache"
    with ServedInThread(server.app()) as served:
        settings = {"source": "sdss", "sdss": {"base_url": served.url, "release": "dr17"}, "scrape": {"chunks": 1, **geometry()}}
        options = [
            "--concurrency",
            str(CONCURRENCY),
            "--max-rate",
            "0",
            "--timeout-s",
            "10",
            "--max-attempts",
            "3",
            "--backoff-base-s",
            "0.01",
            "--backoff-max-s",
            "0.05",
            "--cache-dir",
            str(cache),
        ]
        cmd = [
            sys.executable,
            "-m",
            "nightskynet",
            "scrape",
            "--settings",
            json.dumps(settings),
            "--catalog",
            str(tmp_path / "gz1_votes.csv"),
            "--chunk",
            "0",
            "--tar",
            str(tmp_path / "out/chunk_0.tar"),
            "--manifest",
            str(tmp_path / "out/chunk_0.manifest.csv"),
            *options,
        ]
        env = dict(os.environ)
        first = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=open(tmp_path / "first.log", "w"))
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and len(list(cache.rglob("*.jpg"))) < 30:
            time.sleep(0.02)
        first.send_signal(signal.SIGKILL)
        first.wait()
        have = len(list(cache.rglob("*.jpg")))
        requests_before = sum(server.requests.values())
        assert 30 <= have < N, "the kill must land mid-scrape"
        assert not (tmp_path / "out/chunk_0.tar").exists()

        second = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
        assert second.returncode == 0, second.stderr[-2000:]

    total_requests = sum(server.requests.values())
    assert total_requests <= N + CONCURRENCY  # at most the requests in flight at the kill were made twice
    assert total_requests - requests_before <= N - have + CONCURRENCY
    with tarfile.open(tmp_path / "out/chunk_0.tar") as tar:
        assert len(tar.getnames()) == N
    manifest = pd.read_csv(tmp_path / "out/chunk_0.manifest.csv")
    assert (manifest["status"] == "ok").all() and len(manifest) == N
    assert not [p for p in tmp_path.rglob("*.part")]


def test_two_jobs_fill_one_cache_at_once_without_touching_each_others_files(tmp_path):
    """Chunk jobs run side by side into one cache; one starting (and clearing what a killed
    predecessor left) must never remove the other's half-written files."""
    import asyncio

    from nightskynet.sky import cutout_client

    frame = pd.DataFrame(
        {"objid": range(5000, 5080), "ra": [150.0 + i / 100 for i in range(80)], "dec": [10.0] * 80, "petroR90_r": [5.0] * 80}
    )
    root = tmp_path / "cache"
    cache = cutout_client.CutoutCache(root, "test-server", "dr17")
    (root / ".incoming-b").mkdir(parents=True)
    (root / ".incoming-b" / ".5001.jpg.x.part").write_bytes(b"half")  # a killed job b's leftover
    (root / ".incoming-live").mkdir()
    in_flight = root / ".incoming-live" / ".5002.jpg.y.part"
    in_flight.write_bytes(b"being written")  # a file another running job is writing right now
    geo, cfg = geometry(), client(concurrency=4, timeout_s=10, max_attempts=2, backoff_max_s=0.05)
    server = FaultySkyServer("none", failures=0, latency_s=0.02)

    async def both(url):
        a = asyncio.create_task(cutout_client.download_all(url, frame.iloc[::2], cache, geo, cfg, show_progress=False, job="a"))
        await asyncio.sleep(0.1)  # a is mid-way, with files in flight, when b starts
        b = asyncio.create_task(cutout_client.download_all(url, frame.iloc[1::2], cache, geo, cfg, show_progress=False, job="b"))
        return await a, await b

    with ServedInThread(server.app()) as served:
        a, b = asyncio.run(both(served.url))
    assert {o.status for o in a + b} == {"ok"}
    assert len(list(root.glob("*/*.jpg"))) == 80
    assert in_flight.exists()  # neither job touched another job's staging folder
    assert list(root.rglob("*.part")) == [in_flight] and list(root.glob(".incoming-*")) == [in_flight.parent]
