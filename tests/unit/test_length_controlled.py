"""AlpacaEval's length-controlled win rate: parameter recovery, the Δlen = 0 closed form, statsmodels."""

from __future__ import annotations

import math

import numpy as np
import pytest
import statsmodels.api as sm

from evalkit.metrics.length_controlled import (
    VARIANT_FULL,
    VARIANT_NO_DIFFICULTY,
    length_controlled_win_rate,
)

PHI, PSI, THETA = -0.8, 1.3, 0.4


def synthetic(n: int, seed: int, with_difficulty: bool = True) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    delta = rng.normal(0, 300, n)
    difficulty = rng.normal(0, 1, n)
    std = np.std(delta, ddof=1)
    logit = PHI * np.tanh(delta / std) + (PSI * difficulty if with_difficulty else 0) + THETA
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(float)
    return y, delta, difficulty


def test_recovers_known_parameters() -> None:
    y, delta, difficulty = synthetic(20_000, seed=0)
    lc = length_controlled_win_rate(y, delta, difficulty, resamples=20)
    assert lc.variant == VARIANT_FULL
    w = lc.weights
    # standard errors at n = 20000 are about 0.02-0.03: 0.1 is over three of them
    assert w["np.tanh(std_delta_len)"] == pytest.approx(PHI, abs=0.1)
    assert w["instruction_difficulty"] == pytest.approx(PSI, abs=0.1)
    assert w["not_gamed_baseline.astype(float)"] == pytest.approx(THETA, abs=0.1)
    expected = 100 * np.mean(1 / (1 + np.exp(-(PSI * difficulty + THETA))))
    assert lc.lc_win_rate == pytest.approx(expected, abs=1.5)


def test_no_difficulty_closed_form_and_statsmodels() -> None:
    y, delta, _ = synthetic(2000, seed=1, with_difficulty=False)
    y[:100] = 0.5  # draws are soft labels
    lc = length_controlled_win_rate(y, delta, resamples=200)
    assert lc.variant == VARIANT_NO_DIFFICULTY
    theta = lc.weights["not_gamed_baseline.astype(float)"]
    assert lc.lc_win_rate == pytest.approx(100 / (1 + math.exp(-theta)), abs=1e-9)
    assert lc.standard_error == pytest.approx(0.0, abs=1e-9)  # AE's SEM: every prediction is the same
    assert lc.ci_low < lc.lc_win_rate < lc.ci_high
    assert lc.win_rate == pytest.approx(100 * y.mean())
    # independent fit: statsmodels' binomial GLM with fractional responses (no intercept column added)
    x = np.column_stack([np.tanh(delta / np.std(delta, ddof=1)), np.ones_like(delta)])
    ref = sm.GLM(y, x, family=sm.families.Binomial()).fit(tol=1e-12)
    assert lc.weights["np.tanh(std_delta_len)"] == pytest.approx(ref.params[0], abs=1e-6)
    assert theta == pytest.approx(ref.params[1], abs=1e-6)


def test_no_length_effect_gives_the_raw_win_rate() -> None:
    # with Δlen identical for all, φ·tanh(0) = 0: σ(θ) is the MLE of the mean, i.e. the raw win rate
    y = np.array([1, 0, 1, 1, 0.5, 0, 1, 1], dtype=float)
    lc = length_controlled_win_rate(y, np.zeros(y.size), resamples=10)
    assert lc.lc_win_rate == pytest.approx(100 * y.mean(), abs=1e-8)


def test_bad_input() -> None:
    with pytest.raises(ValueError, match="one value per instruction"):
        length_controlled_win_rate([1, 0], [1.0])
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        length_controlled_win_rate([2, 1], [1.0, 2.0])
