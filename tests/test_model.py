import torch

from nightskynet.model import DEFAULT_ARCHITECTURE, Maxout, build_model, layer_shapes, probabilities


def test_default_network_shapes_and_softmax():
    model = build_model(DEFAULT_ARCHITECTURE).eval()
    x = torch.rand(5, 3, 60, 60)
    logits = model(x)
    assert logits.shape == (5, 4)
    p = probabilities(model, x)
    assert torch.allclose(p.sum(dim=1), torch.ones(5), atol=1e-6)
    assert (p >= 0).all()
    shapes = dict(layer_shapes(model))
    assert shapes["conv 6x6, 32 ch, ReLU"] == (32, 55, 55)
    assert model.feature_shape == (128, 3, 3)
    convs = [m for m in model.features if isinstance(m, torch.nn.Conv2d)]
    assert [c.out_channels for c in convs] == [32, 64, 64, 128]
    assert sum(isinstance(m, Maxout) for m in model.classifier) == 2
    assert sum(isinstance(m, torch.nn.Dropout) for m in model.classifier) == 4


def test_maxout_keeps_the_largest_piece():
    layer = Maxout(3, 2, pieces=3)
    x = torch.randn(4, 3)
    raw = layer.linear(x).view(4, 2, 3)
    assert torch.equal(layer(x), raw.max(dim=-1).values)
