"""Config: merging, typing and validation, with one clear line per problem (the key, the value, what is allowed).

Snakemake reads ``--config key=value``: a top-level value is typed (``epochs=3`` is the integer 3),
but a nested one (``--config 'train={resnet: {epochs: 3}}'``) arrives as the string ``"3"``. ``coerce`` gives
such strings the type the schema asks for where they parse as it, so every documented way of
setting a key yields the same value and the schema's own verdict on it.
"""

from __future__ import annotations

import copy
import json
import shutil
from importlib.resources import files
from pathlib import Path

import jsonschema
import yaml

from .errors import NightSkyNetError

# config.yaml and its schema travel with the package (links to the checkout's files, copied into
# a wheel), so a command finds them however the package was installed
DEFAULT_CONFIG = Path(str(files("nightskynet") / "config.yaml"))
SCHEMA = Path(str(files("nightskynet") / "config.schema.yaml"))


class ConfigError(NightSkyNetError, ValueError):
    pass


def parse_yaml(text: str):
    """YAML text as Python values, by libyaml's C parser where PyYAML has it (8x faster than the pure-Python one:
    ~0.2 s of every command that reads config.yaml and its schema), the same values either way."""
    return yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))


def _key(path) -> str:
    return ".".join(str(p) for p in path) or "(top level)"


def describe(error: jsonschema.ValidationError) -> str:
    key = _key(error.absolute_path)
    if error.validator == "additionalProperties":
        extra = sorted(set(error.instance) - set(error.schema.get("properties", {})))
        allowed = ", ".join(sorted(error.schema.get("properties", {})))
        where = f"{key}." if error.absolute_path else ""
        return f"unknown config key {where}{extra[0]!s} (allowed here: {allowed})"
    if error.validator == "required":
        return f"config key {key + '.' if error.absolute_path else ''}{error.message.split(chr(39))[1]} is missing"
    hint = error.schema.get("description", "")
    return f"config key {key} = {json.dumps(error.instance)}: {error.message}" + (f" ({hint})" if hint else "")


def load_schema(schema_path: str | Path = SCHEMA) -> dict:
    return parse_yaml(Path(schema_path).read_text())


def check_command_on_path() -> None:
    """Every workflow job runs the ``nightskynet`` command: stop before any job when PATH lacks it."""
    if shutil.which("nightskynet") is None:
        raise ConfigError(
            "the `nightskynet` command is not on PATH, so no job could run. Activate the environment that has the "
            "package (after `make`: source .venv/bin/activate), or run with --sdm conda."
        )


def runtime_keys(schema_path: str | Path = SCHEMA) -> set[str]:
    """The keys ("section.key") the schema marks ``runtime: true``: how a job runs, not what it makes."""
    schema = load_schema(schema_path)
    return {
        f"{section}.{key}"
        for section, sub in schema["properties"].items()
        for key, spec in sub.get("properties", {}).items()
        if spec.get("runtime")
    }


def _typed(text: str, types: list[str]):
    """``text`` parsed as YAML when that gives one of the JSON-schema ``types``; else ``text`` unchanged."""
    try:
        value = parse_yaml(text)
    except yaml.YAMLError:
        return text
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    ok = {
        "integer": number,  # 1.5 for an integer: the schema then says so, of the number
        "number": number,
        "boolean": isinstance(value, bool),
    }
    return value if any(ok.get(t, False) for t in types) else text


def resolved(schema: dict, root: dict) -> dict:
    """``schema``, or where it is a ``$ref`` such as ``#/$defs/views``, what that points to in ``root``."""
    ref = schema.get("$ref")
    if ref is None:
        return schema
    target = root
    for part in ref.removeprefix("#/").split("/"):
        target = target[part]
    return target


def coerce(value, schema: dict, root: dict | None = None):
    """A copy of ``value`` with strings typed where the schema asks for a number, an integer or a boolean
    (``root``: the whole schema, which ``$ref`` points into; ``schema`` itself at the top)."""
    root = schema if root is None else root
    schema = resolved(schema, root)
    types = schema.get("type")
    types = [types] if isinstance(types, str) else list(types or [])
    if isinstance(value, dict):
        props = schema.get("properties", {})
        return {k: coerce(v, props.get(k, {}), root) for k, v in value.items()}
    if isinstance(value, list):
        items = schema.get("items", {})
        return [coerce(v, items, root) for v in value]
    if isinstance(value, str):
        if "string" in types:
            return value
        if types:
            return _typed(value, types)
        if "enum" in schema and value not in schema["enum"]:  # an enum of booleans or numbers
            typed = parse_yaml(value) if value.strip() else value
            return typed if typed in schema["enum"] else value
    return value


def validate_config(config: dict, schema_path: str | Path = SCHEMA) -> dict:
    """Type nested ``--config`` strings in place, then validate; raise ConfigError listing every problem, one per line."""
    schema = load_schema(schema_path)
    typed = coerce(config, schema)
    config.clear()
    config.update(typed)
    validator = jsonschema.Draft202012Validator(schema)
    errors = sorted(validator.iter_errors(config), key=lambda e: (list(e.absolute_path), e.validator))
    if errors:
        raise ConfigError("\n".join(describe(e) for e in errors))
    problems = combination_problems(config)
    if problems:
        raise ConfigError("\n".join(problems))
    return config


def combination_problems(config: dict) -> list[str]:
    """Settings each valid alone that cannot work together, one line each (checked before any job runs)."""
    from .architecture import recipe_architecture

    problems = []
    crop, shift, size = config["shards"]["crop"], config["shards"]["max_shift"], config["scrape"]["size"]
    if crop + 2 * shift > size:
        problems.append(
            f"shards.crop ({crop}) + 2 x shards.max_shift ({shift}) exceeds scrape.size ({size}): the shifted crops would not "
            "fit the cutouts; lower one of them"
        )
    try:
        recipe_architecture(config["train"]).check(crop)
    except NightSkyNetError as err:
        problems.append(str(err))
    return problems


def merge(base: dict, override: dict) -> dict:
    """``override`` laid over ``base`` key by key, recursively (as Snakemake merges --configfile and --config)."""
    out = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def read_yaml(path: str | Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {path} does not exist")
    try:
        data = parse_yaml(path.read_text())
    except yaml.YAMLError as err:
        raise ConfigError(f"config file {path} is not valid YAML: {err}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path} must hold a mapping of keys to values, not {type(data).__name__}")
    return data


def load_config(overrides: list[str | Path] = (), base: str | Path = DEFAULT_CONFIG) -> dict:
    """``base`` (the checkout's config.yaml) with each file of ``overrides`` merged over it, typed and validated.

    Relative paths in the settings that name files or folders (``demo.sky_dir``,
    ``scrape.cache_dir``, ``train.checkpoint_dir``) are taken relative to the folder ``base``
    really lies in (the checkout, for its config.yaml), as the workflow takes them relative to the
    checkout, so a command gives the same answer from any working directory.
    """
    config = read_yaml(base)
    for path in overrides:
        config = merge(config, read_yaml(path))
    validate_config(config)
    root = Path(base).resolve().parent
    for section, key in PATH_KEYS:
        value = config.get(section, {}).get(key)
        if value and not Path(value).is_absolute():
            config[section][key] = str(root / value)
    return config


PATH_KEYS = (("demo", "sky_dir"), ("scrape", "cache_dir"), ("train", "checkpoint_dir"))
