# Night Sky Net: galaxy morphology from SDSS cutouts and Galaxy Zoo 1 votes.
#
#   query -> labels -> scrape (chunk jobs) -> shards -> train -> evaluate -> report
#                                                              \-> morphology (chunk jobs) -/
#                                                       predict (on demand)
#
# Stages talk only through files under results/<run>/ (docs/design.md; <run> is config `run`, by
# default the source: demo or sdss, so runs of different sources never touch each other's files).
# Each rule runs one command of the nightskynet package, which the environment provides (`make`
# installs it into .venv/; each conda env of envs/ installs it after creation). A bare `snakemake` in the
# checkout finds this file, and profiles/default/ beside it.
import sys

from snakemake.utils import min_version

# this checkout's package, whose code the rules digest (the one `make` installs), before any other on the path
sys.path.insert(0, f"{workflow.basedir}/workflow")

from nightskynet.core.config import ConfigError, validate_config

min_version("9.0")


configfile: "config.yaml"


report: "workflow/report/workflow.rst"


try:
    validate_config(config, f"{workflow.basedir}/workflow/schemas/config.schema.yaml")
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
include: "workflow/rules/morphology.smk"
include: "workflow/rules/similarity.smk"
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
        expand(rules.scrape.output, chunk=CHUNKS),
        expand(rules.shards_train.output, shard=TRAIN_SHARDS),
        rules.shards_eval.output,
        rules.shards.output,
        rules.train.output,
        rules.evaluate.output,
        expand(rules.morphology_chunk.output, chunk=CHUNKS),
        rules.morphology.output,
        rules.similarity.output,
        rules.report.output,
