"""Calibration and CI code against independent computations: hand-worked cases,
uncertainty-calibration (the library HELM uses), scikit-learn and scipy."""

from __future__ import annotations

import math

import numpy as np
import pytest
from calibration import get_ece, get_ece_em
from scipy import stats
from sklearn.calibration import calibration_curve
from sklearn.metrics import brier_score_loss

from evalkit.metrics import calibration as cal
from evalkit.metrics.stats import (
    bootstrap_interval,
    mean_normal_interval,
    stratified_macro_interval,
    wilson_interval,
)


def random_predictions(n: int, k: int = 4, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Dirichlet probabilities over k options and labels drawn from a distorted version,
    so the model is miscalibrated in both directions."""
    rng = np.random.default_rng(seed)
    probs = rng.dirichlet(np.full(k, 0.7), size=n)
    true = probs ** 1.6
    true /= true.sum(axis=1, keepdims=True)
    labels = np.array([rng.choice(k, p=row) for row in true])
    return probs, labels


def top_label(probs: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return probs.max(axis=1), (probs.argmax(axis=1) == labels).astype(float)


def test_ece_hand_worked_equal_width() -> None:
    # 4 predictions, 2 bins: [0, .5) holds .2 (wrong) and .4 (right); [.5, 1] holds .6, .9 (both right)
    conf = [0.2, 0.4, 0.6, 0.9]
    correct = [0, 1, 1, 1]
    # bin 1: acc .5, conf .3, gap .2, weight .5; bin 2: acc 1, conf .75, gap .25, weight .5
    assert cal.ece_equal_width(conf, correct, num_bins=2) == pytest.approx(0.5 * 0.2 + 0.5 * 0.25)


def test_ece_equal_width_puts_one_in_last_bin() -> None:
    assert cal.ece_equal_width([1.0], [1], num_bins=15) == 0.0
    assert cal.ece_equal_width([1.0, 0.0], [0, 0], num_bins=15) == pytest.approx(0.5)


def test_ece_hand_worked_equal_mass() -> None:
    conf = [0.9, 0.1, 0.8, 0.3]
    correct = [1, 0, 0, 1]
    # sorted: .1(0) .3(1) | .8(0) .9(1): bin 1 conf .2 acc .5; bin 2 conf .85 acc .5
    assert cal.ece_equal_mass(conf, correct, num_bins=2) == pytest.approx(0.5 * 0.3 + 0.5 * 0.35)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_ece_matches_uncertainty_calibration_library(seed: int) -> None:
    probs, labels = random_predictions(3000, seed=seed)
    conf, correct = top_label(probs, labels)
    assert cal.ece_equal_width(conf, correct, 15) == pytest.approx(get_ece(probs, labels, num_bins=15), abs=1e-12)
    assert cal.ece_equal_mass(conf, correct, 10) == pytest.approx(get_ece_em(probs, labels, num_bins=10), abs=1e-12)


def test_brier_top_label_matches_sklearn() -> None:
    probs, labels = random_predictions(2000, seed=3)
    conf, correct = top_label(probs, labels)
    assert cal.brier_top_label(conf, correct) == pytest.approx(brier_score_loss(correct, conf), abs=1e-12)


def test_brier_multiclass_matches_direct_formula_and_sklearn() -> None:
    probs, labels = random_predictions(500, k=4, seed=4)
    onehot = np.eye(4)[labels]
    expected = float(np.mean(np.sum((probs - onehot) ** 2, axis=1)))
    assert cal.brier_multiclass(probs, labels) == pytest.approx(expected, abs=1e-12)
    try:  # scikit-learn >= 1.7 scores multiclass Brier; `scale_by_half=False` is Brier (1950)
        reference = brier_score_loss(labels, probs, labels=[0, 1, 2, 3], scale_by_half=False)
    except TypeError:
        pytest.fail("scikit-learn too old for multiclass brier_score_loss; install scikit-learn>=1.7")
    assert cal.brier_multiclass(probs, labels) == pytest.approx(reference, abs=1e-12)


def test_reliability_bins_match_sklearn_calibration_curve() -> None:
    probs, labels = random_predictions(4000, seed=5)
    conf, correct = top_label(probs, labels)
    prob_true, prob_pred = calibration_curve(correct, conf, n_bins=15, strategy="uniform")
    bins = [b for b in cal.reliability_bins(conf, correct, 15) if b.count > 0]
    assert len(bins) == len(prob_true)
    np.testing.assert_allclose([b.accuracy for b in bins], prob_true, atol=1e-12)
    np.testing.assert_allclose([b.mean_confidence for b in bins], prob_pred, atol=1e-12)
    assert sum(b.count for b in cal.reliability_bins(conf, correct, 15)) == len(conf)


def test_fast_bootstrap_ece_equals_generic_bootstrap() -> None:
    probs, labels = random_predictions(1500, seed=6)
    conf, correct = top_label(probs, labels)
    by_confidence = np.argsort(conf, kind="stable")  # the fast bootstrap draws ranks in this order
    conf, correct = conf[by_confidence], correct[by_confidence]
    fast = cal.bootstrap_ece_intervals(conf, correct, resamples=200, seed=11)
    width = bootstrap_interval(lambda i: cal.ece_equal_width(conf[i], correct[i]), len(conf), resamples=200, seed=11)
    mass = bootstrap_interval(lambda i: cal.ece_equal_mass(conf[i], correct[i]), len(conf), resamples=200, seed=11)
    assert fast["equal_width"] == pytest.approx(width, abs=1e-12)
    assert fast["equal_mass"] == pytest.approx(mass, abs=1e-12)
    assert fast["equal_width"][0] < cal.ece_equal_width(conf, correct) < fast["equal_width"][1]


@pytest.mark.parametrize(("k", "n"), [(0, 10), (3, 10), (10, 10), (412, 1000), (1, 3)])
def test_wilson_matches_scipy(k: int, n: int) -> None:
    ref = stats.binomtest(k, n).proportion_ci(confidence_level=0.95, method="wilson")
    low, high = wilson_interval(k, n)
    assert low == pytest.approx(ref.low, abs=1e-9)
    assert high == pytest.approx(ref.high, abs=1e-9)


def test_mean_normal_interval_matches_scipy() -> None:
    values = np.random.default_rng(7).normal(2.0, 3.0, size=400)
    low, high = mean_normal_interval(values)
    ref = stats.norm.interval(0.95, loc=values.mean(), scale=stats.sem(values))
    assert (low, high) == pytest.approx(ref, abs=1e-9)


def test_stratified_macro_interval_by_hand() -> None:
    props, sizes = [0.5, 0.8], [100, 25]
    var = (0.25 / 100 + 0.16 / 25) / 4
    low, high = stratified_macro_interval(props, sizes)
    assert (low + high) / 2 == pytest.approx(0.65)
    assert (high - low) / 2 == pytest.approx(1.959963984540054 * math.sqrt(var))


def test_undefined_intervals_are_nan_not_errors() -> None:
    assert all(math.isnan(x) for x in wilson_interval(0, 0))
    assert all(math.isnan(x) for x in mean_normal_interval([1.0]))
