"""The demo SkyServer's child process never outlives the process that started it, however that one ends.

Real processes: a script enters ``running_demo_sky``, says the URL and the server's pid, and is
then killed with SIGKILL (which skips its ``finally``); the server must be gone by itself soon after.
A server started by hand (``nightskynet demo-sky``, stdin a terminal or anything else) keeps serving.
"""

import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from urllib.parse import urlsplit

import psutil
import pytest
from conftest import SKY_DIR

from nightskynet.sky.demo_server import EXIT_WITH_PARENT_ENV, READY_PREFIX

pytestmark = pytest.mark.skipif(os.name != "posix", reason="SIGKILL and zombies are POSIX")

STARTER = textwrap.dedent(
    """
    import os, sys, time
    import psutil
    from nightskynet.sky.demo_server import running_demo_sky

    with running_demo_sky(sys.argv[1], seed=1, max_rows=25) as url:
        (server,) = psutil.Process().children()  # the demo SkyServer is this script's only child
        helper = 0
        if sys.argv[2] == "fork" and (helper := os.fork()) == 0:  # a forked helper inherits the server's stdin pipe
            time.sleep(60)
            os._exit(0)
        print(url, server.pid, helper, flush=True)
        time.sleep(600)
    """
)


def gone(pid: int) -> bool:
    """Whether process ``pid`` has ended (a zombie nobody has reaped yet counts as ended)."""
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def listening(url: str) -> bool:
    """Whether something accepts TCP connections at the host and port of ``url``."""
    parts = urlsplit(url)
    try:
        with socket.create_connection((parts.hostname, parts.port), timeout=1):
            return True
    except OSError:
        return False


def wait_for(predicate, timeout_s: float) -> float | None:
    """Seconds until ``predicate()`` held, polling every 50 ms; None if it did not within ``timeout_s``."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout_s:
        if predicate():
            return time.monotonic() - t0
        time.sleep(0.05)
    return None


@pytest.mark.parametrize("helper", ["none", "fork"])
def test_a_sigkilled_parent_takes_its_demo_server_with_it(helper):
    """With no helper the server sees its stdin end; with a forked helper holding the pipe open, its new parent."""
    starter = subprocess.Popen([sys.executable, "-c", STARTER, str(SKY_DIR), helper], stdout=subprocess.PIPE, text=True)
    server_pid = helper_pid = None
    try:
        url, server_pid, helper_pid = starter.stdout.readline().split()
        server_pid, helper_pid = int(server_pid), int(helper_pid)
        assert listening(url) and not gone(server_pid)
        starter.send_signal(signal.SIGKILL)
        starter.wait(timeout=10)
        took = wait_for(lambda: gone(server_pid), timeout_s=5)
        assert took is not None, f"the demo SkyServer (pid {server_pid}) still runs 5 s after its parent was killed"
        assert not listening(url)
    finally:
        starter.kill()
        starter.wait()
        starter.stdout.close()
        for pid in (server_pid, helper_pid):  # the bug's leftover and the helper must not outlive the test either
            if pid and not gone(pid):
                os.kill(pid, signal.SIGKILL)


def test_a_demo_server_started_by_hand_keeps_serving_without_a_parent_watch(tmp_path):
    """Without ``EXIT_WITH_PARENT_ENV`` (a person at a terminal) stdin at end of file does not stop the server."""
    env = {k: v for k, v in os.environ.items() if k != EXIT_WITH_PARENT_ENV}
    cmd = [sys.executable, "-m", "nightskynet", "demo-sky", "--sky-dir", str(SKY_DIR), "--port", "0"]
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env)
    try:
        line = proc.stdout.readline()
        assert line.startswith(READY_PREFIX)
        url = line[len(READY_PREFIX) :].strip()
        time.sleep(1.5)  # longer than the parent watch takes to notice an end of file or a new parent
        assert proc.poll() is None and listening(url)
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        proc.stdout.close()
