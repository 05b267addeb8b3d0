"""Which of the package's modules a stage runs, read from their imports, and a digest of what they do.

Every workflow job enters through the ``nightskynet`` command (``cli.main``), which loads the
stage's module; that module's imports of the package, followed to the end, are the code the
job runs. Each rule carries ``code_digest`` of its stage as a param: a hash of those modules'
syntax trees with their docstrings removed (comments never reach the tree), so a change of what the
code does reruns exactly the stages that run it (and what follows them), and an edited comment,
docstring or line break reruns nothing. Imports anywhere in a stage's modules count (a function's
own ``import`` too); for ``cli`` only its module-level imports, since it imports each stage's
module inside that stage's command.
"""

from __future__ import annotations

import ast
import functools
import hashlib
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


@functools.cache
def _tree_without_docstrings(module: str) -> str:
    """The module's syntax tree as text, without docstrings and without line numbers."""
    tree = ast.parse((PACKAGE_DIR / f"{module}.py").read_text())
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and isinstance(first.value.value, str):
                node.body = node.body[1:] or [ast.Pass()]
    return ast.dump(tree, annotate_fields=False)


def code_digest(stage_module: str) -> str:
    """sha256 (16 hex digits) of what the modules a job of ``stage_module`` runs do: their names and docstring-free syntax trees."""
    h = hashlib.sha256()
    for module in modules_run_by(stage_module):
        h.update(f"{module}\n{_tree_without_docstrings(module)}\n".encode())
    return h.hexdigest()[:16]
