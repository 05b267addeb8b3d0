"""Every documented way of setting a key gives the same typed value and the schema's own verdict."""

import pytest
import yaml
from conftest import SKY_DIR, TINY, copy_repo, project_config, snakemake

from nightskynet.core.config import ConfigError, load_config, runtime_keys, validate_config


def test_nested_strings_get_the_type_the_schema_asks_for():
    config = project_config()
    config["train"]["resnet"]["epochs"] = "3"  # how Snakemake passes --config 'train={resnet: {epochs: 3}}'
    config["predict"]["views"] = "2"
    config["scrape"]["scale"] = "0.25"
    config["train"]["study"]["model"]["channels"] = ["16", "32", "64", "128"]
    validate_config(config)
    assert config["train"]["resnet"]["epochs"] == 3 and config["predict"]["views"] == 2 and config["scrape"]["scale"] == 0.25
    assert config["train"]["study"]["model"]["channels"] == [16, 32, 64, 128]
    assert config["source"] == "demo" and config["sdss"]["release"] == "dr17"  # strings stay strings


@pytest.mark.parametrize(
    "section, key, value, verdict",
    [
        ("train", "seed", "1.5", "config key train.seed = 1.5: 1.5 is not of type 'integer'"),
        ("train", "min_votes", "-3", "config key train.min_votes = -3: -3 is less than the minimum of 0"),
        ("predict", "views", "3", "config key predict.views = 3: 3 is not one of [1, 2, 4, 8]"),
        ("scrape", "concurrency", "0", "config key scrape.concurrency = 0: 0 is less than the minimum of 1"),
    ],
)
def test_a_bad_nested_value_gets_the_schemas_real_verdict(section, key, value, verdict):
    config = project_config()
    config[section][key] = value
    with pytest.raises(ConfigError) as err:
        validate_config(config)
    assert verdict in str(err.value)


def test_load_config_merges_partial_files_and_anchors_paths_at_the_checkout(tmp_path):
    (tmp_path / "a.yaml").write_text(yaml.safe_dump({"train": {"resnet": {"epochs": 2}}}))
    (tmp_path / "b.yaml").write_text(yaml.safe_dump({"train": {"seed": 7}, "scrape": {"cache_dir": "/elsewhere"}}))
    config = load_config([tmp_path / "a.yaml", tmp_path / "b.yaml"])
    assert config["train"]["resnet"]["epochs"] == 2 and config["train"]["seed"] == 7 and config["train"]["study"]["patience"] == 4
    assert config["demo"]["sky_dir"] == str(SKY_DIR) and config["scrape"]["cache_dir"] == "/elsewhere"
    (tmp_path / "bad.yaml").write_text("train: [1, 2")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config([tmp_path / "bad.yaml"])
    with pytest.raises(ConfigError, match="does not exist"):
        load_config([tmp_path / "missing.yaml"])


def test_runtime_keys_are_the_ones_config_yaml_marks_run():
    marked = set()
    section = None
    for line in (SKY_DIR.parent.parent / "config.yaml").read_text().splitlines():
        if line and not line.startswith((" ", "#")) and line.rstrip().endswith(":"):
            section = line.split(":")[0]
        elif line.startswith("  ") and "# (run)" in line:
            marked.add(f"{section}.{line.split(':')[0].strip()}")
    assert marked == runtime_keys()


@pytest.mark.slow
def test_every_way_of_setting_a_key_on_the_snakemake_command_line(tmp_path):
    work = copy_repo(tmp_path / "repo")
    (work / "tiny.yaml").write_text(yaml.safe_dump(TINY))
    (work / "pics").mkdir()
    ok = [
        ["--config", "train={resnet: {epochs: 3}}"],
        ["--config", "train={recipe: study, study: {model: {channels: [16, 32, 64, 128]}}}"],
        ["--config", "predict={input: pics/, views: 2}"],
        ["--config", "source=demo"],
        ["--config", "scrape={scale: 0.3, size: 128}"],
    ]
    for args in ok:
        proc = snakemake(work, "-n", "--configfile", "tiny.yaml", *args, check=False)
        assert proc.returncode == 0, (args, proc.stderr[-2000:])
    bad = snakemake(work, "-n", "--configfile", "tiny.yaml", "--config", "train={resnet: {epochs: -3}}", check=False)
    assert bad.returncode != 0 and "config key train.resnet.epochs = -3: -3 is less than the minimum of 1" in bad.stderr + bad.stdout


@pytest.mark.parametrize(
    "overrides, verdict",
    [
        (
            {"train": {"recipe": "study", "study": {"model": {"kernels": [15, 15, 9, 9]}}}},
            "train.study.model.kernels = [15, 15, 9, 9] shrink the 60 px crop",
        ),
        ({"shards": {"crop": 116}}, "shards.crop (116) + 2 x shards.max_shift (4) exceeds scrape.size (120)"),
    ],
)
def test_settings_that_cannot_work_together_are_refused_before_any_job(overrides, verdict):
    from nightskynet.core.config import merge

    with pytest.raises(ConfigError) as err:
        validate_config(merge(project_config(), overrides))
    assert verdict in str(err.value)
    validate_config(merge(project_config(), {"shards": {"crop": 64}}))  # the network's input follows the crop: 64 works


def test_a_recipe_is_typed_from_the_config_and_records_its_settings_unchanged():
    from nightskynet.core.architecture import ResNetArchitecture, StudyArchitecture
    from nightskynet.core.errors import SettingsError
    from nightskynet.core.recipes import Recipe

    train = load_config()["train"]
    resnet = Recipe.from_config({**train, "recipe": "resnet"})
    assert resnet.fresh_views and not resnet.early_stopping and isinstance(resnet.architecture, ResNetArchitecture)
    assert (resnet.epochs, resnet.merger_share, resnet.shift) == (
        train["resnet"]["epochs"],
        train["resnet"]["merger_share"],
        train["resnet"]["shift"],
    )
    study = Recipe.from_config({**train, "recipe": "study"})
    assert study.is_study and study.early_stopping and isinstance(study.architecture, StudyArchitecture)
    assert (study.patience, study.shift, study.ema) == (train["study"]["patience"], 0, 0.0)
    # what the model file records and a checkpoint's key hashes: the recipe's section and the shared keys
    assert study.settings == {"recipe": "study", "targets": train["targets"], "seed": train["seed"], **train["study"]}
    with pytest.raises(SettingsError, match="train.recipe = 'vgg'"):
        Recipe.from_config({**train, "recipe": "vgg"})
