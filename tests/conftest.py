import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent

SKY_DIR = REPO / "resources" / "demo_sky"

# the tiny end-to-end config: 60 galaxies, 2 chunks, 240 training images, 1 epoch
TINY = {
    "demo": {"sky_dir": str(SKY_DIR)},
    "query": {"limit": 60},
    "labels": {"uncertain_max": 10},
    "scrape": {"chunks": 2},
    "shards": {"total": 240, "train_shards": 1},
    "train": {"resnet": {"epochs": 1}, "study": {"epochs": 1}},
    "report": {"examples_per_class": 2},
}
# the cutout client for tests: quick retries against local servers
FAST_CLIENT = {"concurrency": 8, "max_rate": 0, "timeout_s": 30, "max_attempts": 3, "backoff_base_s": 0.01, "backoff_max_s": 0.1}


def project_config(overrides: dict | None = None) -> dict:
    """The checkout's config.yaml with ``overrides`` merged over it, typed and validated, as a run would see it."""
    from nightskynet.core.config import load_config, merge, validate_config

    config = merge(load_config(), overrides or {})
    return validate_config(config)


def client(**overrides) -> dict:
    """The cutout client's settings for tests (FAST_CLIENT with ``overrides``)."""
    return {**FAST_CLIENT, **overrides}


def geometry(**overrides) -> dict:
    """The default cutout geometry from config.yaml, with ``overrides``."""
    from nightskynet.sky.cutout_client import GEOMETRY_KEYS

    return {**{k: project_config()["scrape"][k] for k in GEOMETRY_KEYS}, **overrides}


@pytest.fixture(scope="session")
def repo() -> Path:
    return REPO


@pytest.fixture(scope="session")
def demo_sky_url():
    """The real demo SkyServer, in its own process, on a free loopback port (capped at 25 rows per answer)."""
    from nightskynet.sky.demo_server import running_demo_sky

    with running_demo_sky(SKY_DIR, seed=1, max_rows=25) as url:
        yield url


@pytest.fixture(scope="session")
def scraped(tmp_path_factory):
    """Labels and chunk files for 160 demo galaxies, downloaded from the real demo SkyServer."""
    from nightskynet.sky.demo_sky import build_demo_sky
    from nightskynet.stages import scrape
    from nightskynet.stages.labels import make_labels

    tmp = tmp_path_factory.mktemp("shards")
    catalog = build_demo_sky(SKY_DIR, seed=1).catalog.iloc[::9].head(160).reset_index(drop=True)
    labels, _ = make_labels(catalog, 0.95, 0.2, 0.1, 20, seed=1)
    labels_csv = tmp / "labels.csv"
    labels.to_csv(labels_csv, index=False)
    settings = project_config({"scrape": {"chunks": 2}})
    tars, manifests = [], []
    for k in range(2):
        tars.append(str(tmp / f"chunk_{k}.tar"))
        manifests.append(str(tmp / f"chunk_{k}.manifest.csv"))
        scrape.run(
            catalog=labels_csv, tar=tars[-1], manifest=manifests[-1], chunk=k, settings=settings, client=client(), cache_dir=tmp / "cache"
        )
    return tmp, str(labels_csv), manifests, tars


def build_shards(tmp, labels_csv, manifests, tars, tag, cfg):
    """Run the three shards commands into tmp/tag; return (train paths, eval paths, manifest)."""
    from nightskynet.core.vocabulary import EVAL_SPLITS
    from nightskynet.stages import shards

    settings = {"shards": cfg, "scrape": geometry()}
    out = tmp / tag
    out.mkdir()
    train = [str(out / f"train_{k}.npz") for k in range(cfg["train_shards"])]
    inputs = {"labels": labels_csv, "scrape_manifests": manifests, "chunk_tars": tars}
    for k, path in enumerate(train):
        shards.run_train_shard(**inputs, train_shard=path, shard=k, settings=settings)
    evals = {s: str(out / f"{s}.npz") for s in EVAL_SPLITS}
    shards.run_eval_shards(**inputs, **evals, settings=settings)
    manifest = shards.run_manifest(
        labels=labels_csv,
        scrape_manifests=manifests,
        shards=train + list(evals.values()),
        shards_manifest=str(out / "manifest.json"),
        settings=settings,
    )
    return train, evals, manifest


def snakemake(workdir: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    """The real Snakemake in ``workdir``, with this interpreter's environment active (its bin/ on PATH), as after `make`."""
    env = {**os.environ, "PATH": os.pathsep.join((str(Path(sys.executable).parent), os.environ.get("PATH", "")))}
    proc = subprocess.run(
        [sys.executable, "-m", "snakemake", "--cores", "2", *args], cwd=workdir, capture_output=True, text=True, timeout=900, env=env
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"snakemake {' '.join(args)} failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}")
    return proc


def copy_repo(dest: Path) -> Path:
    dest.mkdir()
    for item in ("Snakefile", "config.yaml", "envs", "profiles"):
        src = REPO / item
        (shutil.copytree if src.is_dir() else shutil.copy2)(src, dest / item)
    shutil.copytree(REPO / "workflow", dest / "workflow", ignore=shutil.ignore_patterns("__pycache__"))
    return dest


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory):
    """A complete run of the real workflow on the tiny config, in a copy of the repository."""
    import yaml

    work = copy_repo(tmp_path_factory.mktemp("e2e") / "repo")
    (work / "tiny.yaml").write_text(yaml.safe_dump(TINY))
    snakemake(work, "--configfile", "tiny.yaml")
    return work
