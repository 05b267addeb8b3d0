"""The real network trained on a few real demo galaxies, on the CPU."""

import numpy as np
import pandas as pd
import pytest
import torch

from conftest import build_shards
from nightskynet import train

SHARD_CFG = {"total": 640, "merger_fraction": 0.01, "crop": 60, "max_shift": 4, "train_shards": 2, "seed": 1}
TRAIN_CFG = {"epochs": 3, "patience": 5, "batch_size": 64, "learning_rate": 0.001, "weight_decay": 0.0, "seed": 3,
             "model": {"channels": [32, 64, 64, 128], "kernels": [6, 5, 3, 3], "dense": [512, 256, 256, 128], "maxout_pieces": 2, "dropout": 0.5}}


@pytest.fixture(scope="module")
def shard_files(scraped):
    tmp, labels_csv, manifests, tars = scraped
    train_paths, evals, _ = build_shards(tmp, labels_csv, manifests, tars, "train_test", SHARD_CFG)
    return train_paths, evals["val"]


def weights(trainer) -> dict:
    return {k: v.clone() for k, v in trainer.model.state_dict().items()}


def test_resumed_training_equals_an_uninterrupted_one(shard_files, tmp_path):
    train_paths, val = shard_files
    full, full_hist, _ = train.fit(train_paths, val, TRAIN_CFG, tmp_path / "full", "cpu", threads=2)
    train.fit(train_paths, val, TRAIN_CFG, tmp_path / "cut", "cpu", threads=2, stop_after_epochs=2)  # "killed" after epoch 2
    resumed, resumed_hist, _ = train.fit(train_paths, val, TRAIN_CFG, tmp_path / "cut", "cpu", threads=2)  # picks up at epoch 3
    assert resumed_hist["epoch"].tolist() == [1, 2, 3]
    a, b = weights(full), weights(resumed)
    assert all(torch.equal(a[k], b[k]) for k in a), "resumed weights differ from an uninterrupted run"
    pd.testing.assert_frame_equal(full_hist.drop(columns=["seconds", "images_per_s"]), resumed_hist.drop(columns=["seconds", "images_per_s"]))


def test_same_seed_same_weights_other_seed_other_weights(shard_files, tmp_path):
    train_paths, val = shard_files
    cfg = {**TRAIN_CFG, "epochs": 1}
    a, _, _ = train.fit(train_paths, val, cfg, tmp_path / "a", "cpu", threads=2)
    b, _, _ = train.fit(train_paths, val, cfg, tmp_path / "b", "cpu", threads=2)
    c, _, _ = train.fit(train_paths, val, {**cfg, "seed": 4}, tmp_path / "c", "cpu", threads=2)
    wa, wb, wc = weights(a), weights(b), weights(c)
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    assert not all(torch.equal(wa[k], wc[k]) for k in wa)


def test_the_network_learns_on_real_galaxies(shard_files, tmp_path):
    train_paths, val = shard_files
    # lighter dropout and smaller batches: more, steadier steps on this tiny set (the full model otherwise)
    cfg = {**TRAIN_CFG, "epochs": 6, "batch_size": 32, "model": {**TRAIN_CFG["model"], "dropout": 0.25}}
    _, history, _ = train.fit(train_paths, val, cfg, tmp_path / "learn", "cpu", threads=2)
    losses = history["train_loss"].to_numpy()
    assert losses[-1] < 0.85 * losses[0], f"training loss did not fall: {np.round(losses, 3)}"
    assert history["train_accuracy"].iloc[-1] > 0.5


def test_a_checkpoint_from_other_settings_is_not_resumed(shard_files, tmp_path):
    train_paths, val = shard_files
    cfg = {**TRAIN_CFG, "epochs": 1}
    train.fit(train_paths, val, cfg, tmp_path / "x", "cpu", threads=2)
    _, hist, _ = train.fit(train_paths, val, {**cfg, "learning_rate": 0.002}, tmp_path / "x", "cpu", threads=2)
    assert hist["epoch"].tolist() == [1]  # started afresh, not "resumed" past the last epoch
