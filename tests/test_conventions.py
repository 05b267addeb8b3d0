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


PIP_NAMES = {"PIL": "pillow", "yaml": "pyyaml"}
STDLIB = set(sys.stdlib_module_names)


def module_imports(path, top_level_only=False):
    """(package-internal modules, third-party top-level packages) a module imports, anywhere in it
    (or only at module level: the lazy imports of cli.py belong to the command that runs them)."""
    import ast

    internal, external = set(), set()
    tree = ast.parse(path.read_text())
    for node in tree.body if top_level_only else ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level:  # from .x import y / from . import x
                if node.module:
                    internal.add(node.module.split(".")[0])
                else:
                    internal.update(a.name for a in node.names)
            elif node.module:
                external.add(node.module.split(".")[0])
        elif isinstance(node, ast.Import):
            external.update(a.name.split(".")[0] for a in node.names)
    return internal, {e for e in external if e not in STDLIB and e != "nightskynet"}


def test_each_rule_lists_the_modules_it_runs_and_its_env_has_their_packages():
    pkg = REPO / "workflow" / "nightskynet"
    for smk in (REPO / "workflow" / "rules").glob("*.smk"):
        for rule in re.split(r"^rule ", smk.read_text(), flags=re.M)[1:]:
            name = rule.split(":", 1)[0]
            listed = set(re.findall(r'"(\w+)"', re.search(r"code=code\(([^)]*)\)", rule).group(1)))
            # every job enters through `python -m nightskynet` (cli.py): its module-level imports count too
            entry_internal, packages = module_imports(pkg / "cli.py", top_level_only=True)
            todo, seen = list(listed | entry_internal), set()
            while todo:  # everything the listed modules import from the package, transitively
                mod = todo.pop()
                if mod in seen or not (pkg / f"{mod}.py").exists():
                    continue
                seen.add(mod)
                internal, external = module_imports(pkg / f"{mod}.py")
                packages |= external
                todo.extend(internal - {"__init__"})
            unlisted = {m for m in seen if m not in listed and m not in entry_internal}
            assert not unlisted, f"rule {name} runs {sorted(unlisted)} without listing them in code(...)"
            env_path = re.search(r'conda:\s*"([^"]+)"', rule).group(1)
            env = yaml.safe_load((smk.parent / env_path).read_text())
            pip = {r.split("==")[0].lower() for d in env["dependencies"] if isinstance(d, dict) for r in d["pip"]}
            missing = {PIP_NAMES.get(p, p).lower() for p in packages} - pip
            assert not missing, f"rule {name}: {env_path} lacks {sorted(missing)}"
