"""The contract between a rule and its job, written once: the keyword-only parameters of a stage function.

Each stage command (``nightskynet <command>``, ``STAGE_COMMANDS``) runs one function of a stage module. Its
parameters, by their annotation, say where the rule gives each, under the same name:

* ``File`` / ``Files``: a file (one path / several) the rule names under that key in its ``input`` or ``output``;
* ``Wildcard``: the job's wildcard of that name (a chunk or a shard number);
* ``Run[T]``: how the job runs: the rule's resource of that name (``threads``: the job's threads), never a param,
  so changing it reruns nothing;
* ``Client``: the cutout client's settings (``sky.client_options``), from the rule's resources of their names;
* ``Settings``: the rule's ``params.settings``, the JSON of the config entries that decide the outputs.

Parameters without one of these (with a default) are for callers in Python only (a benchmark's training mode).
``nightskynet <command>`` takes exactly these options (``cli``), and the Snakefile's ``nightskynet()`` makes a
rule's command line from the same list, read here from the stage module's syntax tree (no import: the Snakefile
does not load PyTorch to learn a command's options).
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

STAGES = Path(__file__).resolve().parent.parent / "stages"

# command -> (stage module, function)
STAGE_COMMANDS: dict[str, tuple[str, str]] = {
    "query": ("query", "run"),
    "labels": ("labels", "run"),
    "scrape": ("scrape", "run"),
    "shards-train": ("shards", "run_train_shard"),
    "shards-eval": ("shards", "run_eval_shards"),
    "shards-manifest": ("shards", "run_manifest"),
    "train": ("train", "run"),
    "evaluate": ("evaluate", "run"),
    "morphology-chunk": ("morphology", "run_chunk"),
    "morphology": ("morphology", "run_merge"),
    "similarity": ("similarity", "run"),
    "report": ("report", "run"),
}
KINDS = ("File", "Files", "Wildcard", "Run", "Client", "Settings")


class _Kind:
    """An annotation marking where a parameter comes from; ``Run[int]`` also gives the option's type."""

    def __init__(self, kind: str, type_: type = str):
        self.kind, self.type = kind, type_

    def __getitem__(self, type_: type) -> _Kind:
        return _Kind(self.kind, type_)

    def __repr__(self) -> str:
        return f"{self.kind}[{self.type.__name__}]"


File = _Kind("File")
Files = _Kind("Files")
Wildcard = _Kind("Wildcard", int)
Run = _Kind("Run")
Client = _Kind("Client", dict)
Settings = _Kind("Settings", dict)


@dataclass(frozen=True)
class Parameter:
    """One parameter of a stage command: its name (the rule's key, the option ``--<name with dashes>``), its kind
    (one of KINDS) and, for ``Run[T]``, the name of T."""

    name: str
    kind: str
    type_name: str = "str"

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")


@lru_cache(maxsize=None)
def parameters(command: str) -> tuple[Parameter, ...]:
    """The parameters of a stage command, in the order of its function's signature, from its module's syntax tree."""
    module, function = STAGE_COMMANDS[command]
    tree = ast.parse((STAGES / f"{module}.py").read_text())
    node = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == function)
    out = []
    for arg in node.args.kwonlyargs:
        annotation = arg.annotation
        if isinstance(annotation, ast.Subscript) and isinstance(annotation.value, ast.Name) and annotation.value.id in KINDS:
            out.append(Parameter(arg.arg, annotation.value.id, ast.unparse(annotation.slice)))
        elif isinstance(annotation, ast.Name) and annotation.id in KINDS:
            out.append(Parameter(arg.arg, annotation.id))
    return tuple(out)


def file_parameters(command: str) -> set[str]:
    """The names of a command's files: the rule's named inputs and outputs must be exactly these."""
    return {p.name for p in parameters(command) if p.kind in ("File", "Files")}
