"""Evaluation metrics on hand-computed cases."""

import numpy as np
import pytest

from nightskynet.analysis.rankings import precision_recall, roc_curve
from nightskynet.stages.evaluate import calibration, classification_metrics


def test_per_class_metrics_and_balanced_accuracy_by_hand():
    y_true = np.array([0, 0, 0, 1, 1, 2, 2, 2, 3])
    y_pred = np.array([0, 0, 1, 1, 1, 2, 0, 2, 0])
    m = classification_metrics(y_true, y_pred)
    assert m["accuracy"] == round(6 / 9, 4)
    assert m["confusion_matrix"][0] == [2, 1, 0, 0] and m["confusion_matrix"][3] == [1, 0, 0, 0]
    e = m["per_class"]["elliptical"]
    assert (e["precision"], e["recall"], e["support"]) == (0.5, round(2 / 3, 4), 3)  # 2 of 4 predicted ellipticals right
    assert e["f1"] == round(2 * 0.5 * (2 / 3) / (0.5 + 2 / 3), 4)
    assert m["per_class"]["merger"]["recall"] == 0.0
    assert m["balanced_accuracy"] == round(np.mean([2 / 3, 1.0, 2 / 3, 0.0]), 4)


def test_roc_auc_and_average_precision():
    scores = np.array([0.9, 0.8, 0.7, 0.6, 0.5, 0.4])
    perfect = np.array([1, 1, 1, 0, 0, 0], bool)
    assert roc_curve(scores, perfect)[2] == pytest.approx(1.0)
    assert precision_recall(scores, perfect)[2] == pytest.approx(1.0)
    inverted = ~perfect
    assert roc_curve(scores, inverted)[2] == pytest.approx(0.0)
    mixed = np.array([1, 0, 1, 0, 1, 0], bool)  # 3 x 3 pairs, 6 ranked right: AUC 6/9
    assert roc_curve(scores, mixed)[2] == pytest.approx(6 / 9)
    assert precision_recall(scores, mixed)[2] == pytest.approx((1 + 2 / 3 + 3 / 5) / 3)
    assert np.isnan(roc_curve(scores, np.zeros(6, bool))[2])
    # ties move together: a classifier that scores everything alike is no better than guessing
    tied = np.full(6, 0.25)
    assert roc_curve(tied, perfect)[2] == pytest.approx(0.5)
    assert precision_recall(tied, perfect)[2] == pytest.approx(0.5)


def test_calibration_of_a_perfectly_calibrated_and_an_overconfident_model():
    probs = np.array([[0.95, 0.05, 0, 0]] * 20)
    right = np.zeros(20, int)
    assert calibration(probs, right)["expected_calibration_error"] == pytest.approx(0.05)
    wrong_half = np.array([0] * 10 + [1] * 10)
    cal = calibration(probs, wrong_half)
    assert cal["expected_calibration_error"] == pytest.approx(0.45)
    assert cal["bins"] == [{"confidence": 0.95, "accuracy": 0.5, "count": 20}]


def test_with_one_view_evaluate_runs_one_view_and_scores_it_as_the_single_view():
    import torch

    from nightskynet.net.model import GalaxyClassifier
    from nightskynet.net.torch_inference import TorchEngine
    from nightskynet.stages.evaluate import Predictor

    torch.manual_seed(0)
    model = GalaxyClassifier("resnet", {"width": 4, "dropout": 0.0}, 32).eval()
    engine = TorchEngine(model, torch.device("cpu"))
    images = np.random.default_rng(0).integers(0, 255, (6, 32, 32, 3), dtype=np.uint8)
    with_tta = Predictor(engine, {}, 8, 4)
    without = Predictor(engine, {}, 1, 4)
    all_views, one_view = with_tta.views(images), without.views(images)
    assert all_views.shape == (6, 8, 4) and one_view.shape == (6, 1, 4)  # 8x less inference without TTA
    assert np.allclose(one_view[:, 0], all_views[:, 0], atol=1e-5)
    assert np.allclose(without.probabilities(one_view), with_tta.probabilities(all_views, single_view=True), atol=1e-6)
    assert not np.allclose(with_tta.probabilities(all_views), with_tta.probabilities(all_views, single_view=True))
