"""Workflow conventions: `snakemake --lint` clean, snakefmt-formatted, every rule with log, benchmark and conda env."""

import re
import subprocess
import sys

import yaml

from conftest import REPO


def test_snakemake_lint_is_clean():
    proc = subprocess.run([sys.executable, "-m", "snakemake", "--lint"], cwd=REPO, capture_output=True, text=True, timeout=120)
    out = proc.stdout + proc.stderr
    assert "Congratulations, your workflow is in a good condition!" in out, out[-3000:]


def test_snakefmt_check_is_clean():
    proc = subprocess.run([sys.executable, "-m", "snakefmt", "--check", "Snakefile", "workflow/rules"], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_every_rule_has_log_benchmark_and_a_pinned_conda_env():
    pinned = {}
    for line in (REPO / "pyproject.toml").read_text().splitlines():
        m = re.match(r'\s*"([A-Za-z0-9_.-]+)==([^"]+)"', line)
        if m:
            pinned[m.group(1).lower()] = m.group(2)
    for smk in (REPO / "workflow" / "rules").glob("*.smk"):
        text = smk.read_text()
        for rule in re.split(r"^rule ", text, flags=re.M)[1:]:
            name = rule.split(":", 1)[0]
            for directive in ("log:", "benchmark:", "conda:"):
                assert directive in rule, f"rule {name} in {smk.name} has no {directive}"
            env_path = re.search(r'conda:\s*"([^"]+)"', rule).group(1)
            env = yaml.safe_load((smk.parent / env_path).read_text())
            pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
            for requirement in pip:
                pkg, version = requirement.split("==")
                assert pinned.get(pkg.lower()) == version, f"{env_path}: {requirement} differs from pyproject.toml"
