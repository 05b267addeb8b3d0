"""The real networks trained on a few real demo galaxies, on the CPU: resumable, deterministic, learning, calibrated."""

import json

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import build_shards, project_config

from nightskynet.net.model import load_model
from nightskynet.stages import train

SHARD_CFG = {"total": 640, "merger_fraction": 0.01, "crop": 60, "max_shift": 4, "train_shards": 2, "seed": 1}


def train_cfg(recipe: str, **recipe_overrides) -> dict:
    cfg = project_config()["train"]
    cfg["recipe"] = recipe
    small = {"width": 8} if recipe == "resnet" else {}  # the mechanisms under test do not need the default width
    cfg[recipe] = {**cfg[recipe], "epochs": 3, "batch_size": 64, **small, **recipe_overrides}
    if recipe == "study":
        cfg["study"]["patience"] = 5
    return cfg


@pytest.fixture(scope="module")
def shard_files(scraped):
    tmp, labels_csv, manifests, tars = scraped
    train_paths, evals, _ = build_shards(tmp, labels_csv, manifests, tars, "train_test", SHARD_CFG)
    return train_paths, evals["val"], str(tmp / "train_test" / "manifest.json")


def weights(model) -> dict:
    return {k: v.clone() for k, v in model.state_dict().items()}


def same(a: dict, b: dict) -> bool:
    return all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("recipe, extra", [("study", {}), ("resnet", {"ema": 0.9})])
def test_resumed_training_equals_an_uninterrupted_one(shard_files, tmp_path, recipe, extra):
    train_paths, val, _ = shard_files
    cfg = train_cfg(recipe, **extra)
    full, full_hist, _ = train.fit(train_paths, val, cfg, 60, tmp_path / "full", "cpu", threads=2)
    train.fit(train_paths, val, cfg, 60, tmp_path / "cut", "cpu", threads=2, stop_after_epochs=2)  # "killed" after epoch 2
    resumed, resumed_hist, _ = train.fit(train_paths, val, cfg, 60, tmp_path / "cut", "cpu", threads=2)  # picks up at epoch 3
    assert resumed_hist["epoch"].tolist() == [1, 2, 3]
    assert same(weights(full.final_model), weights(resumed.final_model)), "resumed weights differ from an uninterrupted run"
    pd.testing.assert_frame_equal(
        full_hist.drop(columns=["seconds", "images_per_s"]), resumed_hist.drop(columns=["seconds", "images_per_s"])
    )


@pytest.mark.parametrize("recipe", ["study", "resnet"])
def test_same_seed_same_weights_other_seed_other_weights(shard_files, tmp_path, recipe):
    train_paths, val, _ = shard_files
    cfg = train_cfg(recipe, epochs=1)
    a, _, _ = train.fit(train_paths, val, cfg, 60, tmp_path / "a", "cpu", threads=2)
    b, _, _ = train.fit(train_paths, val, cfg, 60, tmp_path / "b", "cpu", threads=2)
    c, _, _ = train.fit(train_paths, val, {**cfg, "seed": 4}, 60, tmp_path / "c", "cpu", threads=2)
    assert same(weights(a.final_model), weights(b.final_model))
    assert not same(weights(a.final_model), weights(c.final_model))


def test_the_residual_network_learns_on_real_galaxies(shard_files, tmp_path):
    train_paths, val, _ = shard_files
    cfg = train_cfg("resnet", epochs=6, batch_size=32)
    _, history, _ = train.fit(train_paths, val, cfg, 60, tmp_path / "learn", "cpu", threads=2)
    losses = history["train_loss"].to_numpy()
    assert losses[-1] < 0.85 * losses[0], f"training loss did not fall: {np.round(losses, 3)}"


CPU_MODES = [
    pytest.param(train.FP32_NCHW, id="fp32-nchw"),
    pytest.param(
        train.BF16_CHANNELS_LAST,
        id="bf16-channels_last",
        marks=pytest.mark.skipif(not train.cpu_computes_bf16(), reason="this CPU has no bf16 hardware (AVX512-BF16 or AMX)"),
    ),
]


@pytest.mark.parametrize("mode", CPU_MODES)
@pytest.mark.parametrize("width", [1, 4, 8])  # 1: the narrowest the schema allows; 4 and 8 crash oneDNN's fp32 channels_last backward
def test_the_narrowest_residual_networks_train_on_the_cpu_in_each_mode_it_can_pick(shard_files, tmp_path, width, mode):
    """fp32 trains in PyTorch's default layout (narrow fp32 channels_last convolutions crash oneDNN); bf16 hardware in channels_last."""
    train_paths, val, _ = shard_files
    cfg = train_cfg("resnet", epochs=1, width=width)
    trainer, history, _ = train.fit(train_paths, val, cfg, 60, tmp_path, "cpu", threads=2, mode=mode)
    assert np.isfinite(history["train_loss"]).all() and history["epoch"].tolist() == [1]
    assert trainer.memory_format == mode.memory_format and trainer.amp == mode.bf16
    assert all(p.is_contiguous(memory_format=mode.memory_format) for p in trainer.model.parameters() if p.dim() == 4)
    images = torch.from_numpy(train.load_shards(train_paths)["images"][:4])
    assert trainer._input(images, torch.arange(4)).is_contiguous(memory_format=mode.memory_format)


def test_each_device_trains_in_its_own_mode():
    cpu = train.BF16_CHANNELS_LAST if train.cpu_computes_bf16() else train.FP32_NCHW
    assert train.training_mode_for(torch.device("cpu")) == cpu
    assert train.training_mode_for(torch.device("cuda")) == train.BF16_CHANNELS_LAST


def test_a_checkpoint_from_other_settings_is_not_resumed(shard_files, tmp_path):
    train_paths, val, _ = shard_files
    cfg = train_cfg("study", epochs=1)
    train.fit(train_paths, val, cfg, 60, tmp_path / "x", "cpu", threads=2)
    changed = {**cfg, "study": {**cfg["study"], "learning_rate": 0.002}}
    _, hist, _ = train.fit(train_paths, val, changed, 60, tmp_path / "x", "cpu", threads=2)
    assert hist["epoch"].tolist() == [1]  # started afresh, not "resumed" past the last epoch


def test_merger_sampling_gives_mergers_their_share_of_each_epoch():
    labels = np.array([0] * 300 + [1] * 300 + [2] * 300 + [3] * 9)
    w = train.sampling_weights(labels, 0.1)
    assert w[labels == 3].sum() == pytest.approx(0.1) and w[labels == 0].sum() == pytest.approx(0.3)
    assert train.sampling_weights(labels[:900], 0.1)[:300].sum() == pytest.approx(1 / 3)  # no mergers: the rest share equally


def test_fresh_views_are_d4_elements_with_shifts_and_keep_every_pixel_value():
    x = torch.arange(2 * 3 * 8 * 8, dtype=torch.float32).view(2, 3, 8, 8)
    out = train.random_views(x, 0, torch.Generator().manual_seed(0))
    for i in range(2):  # without a shift, each view is one of the 8 symmetries of its image
        assert any(torch.equal(out[i], train.d4_torch(x[i : i + 1], g)[0]) for g in range(8))
    shifted = train.random_views(x, 2, torch.Generator().manual_seed(1))
    assert shifted.shape == x.shape and set(shifted.unique().tolist()) <= set(x.unique().tolist())


def test_the_train_stage_writes_a_calibrated_model_that_knows_its_cutouts(shard_files, tmp_path):
    train_paths, val, manifest = shard_files
    cfg = train_cfg("resnet", epochs=2)
    train.run(
        train_shards=train_paths,
        val=val,
        shards_manifest=manifest,
        model=str(tmp_path / "model.pt"),
        history=str(tmp_path / "history.csv"),
        settings={"train": cfg},
        device="cpu",
        checkpoint_dir=tmp_path / "ckpt",
        threads=2,
    )
    model, saved = load_model(tmp_path / "model.pt")
    assert saved["cutout"] == json.loads(open(manifest).read())["cutout"] and saved["input_size"] == 60
    assert saved["trained_in"] == f"cpu, {train.training_mode_for(torch.device('cpu')).name}"
    cal = saved["calibration"]
    assert cal["fitted"] and cal["temperature"] > 0 and len(cal["logit_bias"]) == 4
    assert float(model.calibration.temperature) == pytest.approx(cal["temperature"])
    assert 0.1 <= cal["temperature"] <= 10 and cal["val_galaxies"] > 0
    assert not list((tmp_path / "ckpt").glob("checkpoint*.pt"))
    assert list(pd.read_csv(tmp_path / "history.csv").columns) == list(train.HISTORY_COLUMNS)
