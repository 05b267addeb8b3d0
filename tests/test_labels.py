import numpy as np
import pandas as pd
import pytest

from nightskynet.core.vocabulary import is_confident
from nightskynet.sky.votes import class_probabilities
from nightskynet.stages.labels import make_labels


def catalog(rows):
    cols = ["objid", "p_el", "p_cw", "p_acw", "p_edge", "p_dk", "p_mg"]
    frame = pd.DataFrame(rows, columns=cols)
    frame["p_cs"] = frame["p_cw"] + frame["p_acw"] + frame["p_edge"]
    frame["ra"], frame["dec"], frame["nvote"], frame["petroR90_r"] = 180.0, 30.0, 30, 5.0
    return frame


def test_face_on_is_cw_plus_acw_and_dont_know_is_dropped():
    probs = class_probabilities(catalog([[1, 0.1, 0.3, 0.2, 0.1, 0.2, 0.1]]))
    # four raw: el .1, face-on .5, edge .1, merger .1 -> total .8
    assert probs.loc[0, ["p_elliptical", "p_face_on_spiral", "p_edge_on_spiral", "p_merger"]].tolist() == pytest.approx(
        [0.125, 0.625, 0.125, 0.125]
    )
    assert probs.loc[0, "label"] == "face_on_spiral"
    assert probs.loc[0, "confidence"] == pytest.approx(0.625)


def test_threshold_edge_exactly_095_is_kept():
    # renormalised: 0.57 / 0.60 = 0.95 exactly (kept); 0.56 / 0.60 = 0.933 (dropped); 0.95 / 1.0 (kept)
    rows = [
        [1, 0.57, 0.01, 0.01, 0.01, 0.40, 0.0],
        [2, 0.56, 0.01, 0.01, 0.02, 0.40, 0.0],
        [3, 0.0, 0.0, 0.0, 0.95, 0.0, 0.05],
        [4, 0.0, 0.0, 0.0, 0.949, 0.0, 0.051],
    ]
    probs = class_probabilities(catalog(rows))
    assert probs["confidence"].tolist() == pytest.approx([0.95, 0.56 / 0.6, 0.95, 0.949])
    assert is_confident(probs["confidence"], 0.95).tolist() == [True, False, True, False]
    # a value that is 0.95 on paper but a hair below it after floating-point arithmetic is still kept
    assert is_confident(np.array([0.95 - 1e-12, 0.95 - 1e-6]), 0.95).tolist() == [True, False]


def test_all_dont_know_rows_have_no_label_and_are_dropped():
    rows = [[1, 0, 0, 0, 0, 1.0, 0], [2, 1.0, 0, 0, 0, 0, 0]]
    probs = class_probabilities(catalog(rows))
    assert probs["label"].isna().tolist() == [True, False]
    assert np.isnan(probs.loc[0, "p_elliptical"])
    table, summary = make_labels(catalog(rows), 0.95, 0.2, 0.0, 10, seed=0)
    assert summary["undefined_all_dont_know"] == 1
    assert table["objid"].tolist() == [2]


def test_split_is_stratified_seeded_and_disjoint():
    # 400 galaxies, 100 per class; every 5th one split 70/30 between its class and another (uncertain)
    columns = {"elliptical": 1, "face_on_spiral": 2, "edge_on_spiral": 4, "merger": 6}  # positions in a catalog row
    rows = []
    for i in range(400):
        row = [1000 + i, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]
        true = list(columns.values())[i % 4]
        row[true] = 1.0
        if i % 5 == 0:
            row[true] = 0.7
            row[1 if true != 1 else 6] += 0.3
        rows.append(row)
    cat = catalog(rows)
    a, sa = make_labels(cat, 0.95, 0.2, 0.1, 30, seed=3)
    b, _ = make_labels(cat, 0.95, 0.2, 0.1, 30, seed=3)
    c, _ = make_labels(cat, 0.95, 0.2, 0.1, 30, seed=4)
    pd.testing.assert_frame_equal(a, b)
    assert not a["split"].equals(c["split"])
    assert a["objid"].is_unique
    assert sa["confident"] == 320 and sa["uncertain_total"] == 80
    for name, count in sa["confident_by_class"].items():
        assert count == 80
        assert sa["by_split"]["test"][name] == 16
        assert sa["by_split"]["val"][name] == round(64 * 0.1)
    assert sa["uncertain_kept"] == 30 and (a["split"] == "uncertain").sum() == 30
    assert (a.loc[a["split"] == "uncertain", "confidence"] < 0.95).all()
    assert (a.loc[a["split"] != "uncertain", "confidence"] >= 0.95).all()
