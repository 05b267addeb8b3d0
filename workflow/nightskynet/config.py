"""Config validation: one clear line per problem, naming the key, the value and what is allowed."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import yaml


class ConfigError(ValueError):
    pass


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


def validate_config(config: dict, schema_path: str | Path) -> None:
    """Raise ConfigError naming the first offending key (all problems listed, one per line)."""
    schema = yaml.safe_load(Path(schema_path).read_text())
    validator = jsonschema.Draft202012Validator(schema)
    errors = sorted(validator.iter_errors(config), key=lambda e: (list(e.absolute_path), e.validator))
    if errors:
        raise ConfigError("\n".join(describe(e) for e in errors))
