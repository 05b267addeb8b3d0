"""For every key of config.yaml, the rules a change reruns, against the table in docs/design.md.

Each key is changed alone and Snakemake parses the workflow (tests/rule_params.py: one process for every key): a
rule reruns when its params, its input files or its output files change, and so does every rule after it. The
table says which rule reads which key; a key missing from it, or a row Snakemake contradicts, fails. A few keys are
also changed on a finished tiny run and ``snakemake -n`` asked what it would run: the cascade as Snakemake runs it.
"""

import json
import re
import subprocess
import sys

import pytest
import yaml
from conftest import REPO, SKY_DIR, TINY, project_config, snakemake

from nightskynet.core.config import merge as merge_config

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
    "evaluate.views": 8,
    "morphology.views": 8,
    "predict.views": 8,
}
ON_DEMAND = {"predict"}  # rules outside rule all: a run never reruns them


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


def documented_readers() -> dict[str, set[str]]:
    """The table of docs/design.md: key -> the rules that read it ("every rule" for a key read by all)."""
    text = (REPO / "docs" / "design.md").read_text()
    section = text.split("## What a change reruns", 1)[1].split("\n## ", 1)[0]
    readers: dict[str, set[str]] = {}
    for row in re.finditer(r"^\| (`\w+`|every rule) \| ([^|]*) \|", section, re.M):
        rule = row.group(1).strip("`")
        for key in re.findall(r"`([\w.]+)`", row.group(2)):
            readers.setdefault(key, set()).add(rule)
    return readers


def downstream(rules: set[str], feeds: dict[str, list[str]]) -> set[str]:
    """The rules and every rule after them."""
    out, todo = set(rules), list(rules)
    while todo:
        for after in feeds[todo.pop()]:
            if after not in out:
                out.add(after)
                todo.append(after)
    return out


@pytest.fixture(scope="module")
def parsed(tmp_path_factory):
    """(every key's value, the workflow as parsed with each key changed alone (first: unchanged), which rule feeds which)."""
    tmp = tmp_path_factory.mktemp("reruns")
    keys = leaf_keys(project_config(TINY))
    changes = [{}] + [nested(k, other_value(k, v, tmp)) for k, v in keys.items()]
    (tmp / "tiny.yaml").write_text(yaml.safe_dump(merge_config(yaml.safe_load((REPO / "config.yaml").read_text()), TINY)))
    (tmp / "changes.json").write_text(json.dumps(changes))
    proc = subprocess.run(
        [sys.executable, str(REPO / "tests" / "rule_params.py"), str(REPO), str(tmp / "tiny.yaml"), str(tmp / "changes.json")],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    return keys, dict(zip(["", *keys], out["workflows"], strict=True)), out["feeds"]


def test_every_config_key_reruns_what_the_design_table_says(parsed):
    keys, workflows, feeds = parsed
    table = documented_readers()
    every = set(workflows[""])
    assert not set(table) - set(keys), f"docs/design.md names keys config.yaml does not have: {sorted(set(table) - set(keys))}"
    wrong = {}
    for key in keys:
        changed = {rule for rule in every if workflows[key][rule] != workflows[""][rule]}
        readers = table.get(key, set())
        documented = every if "every rule" in readers else readers
        if (
            downstream(changed, feeds) - ON_DEMAND != downstream(documented, feeds) - ON_DEMAND
            or changed & ON_DEMAND != documented & ON_DEMAND
        ):
            wrong[key] = {"documented": sorted(documented), "snakemake": sorted(changed)}
    assert not wrong, wrong


@pytest.mark.slow
@pytest.mark.parametrize("key", ["labels.threshold", "shards.total", "morphology.views", "report.examples_per_class", "scrape.concurrency"])
def test_a_change_on_a_finished_run_reruns_its_readers_and_what_follows(tiny_run, parsed, tmp_path, key):
    keys, workflows, feeds = parsed
    changed = {rule for rule in workflows[""] if workflows[key][rule] != workflows[""][rule]}
    expected = downstream(changed, feeds) - ON_DEMAND
    name = f"change_{key}.yaml"
    (tiny_run / name).write_text(yaml.safe_dump(merge_config(TINY, nested(key, other_value(key, keys[key], tmp_path)))))
    out = snakemake(tiny_run, "-n", "--configfile", name).stdout
    planned = (
        set() if "Nothing to be done" in out else {m.group(1) for m in re.finditer(r"^(\w+)\s+\d+$", out.split("Job stats:", 1)[1], re.M)}
    )
    # "all" only gathers the outputs; Job stats list it (and "total") whenever anything runs
    assert planned - {"total", "all"} == expected - {"all"}, (key, sorted(planned), sorted(expected))
