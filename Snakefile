# Night Sky Net: galaxy morphology from SDSS cutouts and Galaxy Zoo 1 votes.
#
#   query -> labels -> scrape (chunk jobs) -> shards -> train -> evaluate -> report
#
# Stages talk only through files under results/ (see ../shared/DESIGN.md, mirrored in docs/).
# Each rule runs one command of the nightskynet package (workflow/nightskynet/).
import os
import sys

from snakemake.utils import min_version

min_version("9.0")

# Jobs run `python -m nightskynet ...`: the package from this checkout, and (unless a conda env
# of the rule takes over) the Python that runs Snakemake, even when its venv is not activated.
PACKAGE_ROOT = os.path.join(workflow.basedir, "workflow")
sys.path.insert(0, PACKAGE_ROOT)
os.environ.update(
    PYTHONPATH=os.pathsep.join(
        p for p in (PACKAGE_ROOT, os.environ.get("PYTHONPATH", "")) if p
    ),
    PATH=os.pathsep.join((os.path.dirname(sys.executable), os.environ.get("PATH", ""))),
)

from nightskynet.config import ConfigError, validate_config


configfile: "config.yaml"


report: "workflow/report/workflow.rst"


try:
    validate_config(
        config, os.path.join(workflow.basedir, "workflow/schemas/config.schema.yaml")
    )
except ConfigError as err:
    raise WorkflowError(
        f"invalid config (config.yaml and any --configfile/--config):\n{err}"
    ) from None


include: "workflow/rules/common.smk"
include: "workflow/rules/query.smk"
include: "workflow/rules/labels.smk"
include: "workflow/rules/scrape.smk"
include: "workflow/rules/shards.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/report.smk"
include: "workflow/rules/predict.smk"


if config["cluster"]["downloads_on_submit_host"]:

    localrules:
        query,
        scrape,


rule all:
    default_target: True
    input:
        # every stage's outputs, not just the report: Snakemake then notices a deleted
        # intermediate file (an image chunk, a shard) and remakes it and what follows
        rules.query.output,
        rules.labels.output,
        expand(rules.scrape.output, k=CHUNKS),
        expand(rules.shards_train.output, k=TRAIN_SHARDS),
        rules.shards_eval.output,
        rules.shards.output,
        rules.train.output,
        rules.evaluate.output,
        rules.report.output,
