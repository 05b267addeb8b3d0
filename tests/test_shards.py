"""The shards stage on real demo cutouts: mixture, determinism, no leakage between splits."""

import hashlib

import numpy as np
import pandas as pd
from conftest import build_shards

from nightskynet.core.vocabulary import CLASS_NAMES
from nightskynet.stages import shards

CFG = {"total": 900, "merger_fraction": 0.01, "crop": 60, "max_shift": 4, "train_shards": 3, "seed": 5}


def test_class_copies_reach_the_target_mixture(scraped):
    tmp, labels_csv, manifests, tars = scraped
    train, _, manifest = build_shards(tmp, labels_csv, manifests, tars, "mix", CFG)
    labels = np.concatenate([np.load(p)["labels"] for p in train])
    assert len(labels) == CFG["total"]
    counts = np.bincount(labels, minlength=4)
    assert counts[3] == round(CFG["total"] * CFG["merger_fraction"])
    assert max(counts[:3]) - min(counts[:3]) <= 1  # the other three equal within rounding
    assert manifest["images"]["train"] == CFG["total"]
    for i, c in enumerate(CLASS_NAMES):
        assert manifest["copies_per_class"][c]["images"] == counts[i]
    sizes = [len(np.load(p)["labels"]) for p in train]
    assert max(sizes) - min(sizes) <= 1


def test_targets_follow_the_class_counts():
    assert shards.copies_per_class({"elliptical": 10, "face_on_spiral": 5, "edge_on_spiral": 7, "merger": 2}, 1000, 0.01) == {
        "elliptical": 330,
        "face_on_spiral": 330,
        "edge_on_spiral": 330,
        "merger": 10,
    }
    assert shards.copies_per_class({"elliptical": 10, "face_on_spiral": 5, "edge_on_spiral": 7}, 100, 0.01) == {
        "elliptical": 34,
        "face_on_spiral": 33,
        "edge_on_spiral": 33,
        "merger": 0,
    }


def test_two_runs_give_byte_identical_shards(scraped):
    tmp, labels_csv, manifests, tars = scraped
    a, ea, ma = build_shards(tmp, labels_csv, manifests, tars, "a", CFG)
    b, eb, mb = build_shards(tmp, labels_csv, manifests, tars, "b", CFG)
    digest = lambda p: hashlib.sha256(open(p, "rb").read()).hexdigest()  # noqa: E731
    assert [digest(p) for p in a + list(ea.values())] == [digest(p) for p in b + list(eb.values())]
    assert ma["files"] == mb["files"]
    c, _, _ = build_shards(tmp, labels_csv, manifests, tars, "c", {**CFG, "seed": 6})
    assert digest(a[0]) != digest(c[0])


def test_no_galaxy_in_two_splits_nor_its_augmented_copies(scraped):
    tmp, labels_csv, manifests, tars = scraped
    train, evals, _ = build_shards(tmp, labels_csv, manifests, tars, "leak", CFG)
    train_ids = set(np.concatenate([np.load(p)["objids"] for p in train]).tolist())
    split_ids = {s: set(np.load(p)["objids"].tolist()) for s, p in evals.items()}
    assert train_ids and split_ids["test"]
    assert not train_ids & split_ids["test"] and not train_ids & split_ids["val"] and not split_ids["val"] & split_ids["test"]
    # and the pixels agree: no training image is a crop of a test galaxy
    labels = pd.read_csv(labels_csv)
    assert set(labels.loc[labels["split"] == "test", "objid"]) >= split_ids["test"]


def test_each_copy_is_the_recorded_augmentation_of_its_galaxy(scraped):
    from nightskynet.images.augment import augment

    tmp, labels_csv, manifests, tars = scraped
    train, _, _ = build_shards(tmp, labels_csv, manifests, tars, "aug", CFG)
    jpegs = shards.read_chunks(tars, set(pd.read_csv(labels_csv)["objid"]))
    with np.load(train[1]) as z:
        for i in range(0, len(z["objids"]), 37):
            img = shards.decode(jpegs[int(z["objids"][i])], 120)
            g, dy, dx = z["augmentation"][i]
            assert np.array_equal(z["images"][i], augment(img, int(g), int(dy), int(dx), 60))


def test_outputs_are_readable_by_the_group_as_the_umask_says(tmp_path):
    import os
    import stat

    from nightskynet.core.files import write_json_atomic

    old = os.umask(0o022)
    os.umask(old)
    write_json_atomic(tmp_path / "x.json", {"a": 1})
    mode = stat.S_IMODE((tmp_path / "x.json").stat().st_mode)
    assert mode == 0o666 & ~old
