"""The NumPy network of ``predict``'s quick start: the model file read without PyTorch, the same probabilities."""

import pickle
import zipfile

import numpy as np
import pytest
import torch

from nightskynet.inference import predict_proba
from nightskynet.model import GalaxyClassifier, save_model
from nightskynet.numpy_network import ModelFileUnreadable, NumpyClassifier, read_model_file

STUDY = {"channels": [8, 16, 16, 32], "kernels": [6, 5, 3, 3], "dense": [64, 32, 32, 16], "maxout_pieces": 3, "dropout": 0.5}


def trained_looking(network: str, architecture: dict, crop: int, seed: int) -> GalaxyClassifier:
    """A classifier with random weights, batch-norm statistics, standardisation and calibration (none of them identity)."""
    torch.manual_seed(seed)
    model = GalaxyClassifier(network, architecture, crop)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.uniform_(-0.2, 0.2)
                module.running_var.uniform_(0.5, 2.0)
                module.weight.uniform_(0.5, 1.5)
                module.bias.uniform_(-0.1, 0.1)
    model.standardize.set_statistics([0.10, 0.09, 0.08], [0.15, 0.12, 0.11])
    model.calibration.logit_bias.copy_(torch.tensor([0.2, -0.1, 0.05, -0.6]))
    model.calibration.temperature.fill_(1.3)
    return model.eval()


CASES = [("resnet", {"width": 8, "dropout": 0.3}, 60), ("study", STUDY, 60), ("resnet", {"width": 4, "dropout": 0}, 33)]


@pytest.mark.parametrize("network, architecture, crop", CASES)
def test_the_numpy_network_gives_pytorch_s_probabilities(tmp_path, network, architecture, crop):
    model = trained_looking(network, architecture, crop, seed=len(network) + crop)
    save_model(tmp_path / "model.pt", model, {"cutout": {"size": 120, "scale_mode": "fixed", "scale": 0.4}})
    saved = read_model_file(tmp_path / "model.pt")
    assert saved["network"] == network and saved["cutout"]["size"] == 120
    images = np.random.default_rng(0).integers(0, 255, (21, crop, crop, 3), dtype=np.uint8)
    for tta in (True, False):
        expected = predict_proba(model, images, torch.device("cpu"), tta=tta)
        got = NumpyClassifier(saved).probabilities(images, tta=tta)
        np.testing.assert_allclose(got, expected, atol=2e-6)
        assert (got.argmax(1) == expected.argmax(1)).all()


def test_a_file_holding_anything_but_tensors_and_settings_is_not_unpickled(tmp_path):
    import collections

    path = tmp_path / "evil.pt"
    torch.save({"network": "resnet", "state_dict": collections.OrderedDict(), "extra": collections.Counter("ab")}, path)
    with pytest.raises(ModelFileUnreadable, match="collections.Counter"):
        read_model_file(path)
    (tmp_path / "text.pt").write_text("not a zip")
    with pytest.raises(ModelFileUnreadable):
        read_model_file(tmp_path / "text.pt")
    with zipfile.ZipFile(tmp_path / "other.zip", "w") as z:
        z.writestr("archive/data.pkl", pickle.dumps({"a": 1}))
    assert read_model_file(tmp_path / "other.zip") == {"a": 1}  # read, and then refused by predict for lacking the model's keys
