"""Bradley–Terry, online Elo, bootstrap CIs and the win-rate matrix (evalkit/metrics/ranking.py)."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from evalkit.metrics.ranking import (
    Battle,
    bradley_terry,
    log_strengths,
    online_elo,
    rank_with_ci,
    win_rate_matrix,
)

TRUE = {"m0": 1.2, "m1": 0.6, "m2": 0.1, "m3": -0.5, "m4": -1.4}


def simulate(n: int, seed: int, tie_share: float = 0.1) -> list[Battle]:
    """Battles between random pairs with E[outcome] = σ(θ_a − θ_b), the model BT fits with ties
    as half: a tie with prob. tie_share, else a win with prob. (σ − tie_share/2) / (1 − tie_share)."""
    rng = np.random.default_rng(seed)
    names = sorted(TRUE)
    out = []
    for _ in range(n):
        i, j = rng.choice(len(names), 2, replace=False)
        a, b = names[i], names[j]
        if rng.random() < tie_share:
            out.append(Battle(a, b, 0.5))
        else:
            p = (1 / (1 + math.exp(-(TRUE[a] - TRUE[b]))) - tie_share / 2) / (1 - tie_share)
            out.append(Battle(a, b, 1.0 if rng.random() < p else 0.0))
    return out


def sklearn_log_strengths(battles: list[Battle]) -> dict[str, float]:
    """FastChat's `compute_mle_elo` design: x = e_a − e_b, no intercept, no penalty; a tie is
    one win each way at weight 1/2. Independent of evalkit's Newton fit."""
    names = sorted({m for x in battles for m in (x.model_a, x.model_b)})
    col = {m: i for i, m in enumerate(names)}
    rows, labels, weights = [], [], []
    for x in battles:
        row = np.zeros(len(names))
        row[col[x.model_a]], row[col[x.model_b]] = 1.0, -1.0
        for label, weight in ((1, x.outcome), (0, 1.0 - x.outcome)):
            if weight:
                rows.append(row)
                labels.append(label)
                weights.append(weight)
    model = LogisticRegression(fit_intercept=False, C=np.inf, solver="newton-cg", tol=1e-12, max_iter=10_000)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.fit(np.array(rows), np.array(labels), sample_weight=np.array(weights))
    coef = model.coef_[0] - model.coef_[0].mean()
    return dict(zip(names, coef, strict=True))


def test_bt_equals_sklearn_logistic_regression() -> None:
    battles = simulate(400, seed=3)
    ours, ref = log_strengths(battles), sklearn_log_strengths(battles)
    assert len(ours) == 5
    for name in ours:
        assert ours[name] == pytest.approx(ref[name], abs=1e-6)


def test_bt_recovers_order_and_elo_scale() -> None:
    battles = simulate(3000, seed=1)
    ratings = bradley_terry(battles)
    assert sorted(ratings, key=ratings.__getitem__, reverse=True) == sorted(TRUE, key=TRUE.__getitem__, reverse=True)
    assert np.mean(list(ratings.values())) == pytest.approx(1000.0)
    anchored = bradley_terry(battles, anchor="m2", anchor_rating=1114.0)
    assert anchored["m2"] == pytest.approx(1114.0)
    theta = log_strengths(battles)
    # Elo points: 400 · θ / ln 10; differences do not depend on the anchor
    assert anchored["m0"] - anchored["m4"] == pytest.approx(400 * (theta["m0"] - theta["m4"]) / math.log(10))
    assert ratings["m0"] - ratings["m4"] == pytest.approx(anchored["m0"] - anchored["m4"])


def test_bt_two_models_closed_form() -> None:
    # two models: the MLE gives σ(θ_a − θ_b) = score share, i.e. θ_a − θ_b = logit(share)
    battles = [Battle("a", "b", 1.0)] * 6 + [Battle("a", "b", 0.0)] * 3 + [Battle("b", "a", 0.5)] * 2
    theta = log_strengths(battles)
    share = (6 + 1) / 11
    assert theta["a"] - theta["b"] == pytest.approx(math.log(share / (1 - share)), abs=1e-10)


def test_bootstrap_ci_coverage_of_true_strengths() -> None:
    covered = total = 0
    for seed in range(100):
        ranked = rank_with_ci(simulate(250, seed=1000 + seed), resamples=200, seed=seed)
        mean_true = np.mean(list(TRUE.values()))
        for r in ranked:
            true_rating = 1000 + 400 * (TRUE[r.name] - mean_true) / math.log(10)
            covered += r.ci_low <= true_rating <= r.ci_high
            total += 1
    assert covered / total >= 0.90, covered / total


def test_rank_with_ci_fields() -> None:
    ranked = rank_with_ci(simulate(2000, seed=5), resamples=300, seed=1)
    assert [r.name for r in ranked] == ["m0", "m1", "m2", "m3", "m4"]
    assert [r.rank for r in ranked] == [1, 2, 3, 4, 5]
    for r in ranked:
        assert r.ci_low < r.rating < r.ci_high
        assert 1 <= r.rank_low <= r.rank <= r.rank_high <= 5
    assert sum(r.battles for r in ranked) == 2 * 2000
    anchored = rank_with_ci(simulate(500, seed=5), resamples=50, anchor="m3")
    m3 = next(r for r in anchored if r.name == "m3")
    assert m3.rating == m3.ci_low == m3.ci_high == pytest.approx(1000.0)


def test_online_elo_by_hand() -> None:
    # first battle: both at 1000, E = 0.5, a wins: +2 / −2 (K = 4)
    # second: b (998) vs a (1002) tie: E_b = 1/(1+10^(4/400)), b += 4·(0.5 − E_b)
    ratings = online_elo([Battle("a", "b", 1.0), Battle("b", "a", 0.5)])
    e_b = 1 / (1 + 10 ** (4 / 400))
    assert ratings["b"] == pytest.approx(998 + 4 * (0.5 - e_b))
    assert ratings["a"] == pytest.approx(1002 - 4 * (0.5 - e_b))


def test_elo_ranking_recovers_order() -> None:
    ranked = rank_with_ci(simulate(3000, seed=2), method="elo", resamples=100)
    assert [r.name for r in ranked] == ["m0", "m1", "m2", "m3", "m4"]
    assert all(r.ci_low <= r.ci_high for r in ranked)


def test_win_rate_matrix() -> None:
    battles = [Battle("a", "b", 1.0), Battle("b", "a", 0.5), Battle("a", "b", 0.0), Battle("a", "c", 1.0)]
    matrix = win_rate_matrix(battles)
    assert matrix["a"]["b"] == pytest.approx((1 + 0.5 + 0) / 3)
    assert matrix["b"]["a"] == pytest.approx(1 - matrix["a"]["b"])
    assert matrix["a"]["c"] == 1.0 and matrix["c"]["a"] == 0.0
    assert "c" not in matrix["b"] and "a" not in matrix["a"]


def test_bad_input() -> None:
    with pytest.raises(ValueError, match="outcome"):
        Battle("a", "b", 0.7)
    with pytest.raises(ValueError, match="two different"):
        Battle("a", "a", 1.0)
    with pytest.raises(ValueError, match="no battles"):
        bradley_terry([])
    with pytest.raises(ValueError, match="anchor"):
        bradley_terry([Battle("a", "b", 1.0), Battle("a", "b", 0.0)], anchor="zzz")
    with pytest.raises(ValueError, match="method"):
        rank_with_ci([Battle("a", "b", 1.0)], method="glicko")
