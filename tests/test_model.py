import pytest
import torch
from conftest import project_config

from nightskynet.core.errors import SettingsError
from nightskynet.net.model import GalaxyClassifier, Maxout, ResidualBlock, layer_table


def study_architecture() -> dict:
    return project_config()["train"]["study"]["model"]


def test_the_studys_network_shapes_and_softmax():
    model = GalaxyClassifier("study", study_architecture(), 60).eval()
    x = torch.rand(5, 3, 60, 60)
    assert model(x).shape == (5, 4)
    p = torch.softmax(model(x), dim=1)
    assert torch.allclose(p.sum(dim=1), torch.ones(5), atol=1e-6) and (p >= 0).all()
    table = layer_table(model)
    names = [name for name, _ in table]
    assert dict(table)["conv 6x6, 32 ch, ReLU"] == (32, 55, 55)
    assert model.network.feature_shape == (128, 3, 3)
    convs = [m for m in model.network.features if isinstance(m, torch.nn.Conv2d)]
    assert [c.out_channels for c in convs] == [32, 64, 64, 128]
    assert sum(isinstance(m, Maxout) for m in model.network.classifier) == 2
    # the table a reader sees names every dropout, after each of the four dense layers
    assert names.count("dropout 0.5") == 4
    assert names[names.index("dense 512, ReLU") + 1] == "dropout 0.5" and names[names.index("dense 128, ReLU") + 1] == "dropout 0.5"


def test_the_residual_network_takes_any_crop_of_16_px_or_more():
    for size in (48, 60, 72):
        model = GalaxyClassifier("resnet", {"width": 8, "dropout": 0.3}, size).eval()
        assert model(torch.rand(2, 3, size, size)).shape == (2, 4)
    assert sum(isinstance(m, ResidualBlock) for m in model.network.modules()) == 4
    with pytest.raises(SettingsError, match="at least 16 px"):
        GalaxyClassifier("resnet", {"width": 8, "dropout": 0.3}, 12)


def test_kernels_that_shrink_the_crop_to_nothing_are_refused_with_the_setting_named():
    with pytest.raises(SettingsError, match="train.study.model.kernels"):
        GalaxyClassifier("study", {**study_architecture(), "kernels": [9, 9, 9, 9]}, 32)


def test_the_calibration_shifts_and_scales_the_logits():
    model = GalaxyClassifier("resnet", {"width": 4, "dropout": 0.0}, 32).eval()
    x = torch.rand(3, 3, 32, 32)
    raw = model.raw_logits(x)
    assert torch.allclose(model(x), raw)  # the identity until fitted
    model.calibration.logit_bias.copy_(torch.tensor([0.5, 0.0, -0.5, 1.0]))
    model.calibration.temperature.fill_(2.0)
    assert torch.allclose(model(x), (raw + torch.tensor([0.5, 0.0, -0.5, 1.0])) / 2.0)


def test_maxout_keeps_the_largest_piece():
    layer = Maxout(3, 2, pieces=3)
    x = torch.randn(4, 3)
    raw = layer.linear(x).view(4, 2, 3)
    assert torch.equal(layer(x), raw.max(dim=-1).values)


def test_the_same_model_is_saved_as_the_same_bytes(tmp_path):
    from nightskynet.net.model import load_model, save_model

    model = GalaxyClassifier("resnet", {"width": 4, "dropout": 0.1}, 32)
    save_model(tmp_path / "a.pt", model, {"cutout": {"size": 120}})
    save_model(tmp_path / "b.pt", model, {"cutout": {"size": 120}})
    assert (tmp_path / "a.pt").read_bytes() == (tmp_path / "b.pt").read_bytes()
    loaded, saved = load_model(tmp_path / "a.pt")
    assert saved["cutout"] == {"size": 120} and all(
        torch.equal(a, b) for a, b in zip(model.state_dict().values(), loaded.state_dict().values(), strict=True)
    )
