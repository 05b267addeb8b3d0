"""The README's command lines, run as a user types them: a bare `snakemake ...` (no --cores added), in a copy of the
repository whose config.yaml is the tiny one, over a copy of the finished tiny run. Every `snakemake`/`nightskynet`
line of the README's shell blocks, and every such inline command of the README and config.yaml, must be in PLANS, so
the README cannot drift from the tool: a new command line fails here until it is run here too.
"""

import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml
from conftest import REPO, SKY_DIR, TINY, copy_repo

from nightskynet.core.config import merge

pytestmark = pytest.mark.slow

# how each documented command runs here: "real" as written; "dry" as written plus -n (it would talk to the real
# SDSS, a SLURM cluster, or retrain for minutes); "serve" as written, until it prints its address, a page is asked
# of it and it is stopped; "mention" is a command named in prose, not one to type as is
PLANS = {
    r"^snakemake --config source=sdss": "dry",
    r"^snakemake --config run=strict-cut 'labels=\{threshold: 0\.98\}'$": "dry",
    r"^snakemake --configfile my-run\.yaml$": "dry",
    r"^snakemake --forcerun train$": "dry",
    r"^snakemake --profile profiles/slurm$": "dry",
    r"^snakemake -n$": "real",
    r"^snakemake --unlock$": "real",
    r"^snakemake results/demo/eval/metrics\.json$": "real",
    r"^snakemake --configfile my\.yaml$": "real",
    r"^snakemake predict --config 'predict=\{input: my_cutouts/\}'$": "real",
    r"^snakemake --report( report\.html)?$": "real",
    r"^nightskynet predict results/demo/model/model\.pt my_cutouts/ -o predictions\.csv$": "real",
    r"^nightskynet predict results/demo/model/model\.pt my_cutouts/\*\.jpeg my_cutout\.jpg -o predictions\.csv$": "real",
    r"^nightskynet predict results/demo/model/model\.pt my_catalog\.fits -o predictions\.fits$": "real",
    r"^nightskynet( predict)? --help$": "real",
    r"^(nightskynet|snakemake)$": "mention",
    r"^nightskynet predict$": "mention",
    r"^nightskynet demo-sky$": "mention",
    r"^nightskynet similar --objid 587722952767439450$": "real",
    r"^nightskynet similar --ra 166\.7098 --dec 21\.6105 -k 8 -o like\.csv$": "real",
    r"^nightskynet similar --image my_cutout\.jpg --html like\.html$": "real",
    r"^nightskynet similar( --objid N)?$": "mention",
    r"^nightskynet explore$": "serve",
    r"^nightskynet explore --results results/demo --port 8765$": "serve",
}


GUIDES = ("README.md", "docs/running.md")  # the pages a user types commands from


def documented_commands() -> list[str]:
    """The `snakemake`/`nightskynet` lines of the guides' sh blocks (comments cut), then the inline ones of the guides and
    config.yaml."""
    texts = [(REPO / name).read_text() for name in GUIDES]
    commands = []
    for text in texts:
        for block in re.findall(r"```sh\n(.*?)```", text, re.S):
            for line in block.splitlines():
                line = re.sub(r"\s+#.*$", "", line).strip()
                if line.startswith(("snakemake", "nightskynet")):
                    commands.append(line)
    for text in (*texts, (REPO / "config.yaml").read_text()):
        commands += [" ".join(c.split()) for c in re.findall(r"`((?:snakemake|nightskynet)(?: [^`]*)?)`", text)]
    return list(dict.fromkeys(commands))


def plan_of(command: str) -> str | None:
    return next((plan for pattern, plan in PLANS.items() if re.search(pattern, command)), None)


def environment() -> dict[str, str]:
    """As after `source .venv/bin/activate`: this interpreter's bin/ first on PATH."""
    return {**os.environ, "PATH": os.pathsep.join((str(Path(sys.executable).parent), os.environ.get("PATH", "")))}


def run(workdir: Path, command: str, timeout: int = 600) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", "-c", command], cwd=workdir, env=environment(), capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def workspace(tiny_run, tmp_path_factory):
    """A new checkout whose config.yaml is the tiny config, holding a copy of the finished tiny run, and the inputs the
    README's commands name (my-run.yaml as docs/running.md shows it, my.yaml, my_cutouts/, my_catalog.fits)."""
    work = copy_repo(tmp_path_factory.mktemp("readme") / "repo")
    config = merge(yaml.safe_load((REPO / "config.yaml").read_text()), TINY)
    (work / "config.yaml").write_text(yaml.safe_dump(config))
    shutil.copytree(tiny_run / "results", work / "results", symlinks=True)
    shutil.copytree(tiny_run / ".snakemake", work / ".snakemake", symlinks=True, ignore=shutil.ignore_patterns("locks", "incomplete"))
    guide = (REPO / "docs/running.md").read_text()
    (work / "my-run.yaml").write_text(re.search(r"```yaml\n# my-run\.yaml\n(.*?)```", guide, re.S).group(1))
    (work / "my.yaml").write_text("report: {examples_per_class: 2}\n")
    (work / "my_cutouts").mkdir()
    for name in pd.read_csv(SKY_DIR / "labels.csv")["filename"][:3]:
        shutil.copy(SKY_DIR / name, work / "my_cutouts" / Path(name).name)
    catalog = pd.read_csv(work / "results/demo/catalog/gz1_votes.csv").head(3)[["objid", "ra", "dec"]]
    from astropy.table import Table

    Table.from_pandas(catalog).write(work / "my_catalog.fits")
    with tarfile.open(work / "results/demo/images/chunk_0.tar") as tar:  # a cutout the run's own galaxies are like
        (work / "my_cutout.jpg").write_bytes(tar.extractfile(next(m for m in tar if m.isfile())).read())
    return work


def test_every_documented_command_has_a_plan():
    commands = documented_commands()
    assert any(c.startswith("snakemake") for c in commands) and any(c.startswith("nightskynet") for c in commands)
    unplanned = [c for c in commands if plan_of(c) is None]
    assert not unplanned, f"the README's commands {unplanned} are not run by this test: add them to PLANS"


def test_the_copied_run_is_up_to_date(workspace):
    proc = run(workspace, "snakemake -n")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Nothing to be done" in proc.stdout + proc.stderr, (proc.stdout + proc.stderr)[-3000:]


@pytest.mark.parametrize("command", [c for c in documented_commands() if plan_of(c) != "mention"])
def test_documented_command_runs_as_written(workspace, command):
    assert plan_of(command), f"{command!r} has no plan in PLANS"
    if plan_of(command) == "serve":
        serve_as_written(workspace, command)
        return
    line = command + " -n" if plan_of(command) == "dry" else command
    proc = run(workspace, line)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"{line}\n{out[-4000:]}"
    assert "cores have to be specified" not in out
    if line.startswith("snakemake") and plan_of(command) == "dry":
        assert "This was a dry-run" in out or "Nothing to be done" in out, out[-3000:]
    if line.startswith("snakemake predict"):
        assert len(pd.read_csv(workspace / "results/demo/predict/predictions.csv")) == 3
    if line.startswith("nightskynet predict results"):
        assert (workspace / shlex.split(line)[-1]).is_file()
    if line.startswith("nightskynet similar"):
        words = shlex.split(line)
        if "-o" in words:
            assert len(pd.read_csv(workspace / words[words.index("-o") + 1])) == int(words[words.index("-k") + 1])
        elif "--html" in words:
            assert "data:image/jpeg;base64," in (workspace / words[words.index("--html") + 1]).read_text()
        else:
            assert len(proc.stdout.strip().splitlines()) == 1 + 20, proc.stdout  # a header and 20 galaxies


def serve_as_written(workspace: Path, command: str) -> None:
    """A server command as written (on a free port instead of the one it names): it prints its address, answers a
    page there, and stops on Ctrl-C."""
    import urllib.request

    words = shlex.split(command)
    if "--port" in words:
        words[words.index("--port") + 1] = "0"
    else:
        words += ["--port", "0"]
    proc = subprocess.Popen(words, cwd=workspace, env=environment(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        assert "http://" in line, (line, proc.stderr.read() if proc.poll() is not None else "")
        address = "http://" + line.split("http://", 1)[1].split("/", 1)[0]
        with urllib.request.urlopen(address + "/", timeout=30) as answer:
            assert answer.status == 200 and b"Night Sky Net explorer" in answer.read()
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=30)


def test_a_kill_minus_9_then_unlock_then_the_same_command_finishes(workspace):
    """The documented recovery: `snakemake --unlock`, then the same command again; the default profile's
    rerun-incomplete lets the rerun remake what the kill left half-done (without it: IncompleteFilesException)."""
    metrics = workspace / "results/demo/eval/metrics.json"
    log = workspace / "results/demo/logs/evaluate.log"
    log.unlink(missing_ok=True)
    proc = subprocess.Popen(
        ["bash", "-c", "snakemake --forcerun evaluate"], cwd=workspace, env=environment(), start_new_session=True, stdout=subprocess.DEVNULL
    )
    try:
        deadline = time.monotonic() + 120
        while not (log.is_file() and log.stat().st_size) and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.2)
        assert proc.poll() is None, "snakemake finished before the evaluate job could be killed"
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    assert run(workspace, "snakemake --unlock").returncode == 0
    again = run(workspace, "snakemake")
    assert again.returncode == 0, (again.stdout + again.stderr)[-4000:]
    assert metrics.is_file()
    check = run(workspace, "snakemake -n")
    assert "Nothing to be done" in check.stdout + check.stderr


def test_a_failed_run_of_another_source_leaves_the_demo_run_whole(workspace):
    """`--config source=sdss` writes under results/sdss/: its failure (no service there) deletes nothing of results/demo/."""
    before = {p: p.stat().st_mtime_ns for p in (workspace / "results/demo").rglob("*") if p.is_file()}
    failed = run(workspace, "snakemake --config source=sdss 'sdss={base_url: http://127.0.0.1:9}' 'query={max_attempts: 1}'")
    assert failed.returncode != 0
    assert (workspace / "results/sdss/logs/query.log").is_file()
    after = {p: p.stat().st_mtime_ns for p in (workspace / "results/demo").rglob("*") if p.is_file()}
    assert after == before
    check = run(workspace, "snakemake -n")
    assert "Nothing to be done" in check.stdout + check.stderr


MADE_BY_EXPLORING = {"explore/marks.ecsv"}  # written by `nightskynet explore` when a galaxy is first marked (test_explore)


def test_every_file_the_readme_names_is_there_after_a_run(tiny_run):
    """Each path the README names (a file of the run, a folder, a page of docs/) exists in the checkout or, under
    results/<run>/, in a finished run; a glob names at least one file."""
    readme = (REPO / "README.md").read_text()
    named = set(re.findall(r"`([\w./*<>-]+/[\w./*<>-]*|[\w-]+\.(?:csv|fits|npy|faiss|json|html|pt|png|md|yaml))`", readme))
    named |= set(re.findall(r"\]\(([\w./-]+)\)", readme))  # links and the screenshot
    run = tiny_run / "results" / "demo"
    missing = []
    for name in sorted(named):
        relative = name.replace("results/<run>/", "").replace("results/demo/", "")
        where = [REPO / name, run / relative, *run.glob(f"*/{relative}")]
        if not any(p.exists() for p in where) and not list(run.glob(relative)) and name not in MADE_BY_EXPLORING:
            missing.append(name)
    assert len(named) > 15, sorted(named)
    assert not missing, f"the README names {missing}, which neither the checkout nor a finished run has"
