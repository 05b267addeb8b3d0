"""Which of the package's modules a stage runs, read from their imports.

Every workflow job enters through the ``nightskynet`` command (``cli.main``), which loads the
stage's module; that module's imports of the package, followed to the end, are the code the
job runs. The Snakefile lists these files among each rule's inputs, so editing one reruns exactly
the stages that run it (and what follows them), and nothing else. Imports anywhere in a stage's
modules count (a function's own ``import`` too); for ``cli`` only its module-level imports, since
it imports each stage's module inside that stage's command.
"""

from __future__ import annotations

import ast
import functools
import sys
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
ENTRY = ("cli",)


def imports_of(module: str, top_level_only: bool = False) -> tuple[set[str], set[str]]:
    """(package modules, third-party top-level packages) that ``module`` imports."""
    internal, external = _imports(module, top_level_only)
    return set(internal), set(external)


@functools.cache  # every rule's ``code()`` walks the same modules: each is parsed once per process (snakemake -n: 1 s less)
def _imports(module: str, top_level_only: bool) -> tuple[frozenset[str], frozenset[str]]:
    internal, external = set(), set()
    tree = ast.parse((PACKAGE_DIR / f"{module}.py").read_text())
    for node in tree.body if top_level_only else ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level:  # from .x import y / from . import x
                names = [node.module.split(".")[0]] if node.module else [a.name for a in node.names]
                # a name that is no module of its own (``from . import __version__``) comes from __init__
                internal.update(n if (PACKAGE_DIR / f"{n}.py").is_file() else "__init__" for n in names)
            elif node.module:
                external.add(node.module.split(".")[0])
        elif isinstance(node, ast.Import):
            external.update(a.name.split(".")[0] for a in node.names)
    external = {e for e in external if e not in sys.stdlib_module_names and e != "nightskynet"}
    return frozenset(internal), frozenset(external)


def modules_run_by(stage_module: str) -> list[str]:
    """The package modules a job of ``stage_module`` runs: the entry point, the stage's module and what they import."""
    seen: set[str] = set()
    todo = [stage_module]
    for entry in ENTRY:
        seen.add(entry)
        todo.extend(imports_of(entry, top_level_only=True)[0])
    while todo:
        mod = todo.pop()
        if mod in seen:
            continue
        seen.add(mod)
        todo.extend(imports_of(mod)[0])
    return sorted(seen)


def module_files(stage_module: str, package_dir: str = "workflow/nightskynet") -> list[str]:
    """``modules_run_by`` as file paths relative to the repository, for a rule's inputs."""
    return [f"{package_dir}/{m}.py" for m in modules_run_by(stage_module)]
