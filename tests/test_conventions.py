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
        [sys.executable, "-m", "snakefmt", "--check", "Snakefile", "workflow/rules"],
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


PIP_NAMES = {"PIL": "pillow", "yaml": "pyyaml", "faiss": "faiss-cpu", "sklearn": "scikit-learn"}


def rule_stages():
    """(rule name, its .smk, the stage module it names in code(...), its conda env file) for every rule."""
    for smk in (REPO / "workflow" / "rules").glob("*.smk"):
        for rule in re.split(r"^rule ", smk.read_text(), flags=re.M)[1:]:
            name = rule.split(":", 1)[0]
            stage = re.search(r'code=code\("(\w+)"\)', rule)
            assert stage, f'rule {name} in {smk.name} does not list its code with code("<stage module>")'
            yield name, smk, stage.group(1), re.search(r'conda:\s*"([^"]+)"', rule).group(1)


def third_party_packages(stage: str) -> set[str]:
    """The top-level third-party packages a job of the rule file's ``stage`` imports."""
    from nightskynet.core.package_modules import ENTRY, imports_of, modules_run_by

    found: set[str] = set()
    for mod in modules_run_by(f"stages.{stage}"):
        found |= imports_of(mod, top_level_only=mod in ENTRY)[1]
    return found


def test_each_rules_env_has_the_packages_its_code_imports():
    for name, smk, stage, env_path in rule_stages():
        env = yaml.safe_load((smk.parent / env_path).read_text())
        pip = {r.split("==")[0].lower() for d in env["dependencies"] if isinstance(d, dict) for r in d["pip"]}
        missing = {PIP_NAMES.get(p, p).lower() for p in third_party_packages(stage)} - pip
        assert not missing, f"rule {name}: {env_path} lacks {sorted(missing)}"


def test_the_code_of_a_stage_is_what_its_modules_import():
    from nightskynet.core.package_modules import modules_run_by

    scrape = modules_run_by("stages.scrape")
    assert {"cli", "stages.scrape", "sky.cutout_client", "sky.http_retry", "sky.sky_source", "core.files", "core.errors"} <= set(scrape)
    assert {"__init__", "stages.__init__", "sky.__init__", "core.__init__"} <= set(scrape)  # each folder's __init__ runs on the way
    assert "sky.demo_server" in scrape  # imported inside a function (only demo runs load it): still code the job runs
    assert "stages.train" not in scrape and "net.model" not in scrape  # cli imports each stage inside its own command
    assert "sky.cutout_client" in modules_run_by("stages.predict")  # predict downloads a catalog's cutouts with the same client
    assert "stages.scrape" not in modules_run_by("stages.labels")


def test_every_form_of_import_is_followed(tmp_path, monkeypatch):
    """``from ..core import files``, ``from ..core.files import x``, ``from . import y``, ``import nightskynet.a.b`` and a
    name that a folder's __init__ defines: each leads to its module (a missed one would silently leave it out of the
    digest, and its edits would rerun nothing)."""
    from nightskynet.core import package_modules as pm

    pkg = tmp_path / "nightskynet"
    for path, text in {
        "__init__.py": "__version__ = '1'\n",
        "cli.py": "from .core import errors\n",
        "core/__init__.py": "",
        "core/errors.py": "",
        "core/files.py": "",
        "core/tables.py": "from . import files\n",
        "sky/__init__.py": "NAME = 1\n",
        "sky/votes.py": "import nightskynet.core.tables\n",
        "stages/__init__.py": "",
        "stages/a.py": (
            "from ..core.files import x\nfrom ..sky import NAME\nfrom .. import __version__\ndef f():\n    from ..sky import votes\n"
        ),
    }.items():
        (pkg / path).parent.mkdir(parents=True, exist_ok=True)
        (pkg / path).write_text(text)
    monkeypatch.setattr(pm, "PACKAGE_DIR", pkg)
    pm._imports.cache_clear()
    try:
        assert pm.modules_run_by("stages.a") == sorted(
            [
                "__init__",
                "cli",
                "core.__init__",
                "core.errors",
                "core.files",
                "core.tables",
                "sky.__init__",
                "sky.votes",
                "stages.__init__",
                "stages.a",
            ]
        )
    finally:
        pm._imports.cache_clear()


def test_every_module_of_the_package_is_reachable_and_the_digest_sees_what_python_loads():
    """Every module is run by some stage, the command or the workflow (else the digest machinery would not see it,
    or it is dead code); and for each stage, the modules Python loads on importing it are among those its digest
    covers."""
    from nightskynet.core.package_modules import all_modules, modules_run_by

    stages = sorted(p.stem for p in (REPO / "workflow/nightskynet/stages").glob("*.py") if p.stem != "__init__")
    covered = set().union(*(modules_run_by(f"stages.{s}") for s in stages))
    # the commands a person runs beside the stages' (similar, explore): modules at the package's top, below cli
    commands = [m for m in all_modules() if "." not in m and m not in ("cli", "__main__", "__init__")]
    commands += [m for m in all_modules() if m.split(".")[0] in COMMAND_FOLDERS]  # explore: a command in a folder
    covered |= {m for c in commands for m in modules_run_by(c)}
    # what the Snakefile itself imports
    workflow_text = "\n".join(p.read_text() for p in [REPO / "Snakefile", *(REPO / "workflow/rules").glob("*.smk")])
    used_elsewhere = {m for m in all_modules() if f"nightskynet.{m}" in workflow_text} | {"__main__"}
    unreached = set(all_modules()) - covered - used_elsewhere
    assert not unreached, f"modules no stage, command or workflow file imports: {sorted(unreached)}"
    for stage in stages:
        code = (
            f"import sys, nightskynet.cli, nightskynet.stages.{stage}; print(sorted(m for m in sys.modules if m.startswith('nightskynet')))"
        )
        loaded = eval(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout)
        names = {m.removeprefix("nightskynet").lstrip(".") or "__init__" for m in loaded}
        names = {
            n if n == "__init__" or (REPO / "workflow/nightskynet" / (n.replace(".", "/") + ".py")).is_file() else f"{n}.__init__"
            for n in names
        }
        missing = names - set(modules_run_by(f"stages.{stage}"))
        assert not missing, f"stage {stage}: Python loads {sorted(missing)}, which its code digest leaves out"


# The layers, by folder: a module may import its own folder and the folders listed for it, nothing else
LAYERS = {
    "core": set(),
    "sky": {"core"},
    "images": {"core"},
    "net": {"core", "images"},
    "analysis": {"core", "images"},
    "stages": {"core", "sky", "images", "net", "analysis"},
    "explore": {"core", "sky", "images", "net", "analysis"},  # a command, like similar, beside the stages
}
COMMAND_FOLDERS = ("explore",)  # commands a person runs that need a folder of their own


def test_the_layers_import_downwards_only():
    """core imports nothing above it, the shared folders no stage, no stage another stage, and only cli (on top) sees
    them all: checked on every import of every module, a function's own included."""
    from nightskynet.core.package_modules import all_modules, imports_of

    for module in all_modules():
        folder = module.split(".")[0] if "." in module else None
        if folder is None:  # cli, __main__, the package's __init__: the top
            continue
        allowed = LAYERS[folder] | {folder}
        for target in imports_of(module)[0]:
            target_folder = target.split(".")[0] if "." in target else None
            if target_folder is None:
                assert target == "__init__", f"{module} imports {target}, which sits above every folder"
                continue
            assert target_folder in allowed, f"{module} imports {target}: {folder}/ may import only {sorted(allowed)}"
            if folder == "stages" and target_folder == "stages":
                assert target == "stages.__init__", f"stage {module} imports the stage {target}: move what they share to a shared folder"


def test_each_rule_file_has_its_stage_module_and_back():
    rules = {p.stem for p in (REPO / "workflow/rules").glob("*.smk")} - {"common"}
    stages = {p.stem for p in (REPO / "workflow/nightskynet/stages").glob("*.py")} - {"__init__"}
    assert rules == stages, (
        f"rule files without a stage module: {sorted(rules - stages)}; stage modules without a rule file: {sorted(stages - rules)}"
    )
    for name, smk, stage, _ in rule_stages():
        assert stage == smk.stem, f"rule {name} in {smk.name} digests the code of stage {stage}, not {smk.stem}"


def test_importing_the_package_changes_no_process_state():
    import subprocess
    import sys

    code = "import os; before = os.umask(0o027); import nightskynet.core.files, nightskynet.cli; after = os.umask(0); print(oct(after))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "0o27"


def test_every_benchmark_script_starts():
    for script in sorted((REPO / "benchmarks").glob("*.py")):
        proc = subprocess.run([sys.executable, str(script), "--help"], capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, f"{script.name} --help: {proc.stderr[-2000:]}"


def test_a_real_sdss_job_does_not_load_the_demo_server():
    modules = "nightskynet.cli, nightskynet.stages.scrape, nightskynet.stages.query, nightskynet.stages.predict"
    code = f"import sys, {modules}; print('nightskynet.sky.demo_server' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "False"


def test_the_cutout_clients_settings_are_declared_once():
    """sky.client_options makes the command's options, the rules' resources and their shell options: a scrape job's
    command line carries every one of them with its config value."""
    from nightskynet.cli import build_parser
    from nightskynet.core.config import load_config, runtime_keys
    from nightskynet.sky.client_options import CLIENT_OPTIONS

    config = load_config()
    scrape_help = build_parser()._subparsers._group_actions[0].choices["scrape"].format_help()
    env = {**os.environ, "PATH": os.pathsep.join((str(Path(sys.executable).parent), os.environ.get("PATH", "")))}
    proc = subprocess.run(
        [sys.executable, "-m", "snakemake", "-n", "-p", "-f", "results/demo/images/chunk_0.tar"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    command = next(line for line in proc.stdout.splitlines() if "nightskynet scrape" in line)
    for option in CLIENT_OPTIONS:
        assert f"scrape.{option.key}" in runtime_keys(), f"scrape.{option.key} must be a run key (a resource), not a param"
        assert option.flag in scrape_help
        assert f"{option.flag} {config['scrape'][option.key]:g} " in command + " ", (option.flag, command)


def test_every_stage_function_declares_each_parameter_where_the_rule_gives_it():
    """Every keyword-only parameter of a stage command's function is a File, Files, Wildcard, Run, Client or Settings
    (core.commands), or has a default (for Python callers only); the command line is made from these alone."""
    import ast
    import importlib

    from nightskynet.core.commands import STAGE_COMMANDS, parameters

    for command, (module, function) in STAGE_COMMANDS.items():
        tree = ast.parse((REPO / "workflow/nightskynet/stages" / f"{module}.py").read_text())
        node = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == function)
        declared = {p.name for p in parameters(command)}
        for arg, default in zip(node.args.kwonlyargs, node.args.kw_defaults, strict=True):
            assert arg.arg in declared or default is not None, f"{module}.{function}({arg.arg}): say where it comes from, or give a default"
        assert not node.args.args, f"{module}.{function}: keyword-only parameters, so every caller names them"
        assert callable(getattr(importlib.import_module(f"nightskynet.stages.{module}"), function))


def test_every_rules_command_line_gives_its_command_exactly_the_options_it_takes():
    """A rule's named inputs and outputs, its resources, the `nightskynet` command's options and its stage function's
    parameters are one contract (core.commands): every job of a full demo run passes each option of its command and
    no option the command does not have, so a rule key that is not a parameter, or a parameter the rule does not give,
    fails here."""
    import shlex

    from nightskynet.cli import build_parser

    commands = build_parser()._subparsers._group_actions[0].choices
    env = {**os.environ, "PATH": os.pathsep.join((str(Path(sys.executable).parent), os.environ.get("PATH", "")))}
    proc = subprocess.run(
        [sys.executable, "-m", "snakemake", "-n", "-p", "--forceall"], cwd=REPO, capture_output=True, text=True, timeout=120, env=env
    )
    lines = [line.split("Shell command: ", 1)[1] for line in proc.stdout.splitlines() if line.startswith("Shell command: nightskynet ")]
    seen = set()
    for line in lines:
        words = shlex.split(line.split(" > ")[0])
        name = words[1]
        seen.add(name)
        parser = commands[name]
        takes = {flag for action in parser._actions for flag in action.option_strings}
        required = {action.option_strings[0] for action in parser._actions if action.required and action.option_strings}
        given = {w for w in words[2:] if w.startswith("--")}
        assert given <= takes, f"{name}: the rule passes {sorted(given - takes)}, which the command does not take"
        assert required <= given, f"{name}: the rule does not pass {sorted(required - given)}"
    stage_commands = {n for n in commands if n not in ("demo-sky", "predict", "similar", "explore")}  # a person runs these
    assert seen == stage_commands, f"commands no rule runs: {sorted(stage_commands - seen)}"
