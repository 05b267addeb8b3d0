"""Workflow conventions: `snakemake --lint` clean, snakefmt-formatted, every rule with log, benchmark and conda env."""

import os
import re
import subprocess
import sys
from pathlib import Path

import yaml
from conftest import REPO


def test_snakemake_lint_is_clean():
    env = {**os.environ, "PATH": os.pathsep.join((str(Path(sys.executable).parent), os.environ.get("PATH", "")))}
    proc = subprocess.run([sys.executable, "-m", "snakemake", "--lint"], cwd=REPO, capture_output=True, text=True, timeout=120, env=env)
    out = proc.stdout + proc.stderr
    assert "Congratulations, your workflow is in a good condition!" in out, out[-3000:]


def test_ruff_check_and_format_are_clean():
    for args in (["check"], ["format", "--check"]):
        proc = subprocess.run(
            [sys.executable, "-m", "ruff", *args, "workflow", "tests", "benchmarks"], cwd=REPO, capture_output=True, text=True, timeout=120
        )
        assert proc.returncode == 0, f"ruff {' '.join(args)}:\n{proc.stdout[-3000:]}{proc.stderr[-1000:]}"


def test_snakefmt_check_is_clean():
    proc = subprocess.run(
        [sys.executable, "-m", "snakefmt", "--check", "workflow/Snakefile", "workflow/rules"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
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


PIP_NAMES = {"PIL": "pillow", "yaml": "pyyaml"}


def rule_stages():
    """(rule name, its .smk, the stage module it names in code(...), its conda env file) for every rule."""
    for smk in (REPO / "workflow" / "rules").glob("*.smk"):
        for rule in re.split(r"^rule ", smk.read_text(), flags=re.M)[1:]:
            name = rule.split(":", 1)[0]
            stage = re.search(r'code=code\("(\w+)"\)', rule)
            assert stage, f'rule {name} in {smk.name} does not list its code with code("<stage module>")'
            yield name, smk, stage.group(1), re.search(r'conda:\s*"([^"]+)"', rule).group(1)


def third_party_packages(stage_module: str) -> set[str]:
    """The top-level third-party packages a job of ``stage_module`` imports."""
    from nightskynet.package_modules import ENTRY, imports_of, modules_run_by

    found: set[str] = set()
    for mod in modules_run_by(stage_module):
        found |= imports_of(mod, top_level_only=mod in ENTRY)[1]
    return found


def test_each_rules_env_has_the_packages_its_code_imports():
    for name, smk, stage, env_path in rule_stages():
        env = yaml.safe_load((smk.parent / env_path).read_text())
        pip = {r.split("==")[0].lower() for d in env["dependencies"] if isinstance(d, dict) for r in d["pip"]}
        missing = {PIP_NAMES.get(p, p).lower() for p in third_party_packages(stage)} - pip
        assert not missing, f"rule {name}: {env_path} lacks {sorted(missing)}"


def test_the_code_of_a_stage_is_what_its_modules_import():
    from nightskynet.package_modules import modules_run_by

    scrape = modules_run_by("scrape")
    assert {"cli", "scrape", "cutout_client", "http_retry", "sky_source", "files", "errors"} <= set(scrape)
    assert "demo_server" in scrape  # imported inside a function (only demo runs load it): still code the job runs
    assert "train" not in scrape and "model" not in scrape  # cli imports each stage inside its own command
    assert "cutout_client" in modules_run_by("predict")  # predict downloads a catalog's cutouts with the same client
    assert "scrape" not in modules_run_by("labels")


STAGE_MODULES = ("query", "labels", "scrape", "shards", "train", "evaluate", "catalog", "report", "predict")


def test_no_stage_module_imports_another():
    from nightskynet.package_modules import imports_of

    for stage in STAGE_MODULES:
        crossing = imports_of(stage)[0] & (set(STAGE_MODULES) - {stage})
        assert not crossing, f"{stage}.py imports the stage module(s) {sorted(crossing)}: move what they share to a module of its own"


def test_importing_the_package_changes_no_process_state():
    import subprocess
    import sys

    code = "import os; before = os.umask(0o027); import nightskynet.files, nightskynet.cli; after = os.umask(0); print(oct(after))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "0o27"


def test_every_benchmark_script_starts():
    for script in sorted((REPO / "benchmarks").glob("*.py")):
        proc = subprocess.run([sys.executable, str(script), "--help"], capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, f"{script.name} --help: {proc.stderr[-2000:]}"


def test_a_real_sdss_job_does_not_load_the_demo_server():
    modules = "nightskynet.cli, nightskynet.scrape, nightskynet.query, nightskynet.predict"
    code = f"import sys, {modules}; print('nightskynet.demo_server' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "False"
