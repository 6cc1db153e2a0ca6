"""The decision rule on known arrays: ideal targets, lower-is-better metrics, Holm, the MDE."""

from __future__ import annotations

import math
from statistics import NormalDist

import numpy as np
import pytest

from evalkit.gate.compare import PairedScores
from evalkit.gate.config import GateConfig, MetricRule, Tolerance
from evalkit.gate.decide import decide


def _scores(a: np.ndarray, b: np.ndarray, **kw: object) -> PairedScores:
    return PairedScores("t", "overall", "m", a.astype(float), b.astype(float), rule=MetricRule("t", "m"), **kw)  # type: ignore[arg-type]


def test_distance_to_an_ideal_target_is_what_is_gated() -> None:
    rng = np.random.default_rng(1)
    a = (rng.random(400) < 0.52).astype(float)  # near the ideal 0.5
    b = a.copy()
    b[np.flatnonzero(b == 0)[:60]] = 1.0  # moves away from 0.5: worse although "higher"
    (v,) = decide([_scores(a, b, ideal=0.5)], GateConfig())
    assert v.change == pytest.approx(abs(b.mean() - 0.5) - abs(a.mean() - 0.5))
    assert v.change_kind == "distance to ideal" and v.status == "fail"
    (same,) = decide([_scores(a, a.copy(), ideal=0.5)], GateConfig())
    assert same.status == "pass" and same.change == 0


def test_lower_is_better_metrics_fail_when_they_rise() -> None:
    a = np.zeros(300)
    b = a.copy()
    b[:40] = 1.0
    (v,) = decide([_scores(a, b, higher_is_better=False)], GateConfig())
    assert v.status == "fail" and v.change == pytest.approx(40 / 300) and v.ci_low > 0
    (better,) = decide([_scores(b, a, higher_is_better=False)], GateConfig())
    assert better.status == "pass"


def test_relative_tolerance_and_the_mde_formula() -> None:
    rng = np.random.default_rng(3)
    a = (rng.random(200) < 0.6).astype(float)
    b = np.where(rng.random(200) < 0.2, 1 - a, a)
    config = GateConfig(tolerance=Tolerance(0.0, 0.1))
    (v,) = decide([_scores(a, b)], config)
    assert v.tolerance == pytest.approx(0.1 * a.mean())
    z = NormalDist().inv_cdf(0.975) + NormalDist().inv_cdf(0.8)
    assert v.mde == pytest.approx(z * np.std(b - a, ddof=1) / math.sqrt(200))
