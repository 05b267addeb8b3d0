"""The test run itself: a test that crashes the Python process, or hangs, fails alone, and the run goes on to its summary."""

import os
import subprocess
import sys
import textwrap

from conftest import REPO

# the first test crashes its process as a fault in native code (a oneDNN kernel, say) would; the second passes
CRASHING_TESTS = textwrap.dedent(
    """
    import ctypes


    def test_segfaults():
        ctypes.string_at(0)  # reads address 0: SIGSEGV


    def test_passes():
        assert True
    """
)


HANGING_TESTS = textwrap.dedent(
    """
    import time


    def test_hangs():
        time.sleep(600)  # as a deadlocked native kernel would


    def test_passes():
        assert True
    """
)


def run_pytest(tmp_path, *args: str, tests: str = CRASHING_TESTS) -> subprocess.CompletedProcess:
    """pytest on ``tmp_path/test_crash.py`` in a fresh interpreter, with this project's pytest configuration (pyproject.toml)."""
    (tmp_path / "test_crash.py").write_text(tests)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}  # not this run's worker or options
    cmd = [sys.executable, "-m", "pytest", "-c", str(REPO / "pyproject.toml"), "--rootdir", str(tmp_path), *args, "test_crash.py"]
    return subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=120, env=env)


def test_a_segfaulting_test_fails_alone_and_the_run_ends_with_its_summary(tmp_path):
    proc = run_pytest(tmp_path)
    out = proc.stdout + proc.stderr
    lines = proc.stdout.strip().splitlines()
    assert proc.returncode == 1, f"exit code {proc.returncode}:\n{out[-3000:]}"
    assert lines and "1 failed, 1 passed" in lines[-1], out[-3000:]
    assert "crashed while running 'test_crash.py::test_segfaults'" in out, out[-3000:]


def test_without_the_worker_the_same_crash_kills_the_whole_run(tmp_path):
    """The control: in pytest's own process (-n 0) the crash is real and ends the run before its summary."""
    proc = run_pytest(tmp_path, "-n", "0")
    assert proc.returncode < 0 or proc.returncode > 128, f"exit code {proc.returncode}"  # killed by the signal
    assert "Segmentation fault" in proc.stderr
    assert "passed" not in proc.stdout and "failed" not in proc.stdout


def test_a_hanging_test_is_stopped_and_fails_alone(tmp_path):
    """pytest-timeout (``timeout`` in pyproject.toml, here shortened) ends the worker of a test that hangs; xdist replaces it."""
    proc = run_pytest(tmp_path, "--timeout", "3", tests=HANGING_TESTS)
    out = proc.stdout + proc.stderr
    lines = proc.stdout.strip().splitlines()
    assert proc.returncode == 1, f"exit code {proc.returncode}:\n{out[-3000:]}"
    assert lines and "1 failed, 1 passed" in lines[-1], out[-3000:]
    assert "crashed while running 'test_crash.py::test_hangs'" in out, out[-3000:]
