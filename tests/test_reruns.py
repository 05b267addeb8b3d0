"""For every key of config.yaml, the stages a change reruns, against the table in docs/design.md.

Each key is changed alone, on a finished tiny run, and the real Snakemake says what it would run
(``snakemake -n``). A key missing from the table, or a table row that Snakemake contradicts, fails.
"""

import re
import shutil
from concurrent.futures import ThreadPoolExecutor

import pytest
import yaml
from conftest import REPO, SKY_DIR, TINY, project_config, snakemake

from nightskynet.core.config import merge as merge_config

pytestmark = pytest.mark.slow
RULES = (
    "query",
    "labels",
    "scrape",
    "shards_train",
    "shards_eval",
    "shards",
    "train",
    "evaluate",
    "morphology_chunk",
    "morphology",
    "similarity",
    "report",
)

# a valid other value where the generic change (below) would not be one
OTHER_VALUE = {
    "source": "sdss",
    "run": "another-run",
    "sdss.base_url": "https://skyserver.example.org",
    "sdss.release": "dr16",
    "demo.scale_to": 3000,
    "query.tables": ["zooSpec"],
    "scrape.scale_mode": "adaptive",
    "scrape.size": 128,
    "shards.crop": 56,
    "shards.max_shift": 3,
    "labels.threshold": 0.9,
    "train.device": "cpu",
    "train.recipe": "study",
    "train.targets": "hard",
    "train.study.model.channels": [16, 32, 64, 128],
    "train.study.model.kernels": [5, 5, 3, 3],
    "train.study.model.dense": [256, 256, 256, 128],
    "similarity.merger_likeness.method": "examples",
}


def leaf_keys(config: dict, prefix: str = "") -> dict[str, object]:
    out = {}
    for key, value in config.items():
        if isinstance(value, dict):
            out.update(leaf_keys(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def other_value(key: str, value, tmp_path):
    if key in OTHER_VALUE:
        return OTHER_VALUE[key]
    if key == "demo.sky_dir":
        copy = tmp_path / "another_sky"
        if not copy.exists():
            copy.symlink_to(SKY_DIR, target_is_directory=True)
        return str(copy)
    if key == "predict.input":
        return str(SKY_DIR / "images")
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        return value + 1
    if isinstance(value, float):
        return round(value * 0.5, 6) if value else 0.5
    if isinstance(value, str):
        return value + "_elsewhere"
    raise AssertionError(f"no other value for {key} = {value!r}: add one to OTHER_VALUE")


def nested(key: str, value) -> dict:
    out: dict = {}
    node = out
    parts = key.split(".")
    for part in parts[:-1]:
        node = node.setdefault(part, {})
    node[parts[-1]] = value
    return out


def documented_reruns() -> dict[str, set[str]]:
    """The table of docs/design.md: key -> rules a change reruns (source: demo)."""
    text = (REPO / "docs" / "design.md").read_text()
    section = text.split("## What a change reruns", 1)[1].split("\n## ", 1)[0]
    table = {}
    for row in re.finditer(r"^\| `([\w.]+)` \| ([^|]+) \|", section, re.M):
        cell = row.group(2).strip()
        table[row.group(1)] = set() if cell.startswith("nothing") else {r.strip(" `") for r in cell.split(",")}
    return table


def planned(work, config_file: str) -> set[str]:
    out = snakemake(work, "-n", "--configfile", config_file).stdout
    if "Nothing to be done" in out:
        return set()
    stats = out.split("Job stats:", 1)[1]
    return {m.group(1) for m in re.finditer(r"^(\w+)\s+\d+$", stats, re.M)} - {"total", "all"}


def test_every_config_key_reruns_what_the_design_table_says(tiny_run, tmp_path):
    base = project_config(TINY)
    keys = leaf_keys(base)
    table = documented_reruns()
    assert not set(keys) - set(table), f"docs/design.md has no row for {sorted(set(keys) - set(table))}"
    assert not set(table) - set(keys), f"docs/design.md lists keys config.yaml does not have: {sorted(set(table) - set(keys))}"
    for rules in table.values():
        assert rules <= set(RULES), rules

    def check(item):
        i, (key, value) = item
        changed = merge_config(TINY, nested(key, other_value(key, value, tmp_path)))
        name = f"change_{i}.yaml"
        (tiny_run / name).write_text(yaml.safe_dump(changed))
        return key, planned(tiny_run, name)

    # the keys documented to rerun nothing, changed all at once: a job reruns when any of its params
    # changed, so an empty plan clears every one of them in one dry run; otherwise each is tried alone
    quiet = sorted(k for k in keys if not table[k])
    changed = dict(TINY)
    for key in quiet:
        changed = merge_config(changed, nested(key, other_value(key, keys[key], tmp_path)))
    (tiny_run / "change_quiet.yaml").write_text(yaml.safe_dump(changed))
    seen = {k: set() for k in quiet} if not planned(tiny_run, "change_quiet.yaml") else {}
    with ThreadPoolExecutor(2) as pool:
        seen.update(pool.map(check, enumerate(sorted((k, v) for k, v in keys.items() if k not in seen))))
    wrong = {k: {"documented": sorted(table[k]), "snakemake": sorted(v)} for k, v in seen.items() if v != table[k]}
    assert not wrong, wrong
    assert planned(tiny_run, "tiny.yaml") == set()
    shutil.rmtree(tmp_path / "another_sky", ignore_errors=True)


def test_the_tiny_run_is_not_stale(tiny_run):
    assert planned(tiny_run, "tiny.yaml") == set()
