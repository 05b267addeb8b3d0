"""The tiny workflow through the SLURM executor plugin against a real slurmctld + slurmd on localhost.

Skips with the reason where SLURM cannot be started (not root, packages missing); CI installs
them (.ci/run). Asserts from SLURM's own job records that the jobs ran under SLURM and finished,
and that the results equal those of a plain --cores run.
"""

import json
import shutil

import pandas as pd
import pytest
import yaml
from conftest import TINY, copy_repo, snakemake
from slurm_cluster import LocalSlurm, why_not_available

pytestmark = [pytest.mark.slow, pytest.mark.skipif(why_not_available() is not None, reason=why_not_available() or "")]

if why_not_available() is None:  # the executor plugin is an optional extra; without it the test cannot run
    pytest.importorskip("snakemake_executor_plugin_slurm", reason="pip install -e '.[slurm]' for the SLURM executor plugin")

CONFIG = {**TINY, "train": {**TINY["train"], "gpus": 0}}  # the test node has no GPU
# query and scrape run on the submitting host
SUBMITTED_RULES = {
    "labels",
    "shards_train",
    "shards_eval",
    "shards",
    "train",
    "evaluate",
    "morphology_chunk",
    "morphology",
    "similarity",
    "report",
}
SUBMITTED_JOBS = len(SUBMITTED_RULES) + 1  # morphology_chunk: one job per scrape chunk (2)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    slurm = LocalSlurm(tmp_path_factory.mktemp("slurm")).start()
    yield slurm
    slurm.stop()


def test_tiny_workflow_runs_under_slurm_and_matches_a_local_run(cluster, tiny_run, tmp_path):
    local = tiny_run  # the same settings run locally (train.gpus only says what a job asks the scheduler for)
    on_slurm = copy_repo(tmp_path / "slurm")
    (on_slurm / "tiny.yaml").write_text(yaml.safe_dump(CONFIG))
    proc = snakemake(
        on_slurm,
        "--configfile",
        "tiny.yaml",
        "--profile",
        "profiles/slurm",
        "--slurm-status-command",
        "squeue",
        "--slurm-init-seconds-before-status-checks",
        "2",
        "--set-threads",
        "train=2",
        "morphology_chunk=2",
        "--set-resources",
        "train:cpus_per_task=2",
        "train:mem_mb=3000",
        "evaluate:mem_mb=2000",
        "morphology_chunk:cpus_per_task=2",
        "morphology_chunk:mem_mb=2000",
    )
    assert "Nothing to be done" not in proc.stdout

    records = cluster.completed_jobs()
    assert len(records) == SUBMITTED_JOBS, records
    assert {r["JobState"] for r in records} == {"COMPLETED"}
    assert {r["Partition"] for r in records} == {"test"}
    logs = on_slurm / "results" / "logs" / "slurm"  # the profile keeps SLURM's job logs here
    assert {p.name.removeprefix("rule_") for p in logs.iterdir()} == SUBMITTED_RULES
    assert all(any(d.rglob("*.log")) for d in logs.iterdir())

    tables = ("labels/labels.csv", "catalog/gz1_votes.csv", "eval/predictions_test.csv", "morphology/catalog.csv")
    for path in (f"results/demo/{t}" for t in tables):
        pd.testing.assert_frame_equal(pd.read_csv(local / path), pd.read_csv(on_slurm / path))
    manifest = lambda w: json.loads((w / "results/demo/shards/manifest.json").read_text())["files"]  # noqa: E731
    assert manifest(local) == manifest(on_slurm)  # byte-identical shards
    metrics = lambda w: json.loads((w / "results/demo/eval/metrics.json").read_text())  # noqa: E731
    assert metrics(local) == metrics(on_slurm)  # the same model: deterministic training on the CPU
    assert shutil.which("squeue")
