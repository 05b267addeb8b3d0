"""The real Snakemake on a tiny config, in a temporary copy of the repository."""

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from conftest import SKY_DIR, TINY, copy_repo, snakemake

OUTPUTS = [
    "results/demo/catalog/gz1_votes.csv",
    "results/demo/catalog/gz1_votes.fits",
    "results/demo/labels/labels.csv",
    "results/demo/labels/labels.fits",
    "results/demo/labels/summary.json",
    "results/demo/images/chunk_0.tar",
    "results/demo/images/chunk_0.manifest.csv",
    "results/demo/images/chunk_1.tar",
    "results/demo/images/chunk_1.manifest.csv",
    "results/demo/shards/train_0.npz",
    "results/demo/shards/val.npz",
    "results/demo/shards/test.npz",
    "results/demo/shards/uncertain.npz",
    "results/demo/shards/manifest.json",
    "results/demo/model/model.pt",
    "results/demo/model/history.csv",
    "results/demo/eval/metrics.json",
    "results/demo/eval/predictions_test.csv",
    "results/demo/eval/predictions_uncertain.csv",
    "results/demo/eval/predictions_test.fits",
    "results/demo/eval/predictions_uncertain.fits",
    "results/demo/eval/confusion_matrix.png",
    "results/demo/eval/roc_pr.png",
    "results/demo/eval/reliability.png",
    "results/demo/eval/mistakes.png",
    "results/demo/morphology/chunk_0.csv",
    "results/demo/morphology/chunk_1.csv",
    "results/demo/morphology/catalog.csv",
    "results/demo/morphology/catalog.fits",
    "results/demo/morphology/comparison.json",
    "results/demo/morphology/network_vs_votes.png",
    "results/demo/morphology/agreement_by_votes.png",
    "results/demo/morphology/disagreements.png",
    "results/demo/morphology/chunk_0.representations.npy",
    "results/demo/morphology/chunk_0.representations_objid.npy",
    "results/demo/morphology/representations.npy",
    "results/demo/morphology/representations_objid.npy",
    "results/demo/similarity/index.faiss",
    "results/demo/similarity/scores.csv",
    "results/demo/similarity/summary.json",
    "results/demo/similarity/unusual.png",
    "results/demo/similarity/neighbours.png",
    "results/demo/similarity/map.png",
    "results/demo/similarity/merger_like.png",
    "results/demo/report/examples.png",
    "results/demo/report/network.png",
    "results/demo/report/training_curves.png",
    "results/demo/report/sky_map.png",
    "results/demo/report/report.html",
]


def planned_jobs(workdir: Path, *args: str) -> set[str]:
    """Rule names a dry run would run (from its 'Job stats' table)."""
    out = snakemake(workdir, "-n", *args).stdout
    if "Nothing to be done" in out:
        return set()
    table = out.split("Job stats:", 1)[1]
    return {m.group(1) for m in re.finditer(r"^(\w+)\s+\d+$", table, re.M)} - {"total"}


@pytest.mark.slow
def test_tiny_run_writes_every_declared_output_with_its_log_and_benchmark(tiny_run):
    missing = [p for p in OUTPUTS if not (tiny_run / p).is_file()]
    assert not missing
    jobs = ("query", "labels", "scrape/chunk_0", "shards/train_0", "shards/eval", "shards/manifest", "train", "evaluate")
    for job in (*jobs, "morphology/chunk_0", "morphology/merge", "similarity", "report"):
        assert (tiny_run / f"results/demo/logs/{job}.log").is_file()
        assert (tiny_run / f"results/demo/benchmarks/{job}.tsv").is_file()


@pytest.mark.slow
def test_query_and_labels_write_the_catalog_and_splits(tiny_run):
    catalog = pd.read_csv(tiny_run / "results/demo/catalog/gz1_votes.csv")
    assert len(catalog) == 60 and set(catalog["votes"]) == {"simulated"}
    labels = pd.read_csv(tiny_run / "results/demo/labels/labels.csv")
    assert set(labels["split"]) <= {"train", "val", "test", "uncertain"} and set(labels["votes"]) == {"simulated"}


@pytest.mark.slow
def test_shards_and_train_write_images_and_a_history(tiny_run):
    with np.load(tiny_run / "results/demo/shards/train_0.npz") as z:
        assert z["images"].shape == (240, 60, 60, 3) and z["images"].dtype == np.uint8
    history = pd.read_csv(tiny_run / "results/demo/model/history.csv")
    assert len(history) == 1


@pytest.mark.slow
def test_every_csv_table_has_a_fits_twin_with_the_same_values(tiny_run):
    from astropy.table import Table

    for csv in ("catalog/gz1_votes.csv", "labels/labels.csv", "eval/predictions_test.csv", "eval/predictions_uncertain.csv"):
        frame = pd.read_csv(tiny_run / "results" / "demo" / csv, dtype={"objid": "int64"})
        twin = Table.read(tiny_run / "results" / "demo" / csv.replace(".csv", ".fits"))
        assert twin.colnames == list(frame.columns) and twin["objid"].tolist() == frame["objid"].tolist(), csv
        for name in frame.columns:
            if frame[name].dtype.kind == "f":
                np.testing.assert_array_equal(np.asarray(twin[name], float), frame[name].to_numpy(float), err_msg=f"{csv} {name}")
            else:
                assert [str(v) for v in twin[name].tolist()] == frame[name].astype(str).tolist(), f"{csv} {name}"
        if "ra" in frame:
            assert str(twin["ra"].unit) == "deg" and twin["ra"].description == "right ascension (ICRS)"


@pytest.mark.slow
def test_evaluate_writes_its_metrics_and_predictions(tiny_run):
    metrics = json.loads((tiny_run / "results/demo/eval/metrics.json").read_text())
    assert 0 <= metrics["accuracy"] <= 1 and set(metrics["per_class"]) == {"elliptical", "face_on_spiral", "edge_on_spiral", "merger"}
    for key in ("balanced_accuracy", "accuracy_single_view", "balanced_accuracy_uncalibrated", "calibration", "merger"):
        assert key in metrics
    assert {"most_confident_mistakes", "uncertain"} <= set(metrics)
    assert {"expected_calibration_error", "temperature", "logit_bias", "uncalibrated"} <= set(metrics["calibration"])
    assert {"threshold", "recall_target", "average_precision", "test_mergers"} <= set(metrics["merger"])
    assert {"roc_auc", "average_precision", "support"} <= set(metrics["per_class"]["elliptical"])
    assert metrics["uncertain"]["votes"] == "simulated" and "largest_disagreements" in metrics["uncertain"]
    predictions = pd.read_csv(tiny_run / "results/demo/eval/predictions_test.csv")
    probabilities = ["p_elliptical", "p_face_on_spiral", "p_edge_on_spiral", "p_merger"]
    humans = ["human_p_elliptical", "human_p_face_on_spiral", "human_p_edge_on_spiral", "human_p_merger"]
    assert list(predictions.columns) == ["objid", "true_class", *humans, *probabilities, "predicted", "merger_candidate", "votes"]
    assert set(predictions["votes"]) == {"simulated"}
    assert np.allclose(predictions[probabilities].sum(axis=1), 1, atol=1e-3)


@pytest.mark.slow
def test_the_report_holds_every_figure(tiny_run):
    html = (tiny_run / "results/demo/report/report.html").read_text()
    assert "simulated votes" in html and html.count("data:image/png;base64,") == 15


@pytest.mark.slow
def test_nothing_to_do_after_a_complete_run(tiny_run):
    assert planned_jobs(tiny_run, "--configfile", "tiny.yaml") == set()


@pytest.mark.slow
def test_changing_a_shards_parameter_reruns_exactly_shards_and_what_follows(tiny_run):
    # the shards stage is three rules: training shards (one job each), eval sets, and the manifest;
    # max_shift moves the training crops only, so the centre-cropped eval sets stay as they are
    changed = {**TINY, "shards": {**TINY["shards"], "max_shift": 3}}
    (tiny_run / "changed.yaml").write_text(yaml.safe_dump(changed))
    after_train = {"train", "evaluate", "morphology_chunk", "morphology", "similarity", "report", "all"}
    assert planned_jobs(tiny_run, "--configfile", "changed.yaml") == {"shards_train", "shards", *after_train}
    changed = {**TINY, "shards": {**TINY["shards"], "crop": 56}}
    (tiny_run / "changed.yaml").write_text(yaml.safe_dump(changed))
    assert planned_jobs(tiny_run, "--configfile", "changed.yaml") == {"shards_train", "shards_eval", "shards", *after_train}


@pytest.mark.slow
def test_bad_config_stops_with_a_line_naming_the_key(tiny_run):
    (tiny_run / "bad.yaml").write_text(yaml.safe_dump({"shards": {"total": -5}, "trian": {}}))
    proc = snakemake(tiny_run, "-n", "--configfile", "bad.yaml", check=False)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "config key shards.total = -5: -5 is less than the minimum of 1" in out
    assert "unknown config key trian" in out


def job_counts(out: str) -> dict[str, int]:
    table = out.split("Job stats:", 1)[1]
    return {m.group(1): int(m.group(2)) for m in re.finditer(r"^(\w+)\s+(\d+)$", table, re.M)}


def test_a_900000_galaxy_catalog_plans_in_under_10_seconds(tmp_path):
    """The DAG is O(chunks), never O(galaxies): a full Galaxy Zoo 1 sized catalog plans instantly."""
    import time

    work = copy_repo(tmp_path / "repo")
    n = 900_000
    rng = np.random.default_rng(0)
    objids = np.sort(rng.choice(np.arange(587_722_000_000_000_000, 587_722_000_000_000_000 + 10 * n), n, replace=False))
    labels = pd.DataFrame(
        {
            "objid": objids,
            "ra": rng.uniform(0, 360, n).round(5),
            "dec": rng.uniform(-10, 70, n).round(5),
            "petroR90_r": 5.0,
            "split": "train",
        }
    )
    (work / "results/demo/labels").mkdir(parents=True)
    (work / "results/demo/catalog").mkdir(parents=True)
    labels.to_csv(work / "results/demo/catalog/gz1_votes.csv", index=False)
    labels.to_csv(work / "results/demo/labels/labels.csv", index=False)
    for twin in ("catalog/gz1_votes.fits", "labels/labels.fits"):  # a dry run looks at their dates, not their contents
        (work / "results" / "demo" / twin).touch()
    (work / "results/demo/labels/summary.json").write_text("{}")
    (work / "big.yaml").write_text(yaml.safe_dump({"scrape": {"chunks": 256}, "demo": {"sky_dir": str(SKY_DIR)}}))
    t0 = time.monotonic()
    out = snakemake(work, "-n", "--configfile", "big.yaml").stdout
    elapsed = time.monotonic() - t0
    counts = job_counts(out)
    assert counts["scrape"] == 256 and "query" not in counts and "labels" not in counts
    assert elapsed < 10, f"snakemake -n took {elapsed:.1f} s"


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


@pytest.mark.slow
@pytest.mark.skipif(CHROMIUM is None, reason="no Chromium on this machine (Debian: apt-get install chromium); .ci/run installs it")
def test_the_report_renders_in_a_browser_with_every_figure_loaded(tiny_run, tmp_path):
    html = tiny_run / "results/demo/report/report.html"
    flags = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={tmp_path / 'profile'}",
    ]
    dom = subprocess.run(
        [CHROMIUM, *flags, "--virtual-time-budget=5000", "--dump-dom", html.as_uri()], capture_output=True, text=True, timeout=120
    ).stdout
    loaded = re.search(r'data-images-loaded="(\d+)/(\d+)"', dom)
    assert loaded, "the page's own image check did not run"
    assert loaded.group(1) == loaded.group(2) == "15", loaded.group(0)
    shot = tmp_path / "report.png"
    subprocess.run(
        [CHROMIUM, *flags, "--hide-scrollbars", "--window-size=1200,3000", f"--screenshot={shot}", html.as_uri()],
        capture_output=True,
        timeout=120,
    )
    from PIL import Image

    pixels = np.asarray(Image.open(shot).convert("L"), dtype=float)
    assert pixels.std() > 10  # a real page, not a blank one
    # the uncertain galaxies' table sorts in the browser: one click on "largest gap" puts the smallest first
    clicked = tmp_path / "clicked.html"
    script = "<script>document.querySelector('table.sortable th:nth-child(5)').click();</script></body>"
    clicked.write_text(html.read_text().replace("</body>", script))
    dom = subprocess.run(
        [CHROMIUM, *flags, "--virtual-time-budget=5000", "--dump-dom", clicked.as_uri()], capture_output=True, text=True, timeout=120
    ).stdout
    body = dom.split('class="sortable small"', 1)[1].split("</table>", 1)[0]
    gaps = [float(row[4]) for row in re.findall(r"<tr>" + r"<td>([^<]*)</td>" * 5, body)]
    assert len(gaps) > 1 and gaps == sorted(gaps), gaps[:10]


@pytest.mark.slow
def test_snakemake_report_collects_the_figures(tiny_run):
    snakemake(tiny_run, "--configfile", "tiny.yaml", "--report", "smk_report.html")
    text = (tiny_run / "smk_report.html").read_text(errors="replace")
    for name in ("confusion_matrix.png", "roc_pr.png", "reliability.png", "training_curves.png", "network.png", "sky_map.png"):
        assert name in text


@pytest.mark.slow
def test_reruns_are_exactly_what_is_stale(tiny_run):
    # the scrape fetches every galaxy of the query, so the labels do not reach it
    after_train = {"train", "evaluate", "morphology_chunk", "morphology", "similarity", "report", "all"}
    everything_after_labels = {"shards_train", "shards_eval", "shards", *after_train}
    # a config key no stage reads: nothing
    (tiny_run / "unread.yaml").write_text(yaml.safe_dump({**TINY, "cluster": {"downloads_on_submit_host": False}, "predict": {"views": 1}}))
    assert planned_jobs(tiny_run, "--configfile", "unread.yaml") == set()
    # a param of one stage: that stage and its descendants
    (tiny_run / "labels.yaml").write_text(yaml.safe_dump({**TINY, "labels": {**TINY["labels"], "threshold": 0.9}}))
    assert planned_jobs(tiny_run, "--configfile", "labels.yaml") == {"labels"} | everything_after_labels
    # --forcerun train: train and what reads the model only
    assert planned_jobs(tiny_run, "--configfile", "tiny.yaml", "--forcerun", "train") == after_train
    # one image chunk deleted: that chunk and what follows
    chunk = tiny_run / "results/demo/images/chunk_1.tar"
    saved = chunk.read_bytes(), chunk.stat()
    chunk.unlink()
    try:
        out = snakemake(tiny_run, "-n", "--configfile", "tiny.yaml").stdout
        counts = {m.group(1): int(m.group(2)) for m in re.finditer(r"^(\w+)\s+(\d+)$", out.split("Job stats:", 1)[1], re.M)}
        assert counts.pop("total") and counts == {
            "scrape": 1,
            "shards_train": 1,
            "shards_eval": 1,
            "shards": 1,
            "train": 1,
            "evaluate": 1,
            "morphology_chunk": 2,  # a new model: every chunk's probabilities
            "morphology": 1,
            "similarity": 1,
            "report": 1,
            "all": 1,
        }
    finally:
        chunk.write_bytes(saved[0])
        os.utime(chunk, ns=(saved[1].st_atime_ns, saved[1].st_mtime_ns))
    # the code of one stage module: a new statement reruns that stage and its descendants, nothing before it;
    # an edited comment or docstring reruns nothing
    for name, expected in (
        ("shards", {"shards_train", "shards_eval", "shards", *after_train}),
        ("labels", {"labels"} | everything_after_labels),
    ):
        module = tiny_run / f"workflow/nightskynet/stages/{name}.py"
        original, stat = module.read_text(), module.stat()
        docstring_end = original.index('"""', 3) + 3
        for edit, plan in (
            (original + "\n# an edited comment\n", set()),
            (original[: docstring_end - 3] + " An edited docstring." + original[docstring_end - 3 :], set()),
            (original + "\nEDITED = 1\n", expected),
        ):
            module.write_text(edit)
            try:
                assert planned_jobs(tiny_run, "--configfile", "tiny.yaml") == plan, edit[-40:]
            finally:
                module.write_text(original)
                os.utime(module, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    # the report's template is part of its code: an edited word reruns the report alone
    template = tiny_run / "workflow/nightskynet/stages/templates/report/sections.html.j2"
    original, stat = template.read_text(), template.stat()
    template.write_text(original.replace("<h2>Result</h2>", "<h2>Results</h2>"))
    try:
        assert planned_jobs(tiny_run, "--configfile", "tiny.yaml") == {"report", "all"}
    finally:
        template.write_text(original)
        os.utime(template, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert planned_jobs(tiny_run, "--configfile", "tiny.yaml") == set()
