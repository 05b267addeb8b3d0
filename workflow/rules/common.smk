import json

PKG = "workflow/nightskynet"
CHUNKS = list(range(config["scrape"]["chunks"]))
TRAIN_SHARDS = list(range(config["shards"]["train_shards"]))


def code(*modules):
    """Package modules that a stage runs. Listed among its inputs, so that editing one
    reruns that stage and what follows."""
    return [f"{PKG}/{m}.py" for m in modules]


def settings(*keys):
    """JSON of the config entries a stage reads ("section" or "section.key"): the rule's params,
    so changing one of them reruns exactly the stages that read it."""
    out = {}
    for key in keys:
        section, _, name = key.partition(".")
        if name:
            out.setdefault(section, {})[name] = config[section][name]
        else:
            out[section] = config[section]
    return json.dumps(out, sort_keys=True)


def demo_sky_inputs():
    """The demo sky's catalog when the workflow talks to the demo SkyServer."""
    if config["source"] == "demo":
        return [os.path.join(config["demo"]["sky_dir"], "labels.csv")]
    return []


def predict_input(wildcards):
    """The input of the predict step (config predict.input), which must be set."""
    path = config["predict"]["input"]
    if not path:
        raise WorkflowError(
            "config key predict.input is empty. Set it to a folder of JPEG cutouts or a catalog CSV "
            "(objid, ra, dec), e.g. snakemake predict --config 'predict={input: my_cutouts/}'"
        )
    return path
