"""What each rule of the workflow holds under some configs: its params (what a change reruns it for), its input and
output files, and which rules feed which. Parsed by Snakemake itself, in one process for every config (no Snakemake
started per config); tests/test_reruns.py reads the JSON this prints.

    python tests/rule_params.py CHECKOUT CONFIG.yaml OVERRIDES.json   # a JSON list of overrides -> a JSON list of workflows
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path


def parse(checkout: Path, configfile: Path, overrides: dict) -> dict:
    from snakemake.api import SnakemakeApi
    from snakemake.settings.types import ConfigSettings, ResourceSettings

    with SnakemakeApi() as api:
        workflow = api.workflow(
            resource_settings=ResourceSettings(cores=1),
            config_settings=ConfigSettings(configfiles=[configfile], config=overrides),
            snakefile=checkout / "Snakefile",
            workdir=checkout,
        )._workflow
        return {
            rule.name: {
                "params": {k: str(v) for k, v in rule.params.items() if not callable(v)},
                "input": sorted(str(f) for f in rule.input if not callable(f)),
                "output": sorted(str(f) for f in rule.output),
            }
            for rule in workflow.rules
        }


def feeds(rules: dict) -> dict[str, list[str]]:
    """For each rule, the rules that read one of its outputs."""

    def pattern(path: str) -> re.Pattern:
        return re.compile("^" + re.sub(r"\\\{[^}]+\\\}", ".+", re.escape(path)) + "$")

    outputs = {name: [pattern(p) for p in r["output"]] for name, r in rules.items()}
    return {
        name: sorted(other for other, r in rules.items() if any(p.match(f) for p in outputs[name] for f in r["input"]) and other != name)
        for name in rules
    }


def main() -> int:
    checkout, configfile, overrides = Path(sys.argv[1]), Path(sys.argv[2]), json.loads(Path(sys.argv[3]).read_text())
    workflows = [parse(checkout, configfile, o) for o in overrides]
    print(json.dumps({"workflows": workflows, "feeds": feeds(workflows[0])}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
