"""Calibration on cases whose answer is known."""

import numpy as np
import pytest

from nightskynet.net.calibrate import averaged_probabilities, fit_temperature, merger_threshold, prior_correction


def test_the_temperature_that_made_the_labels_is_found_again():
    rng = np.random.default_rng(0)
    true_logits = rng.normal(0, 2, (4000, 1, 4))
    p = averaged_probabilities(true_logits, np.zeros(4), 1.0)
    labels = np.array([rng.choice(4, p=row) for row in p])
    overconfident = true_logits * 2.5  # a network 2.5x too sure of itself
    assert fit_temperature(overconfident, labels, np.zeros(4)) == pytest.approx(2.5, rel=0.08)


def test_prior_correction_moves_a_resampled_prior_back():
    trained = np.array([0.3, 0.3, 0.3, 0.1])
    real = np.array([0.32, 0.32, 0.32, 0.04])
    bias = prior_correction(trained, real)
    # a network that outputs exactly its trained prior for an uninformative image gives the real prior after the correction
    p = averaged_probabilities(np.log(trained)[None, None, :], bias, 1.0)[0]
    assert p == pytest.approx(real / real.sum(), abs=1e-9)
    assert bias[3] < 0 < bias[0]


def test_the_merger_threshold_finds_the_target_share_of_mergers():
    p = np.array([0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1, 0.05])
    is_merger = np.array([1, 0, 1, 1, 0, 0, 1, 0, 0, 1], bool)  # 5 mergers
    t = merger_threshold(p, is_merger, 0.6)  # 3 of 5 must be found
    assert t == 0.6 and (p[is_merger] >= t).sum() == 3
    assert merger_threshold(p, np.zeros(10, bool), 0.7) is None
    assert merger_threshold(p, is_merger, 1.0) == 0.05


def test_a_large_val_split_is_calibrated_on_a_stratified_sample_and_a_small_one_whole():
    from nightskynet.net.calibrate import calibration_sample

    labels = np.repeat([0, 1, 2, 3], [30_000, 20_000, 9_000, 1_000])
    used = calibration_sample(labels, limit=6_000)
    assert len(used) == 6_000 and np.all(np.diff(used) > 0)
    assert np.bincount(labels[used]).tolist() == [3_000, 2_000, 900, 100]  # every class in proportion
    assert np.array_equal(used, calibration_sample(labels, limit=6_000))  # seeded
    assert np.array_equal(calibration_sample(labels[:5_000], limit=6_000), np.arange(5_000))
    lone_merger = np.r_[np.zeros(50_000, int), [3]]
    assert 3 in lone_merger[calibration_sample(lone_merger, limit=100)]  # a rare class keeps a galaxy
