import json
import os
import shlex

from snakemake.settings.types import DeploymentMethod

from nightskynet.core import layout
from nightskynet.core.commands import parameters
from nightskynet.core.config import ConfigError, check_command_on_path, runtime_keys
from nightskynet.core.package_modules import code_digest
from nightskynet.sky.client_options import CLIENT_OPTIONS


def require_nightskynet_command():
    """Every job runs the `nightskynet` command: stop before the first one when PATH lacks it
    (checked when jobs are about to run, so --lint and dry runs work without the environment).
    """
    if DeploymentMethod.CONDA in workflow.deployment_settings.deployment_method:
        return
    try:
        check_command_on_path()
    except ConfigError as err:
        raise WorkflowError(str(err)) from None


onstart:
    require_nightskynet_command()


# every output of this run lies under results/<run>/ (nightskynet.core.layout): a run of another
# source (or another name) never deletes or overwrites this one's files; the caches under
# results/cache/ are shared, keyed by what they hold
RUN_FOLDER = layout.run_folder(config)


def results(path):
    """``path`` (relative to the run's folder, often one of ``layout``'s) under results/<run>/."""
    return f"{RUN_FOLDER}/{path}"


def files(wildcards, input, output):
    """A rule's param: every named input and output of the job as ``--<key> PATH...``, quoted; the
    rule's keys are its command's file options (``nightskynet.core.commands``). Unnamed inputs (the
    demo sky's catalog) are there only to rerun the job when they change."""
    options = []
    for key, value in [*input.items(), *output.items()]:
        paths = value if isinstance(value, list) else [value]
        options.append(
            f"--{key.replace('_', '-')} " + " ".join(shlex.quote(str(p)) for p in paths)
        )
    return " ".join(options)


def nightskynet(command):
    """A rule's shell command: ``nightskynet <command>`` with its files (the rule's ``params.files``),
    its settings (``params.settings``) and how it runs (the rule's resources and threads), each passed
    under the name of its parameter in the command's function (``nightskynet.core.commands``).
    """
    parts = [f"nightskynet {command} {{params.files}}"]
    for p in parameters(command):
        if p.kind == "Settings":
            parts.append(f"{p.flag} {{params.settings:q}}")
        elif p.kind == "Wildcard":
            parts.append(f"{p.flag} {{wildcards.{p.name}}}")
        elif p.kind == "Client":
            parts += [f"{o.flag} {{resources.{o.key}}}" for o in CLIENT_OPTIONS]
        elif p.kind == "Run":
            parts.append(
                f"{p.flag} {{threads}}"
                if p.name == "threads"
                else f"{p.flag} {{resources.{p.name}:q}}"
            )
    return " ".join(parts) + " > {log} 2>&1"


CHUNKS = list(range(config["scrape"]["chunks"]))
TRAIN_SHARDS = list(range(config["shards"]["train_shards"]))
RUNTIME_KEYS = runtime_keys()  # how a job runs: resources, never params


def code(stage):
    """A digest of the code a job of this stage runs (nightskynet/stages/<stage>.py and the package
    modules it imports, as syntax trees without docstrings; comments are not in them). A rule's
    param, so that a change of what the code does reruns this stage and what follows, and an edited
    comment reruns nothing.
    """
    return code_digest(f"stages.{stage}")


def settings(*keys):
    """JSON of the config entries that decide a stage's outputs ("section" or "section.key"): the
    rule's params, so changing one of them reruns exactly the stages that read it. Settings of
    how a job runs are resources instead (changing them reruns nothing)."""
    out = {}
    for key in keys:
        section, _, name = key.partition(".")
        if name:
            out.setdefault(section, {})[name] = config[section][name]
        elif isinstance(config[section], dict):
            out[section] = {
                k: v
                for k, v in config[section].items()
                if f"{section}.{k}" not in RUNTIME_KEYS
            }
        else:
            out[section] = config[section]
    return json.dumps(out, sort_keys=True)


def geometry_keys():
    """The cutout's geometry: its size and the scale setting of the mode in use (scrape.scale for
    fixed, scrape.adaptive_k for adaptive); the other mode's setting changes no image.
    """
    scale = (
        "scrape.scale"
        if config["scrape"]["scale_mode"] == "fixed"
        else "scrape.adaptive_k"
    )
    return ["scrape.size", "scrape.scale_mode", scale]


def votes_keys():
    """train.min_votes decides which galaxies are trained on only under train.targets: votes."""
    return ["train.min_votes"] if config["train"]["targets"] == "votes" else []


def train_keys():
    """The train settings that decide the weights: the shared ones and the section of the recipe in use."""
    shared = ["recipe", "targets", "seed", "calibrate", "merger_recall"]
    return [f"train.{k}" for k in [*shared, config["train"]["recipe"]]]


def source_keys():
    """The settings that say where the data comes from: the source and its own section only, so
    that sdss.* under source: demo (and demo.* under source: sdss) rerun nothing."""
    if config["source"] == "sdss":
        return ["source", "sdss.base_url", "sdss.release"]
    # demo.scale_to only when set: 0 keeps the params of runs made before the key existed
    scaled = ["demo.scale_to"] if config["demo"]["scale_to"] else []
    return ["source", "demo.sky_dir", "demo.seed", *scaled]


def demo_sky_inputs():
    """The demo sky's catalog when the workflow talks to the demo SkyServer."""
    if config["source"] == "demo":
        return [os.path.join(config["demo"]["sky_dir"], "labels.csv")]
    return []


def client_resources():
    """The cutout client's settings (config scrape.*, sky.client_options) as the resources of the
    scrape and predict jobs: how they run, never what they make."""
    s = config["scrape"]
    resources = {o.key: o.as_resource(s[o.key]) for o in CLIENT_OPTIONS}
    return dict(resources, cache_dir=s["cache_dir"])


def client_options():
    """predict's options that pass those resources on (sky.client_options names them)."""
    options = [f"{o.flag} {{resources.{o.key}}}" for o in CLIENT_OPTIONS]
    return " " + " ".join(options) + " --cache-dir {resources.cache_dir:q}"


def predict_input(wildcards):
    """The input of the predict step (config predict.input), which must be set. For a folder, its
    image files themselves, so that overwriting one reruns the prediction."""
    from nightskynet.stages.predict import IMAGE_SUFFIXES

    path = config["predict"]["input"]
    if not path:
        raise WorkflowError(
            "config key predict.input is empty. Set it to a folder of JPEG/PNG cutouts or a catalog "
            "(objid, ra, dec; .csv, .ecsv, .fits or .vot), e.g. snakemake predict --config 'predict={input: my_cutouts/}'"
        )
    if not os.path.exists(path):
        raise WorkflowError(
            f"config key predict.input = {path!r}: no such file or folder"
        )
    if os.path.isdir(path):
        files = sorted(
            os.path.join(path, f)
            for f in os.listdir(path)
            if os.path.splitext(f)[1].lower() in IMAGE_SUFFIXES
        )
        return [path] + files
    return [path]
