import numpy as np
import pytest
import torch

from nightskynet.images.augment import augment, crop, d4, d4_torch, draw_augmentations


def numbered(h=8, w=8):
    return np.arange(h * w).reshape(h, w)


@pytest.mark.parametrize("g", range(8))
def test_every_d4_element_permutes_pixels_one_to_one(g):
    img = numbered()
    out = d4(img, g)
    assert out.shape == img.shape
    assert sorted(out.ravel().tolist()) == list(range(64))


def test_the_eight_elements_are_distinct_and_form_a_group():
    img = numbered()
    views = [d4(img, g) for g in range(8)]
    assert len({v.tobytes() for v in views}) == 8
    for a in range(8):
        for b in range(8):
            composed = d4(d4(img, a), b)
            assert any(np.array_equal(composed, v) for v in views)


@pytest.mark.parametrize("g", range(8))
def test_torch_and_numpy_d4_agree(g):
    img = np.random.default_rng(g).integers(0, 255, size=(60, 60, 3), dtype=np.uint8)
    via_torch = d4_torch(torch.from_numpy(img).permute(2, 0, 1)[None], g)[0].permute(1, 2, 0).numpy()
    assert np.array_equal(via_torch, d4(img, g))


def test_crops_are_60_by_60_and_centred_when_unshifted():
    img = np.random.default_rng(0).integers(0, 255, size=(120, 120, 3), dtype=np.uint8)
    c = crop(img, 60)
    assert c.shape == (60, 60, 3)
    assert np.array_equal(c, img[30:90, 30:90])
    assert np.array_equal(crop(img, 60, dy=-4, dx=3), img[26:86, 33:93])
    with pytest.raises(ValueError):
        crop(img, 60, dy=31)


def test_augmentations_are_seed_deterministic():
    img = np.random.default_rng(1).integers(0, 255, size=(120, 120, 3), dtype=np.uint8)
    a = draw_augmentations(50, 4, np.random.default_rng(7))
    b = draw_augmentations(50, 4, np.random.default_rng(7))
    assert np.array_equal(a, b)
    assert a[:, 0].min() >= 0 and a[:, 0].max() <= 7
    assert np.abs(a[:, 1:]).max() <= 4
    outs_a = [augment(img, *row, 60) for row in a]
    outs_b = [augment(img, *row, 60) for row in b]
    assert all(o.shape == (60, 60, 3) for o in outs_a)
    assert all(np.array_equal(x, y) for x, y in zip(outs_a, outs_b, strict=True))
    assert not np.array_equal(a, draw_augmentations(50, 4, np.random.default_rng(8)))
