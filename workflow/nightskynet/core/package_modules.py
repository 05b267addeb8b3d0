"""Which of the package's modules a stage runs, read from their imports, and a digest of what they do.

Every workflow job enters through the ``nightskynet`` command (``cli.main``), which loads the
stage's module (``stages.<rule>``); that module's imports of the package, followed to the end, are
the code the job runs. Each rule carries ``code_digest`` of its stage as a param: a hash of those
modules' syntax trees with their docstrings removed (comments never reach the tree), so a change of
what the code does reruns exactly the stages that run it (and what follows them), and an edited
comment, docstring or line break reruns nothing. A module's templates (the files of
``templates/<module's name>/`` beside it, e.g. ``stages/templates/report/`` for ``stages.report``) count
byte for byte: they are what its page says. Imports anywhere in a stage's modules count (a
function's own ``import`` too); for ``cli`` only its module-level imports, since it imports each
stage's module inside that stage's command.

Modules are named by their dotted path inside the package (``stages.train``, ``core.files``, ``cli``;
a folder's ``__init__.py`` is ``stages.__init__``). Every form of import is followed: relative at any
depth (``from ..core import files``, ``from ..core.files import write_atomic``, ``from . import x``) and
absolute (``import nightskynet.core.files``); importing a module also runs the ``__init__`` of each
folder on its way, which counts too.
"""

from __future__ import annotations

import ast
import functools
import hashlib
import sys
from pathlib import Path

PACKAGE = "nightskynet"
PACKAGE_DIR = Path(__file__).resolve().parent.parent
ENTRY = ("cli",)


def module_path(module: str) -> Path:
    """The file of ``module`` (dotted, inside the package)."""
    parts = module.split(".")
    if parts[-1] == "__init__":
        return PACKAGE_DIR.joinpath(*parts[:-1], "__init__.py")
    return PACKAGE_DIR.joinpath(*parts[:-1], f"{parts[-1]}.py")


def all_modules() -> list[str]:
    """Every module of the package, dotted."""
    return sorted(".".join(p.relative_to(PACKAGE_DIR).with_suffix("").parts) for p in PACKAGE_DIR.rglob("*.py"))


def _resolve(parts: list[str]) -> str | None:
    """The module that ``parts`` (a dotted path inside the package) names: a module, a folder's __init__, or None."""
    if not parts:
        return "__init__"
    if module_path(".".join(parts)).is_file() and parts[-1] != "__init__":
        return ".".join(parts)
    if PACKAGE_DIR.joinpath(*parts, "__init__.py").is_file():
        return ".".join([*parts, "__init__"])
    return None


def _with_folders(module: str) -> set[str]:
    """``module`` and the ``__init__`` of every folder Python runs on the way to it."""
    parts = module.split(".")
    if parts[-1] == "__init__":
        parts = parts[:-1]
    found = {module, "__init__"}
    for depth in range(1, len(parts)):
        found.add(".".join([*parts[:depth], "__init__"]))
    return found


def imports_of(module: str, top_level_only: bool = False) -> tuple[set[str], set[str]]:
    """(package modules, third-party top-level packages) that ``module`` imports."""
    internal, external = _imports(module, top_level_only)
    return set(internal), set(external)


@functools.cache  # every rule's ``code()`` walks the same modules: each is parsed once per process
def _imports(module: str, top_level_only: bool) -> tuple[frozenset[str], frozenset[str]]:
    internal: set[str] = set()
    external: set[str] = set()
    tree = ast.parse(module_path(module).read_text())
    here = module.split(".")[:-1]  # the folder the module lies in (for an __init__: its own folder)

    def take(base: list[str], names: list[str]) -> None:
        # ``from <base> import name``: name is a module of its own, or something ``base`` defines
        for name in names:
            target = _resolve([*base, name]) or _resolve(base)
            if target is None:
                raise ImportError(f"{module_path(module)}: imports {'.'.join([*base, name])}, which is not in the package")
            internal.update(_with_folders(target))

    for node in tree.body if top_level_only else ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                if node.level - 1 > len(here):
                    raise ImportError(f"{module_path(module)}: a relative import above the package")
                base = here[: len(here) - (node.level - 1)] + (node.module.split(".") if node.module else [])
                take(base, [a.name for a in node.names])
            elif node.module and node.module.split(".")[0] == PACKAGE:
                take(node.module.split(".")[1:], [a.name for a in node.names])
            elif node.module:
                external.add(node.module.split(".")[0])
        elif isinstance(node, ast.Import):
            for alias in node.names:
                parts = alias.name.split(".")
                if parts[0] == PACKAGE:
                    target = _resolve(parts[1:])
                    if target is None:
                        raise ImportError(f"{module_path(module)}: imports {alias.name}, which is not in the package")
                    internal.update(_with_folders(target))
                else:
                    external.add(parts[0])
    external = {e for e in external if e not in sys.stdlib_module_names}
    internal.discard(module)
    return frozenset(internal), frozenset(external)


def modules_run_by(stage_module: str) -> list[str]:
    """The package modules a job of ``stage_module`` runs: the entry point, the stage's module and what they import."""
    seen: set[str] = set()
    todo = sorted(_with_folders(stage_module))
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
    tree = ast.parse(module_path(module).read_text())
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and isinstance(first.value.value, str):
                node.body = node.body[1:] or [ast.Pass()]
    return ast.dump(tree, annotate_fields=False)


def templates_of(module: str) -> list[Path]:
    """The files a module renders (``templates/<its name>/`` in its folder), sorted; none for most modules."""
    folder = module_path(module).parent / "templates" / module.split(".")[-1]
    return sorted(p for p in folder.rglob("*") if p.is_file()) if folder.is_dir() else []


def code_digest(stage_module: str) -> str:
    """sha256 (16 hex digits) of what the modules a job of ``stage_module`` runs do: their names and docstring-free
    syntax trees, and their templates' bytes."""
    h = hashlib.sha256()
    for module in modules_run_by(stage_module):
        h.update(f"{module}\n{_tree_without_docstrings(module)}\n".encode())
        for template in templates_of(module):
            h.update(f"{template.relative_to(PACKAGE_DIR).as_posix()}\n".encode() + template.read_bytes() + b"\n")
    return h.hexdigest()[:16]
