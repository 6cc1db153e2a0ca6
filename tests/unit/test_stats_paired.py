"""evalkit.metrics.paired checked against independent references (scipy, statsmodels)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as scipy_stats
from statsmodels.stats.contingency_tables import mcnemar as sm_mcnemar
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.proportion import proportion_confint

from evalkit.metrics import paired
from evalkit.metrics.paired import (
    holm_adjust,
    mcnemar_exact,
    mcnemar_exact_counts,
    paired_bootstrap,
    wilson_interval,
)


def _binary_pair(n: int, pa: float, pb: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return (rng.random(n) < pa).astype(float), (rng.random(n) < pb).astype(float)


# ---------------------------------------------------------------------------- McNemar


@pytest.mark.parametrize(("b", "c"), [(0, 0), (1, 0), (0, 7), (3, 3), (5, 12), (40, 23), (100, 140), (1, 30)])
def test_mcnemar_counts_match_statsmodels(b: int, c: int) -> None:
    expected = sm_mcnemar(np.array([[10, b], [c, 4]]), exact=True)
    assert mcnemar_exact_counts(b, c) == pytest.approx(expected.pvalue, rel=1e-12, abs=1e-300)


@pytest.mark.parametrize("seed", range(5))
def test_mcnemar_arrays_match_statsmodels(seed: int) -> None:
    a, b = _binary_pair(80 + 20 * seed, 0.55, 0.7, seed)
    result = mcnemar_exact(a, b)
    table = np.array([[np.sum((a == 1) & (b == 1)), np.sum((a == 1) & (b == 0))],
                      [np.sum((a == 0) & (b == 1)), np.sum((a == 0) & (b == 0))]])
    expected = sm_mcnemar(table, exact=True)
    assert (result.b, result.c, result.n) == (table[0, 1], table[1, 0], a.size)
    assert result.statistic == expected.statistic
    assert result.p_value == pytest.approx(expected.pvalue, rel=1e-12)


def test_mcnemar_edge_cases() -> None:
    empty = mcnemar_exact([], [])
    assert (empty.b, empty.c, empty.n, empty.p_value) == (0, 0, 0, 1.0)
    ties = mcnemar_exact([1, 0, 1, 1], [1, 0, 1, 1])  # no discordant pair
    assert (ties.b, ties.c, ties.n, ties.p_value) == (0, 0, 4, 1.0)
    one_way = mcnemar_exact([0] * 12, [1] * 12)  # all discordant, all favour b
    assert (one_way.b, one_way.c) == (0, 12)
    assert one_way.p_value == pytest.approx(2 * 0.5**12, rel=1e-12)
    assert one_way.p_value == pytest.approx(sm_mcnemar(np.array([[0, 0], [12, 0]]), exact=True).pvalue)
    # missing pairs are dropped, booleans accepted
    with_nan = mcnemar_exact([1.0, math.nan, 0.0, 1.0], [0.0, 1.0, math.nan, 1.0])
    assert (with_nan.b, with_nan.c, with_nan.n) == (1, 0, 2)
    assert mcnemar_exact(np.array([True, False]), np.array([False, False])).b == 1
    with pytest.raises(ValueError, match="0/1"):
        mcnemar_exact([0.5, 1.0], [1.0, 1.0])
    with pytest.raises(ValueError, match="length"):
        mcnemar_exact([1, 0], [1])


def test_mcnemar_large_n_is_exact_and_fast() -> None:
    # 20,000 discordant pairs: the big-integer sum stays exact where a float cdf would too
    p = mcnemar_exact_counts(9_800, 10_200)
    assert p == pytest.approx(2 * scipy_stats.binom.cdf(9_800, 20_000, 0.5), rel=1e-9)


# ---------------------------------------------------------------------------- Holm


@pytest.mark.parametrize("seed", range(6))
def test_holm_matches_statsmodels(seed: int) -> None:
    rng = np.random.default_rng(seed)
    m = int(rng.integers(1, 30))
    p = rng.random(m) ** 3  # many small p-values
    if seed % 2:
        p[: m // 2] = p[0]  # ties
    _, expected, _, _ = multipletests(p, method="holm")
    np.testing.assert_allclose(holm_adjust(p), expected, rtol=1e-12, atol=0)


def test_holm_input_order_nan_and_empty() -> None:
    p = [0.04, 0.01, 0.03, 0.5]
    np.testing.assert_allclose(holm_adjust(p), [0.09, 0.04, 0.09, 0.5])
    with_nan = holm_adjust([0.04, math.nan, 0.01])
    np.testing.assert_allclose(with_nan[[0, 2]], multipletests([0.04, 0.01], method="holm")[1])
    assert math.isnan(with_nan[1])
    assert holm_adjust([]).shape == (0,)
    np.testing.assert_array_equal(holm_adjust([1.0, 1.0]), [1.0, 1.0])
    with pytest.raises(ValueError):
        holm_adjust([1.2])


# ---------------------------------------------------------------------------- Wilson


@pytest.mark.parametrize(("k", "n"), [(0, 1), (1, 1), (0, 10), (10, 10), (3, 10), (57, 100), (1, 1000), (9999, 10000)])
def test_wilson_matches_statsmodels(k: int, n: int) -> None:
    low, high = proportion_confint(k, n, alpha=0.05, method="wilson")
    assert wilson_interval(k, n) == pytest.approx((low, high), abs=1e-12)


def test_wilson_reexported_from_stats() -> None:
    from evalkit.metrics import stats

    assert paired.wilson_interval is stats.wilson_interval
    assert paired.bootstrap_interval is stats.bootstrap_interval
    assert all(math.isnan(x) for x in wilson_interval(0, 0))


# ---------------------------------------------------------------------------- paired bootstrap


def _naive_paired_bootstrap(a: np.ndarray, b: np.ndarray, resamples: int, seed: int) -> tuple[float, float, float]:
    """One replicate at a time, drawing from the same generator in the same order."""
    rng = np.random.default_rng(seed)
    diffs = b - a
    n = diffs.size
    idx = rng.integers(0, n, size=(resamples, n))
    reps = np.array([np.mean([diffs[j] for j in idx[r]]) for r in range(resamples)])
    low, high = np.percentile(reps, [2.5, 97.5])
    p = min(1.0, 2 * (1 + min(np.sum(reps <= 0), np.sum(reps >= 0))) / (resamples + 1))
    return float(low), float(high), float(p)


@pytest.mark.parametrize(("n", "kind"), [(60, "binary"), (150, "continuous"), (7, "continuous")])
def test_paired_bootstrap_equals_naive_loop(n: int, kind: str) -> None:
    rng = np.random.default_rng(n)
    if kind == "binary":
        a, b = _binary_pair(n, 0.5, 0.65, n)
    else:
        a = rng.normal(size=n)
        b = a + rng.normal(0.2, 1.0, size=n)
    result = paired_bootstrap(a, b, resamples=2000, seed=11)
    low, high, p = _naive_paired_bootstrap(a, b, 2000, 11)
    assert result.ci_low == pytest.approx(low, abs=1e-12)
    assert result.ci_high == pytest.approx(high, abs=1e-12)
    assert result.p_value == pytest.approx(p, abs=1e-15)
    assert result.mean_diff == pytest.approx(float(np.mean(b - a)))
    assert result.n == n


def test_paired_bootstrap_chunked_draws_equal_one_draw(monkeypatch: pytest.MonkeyPatch) -> None:
    a, b = _binary_pair(500, 0.4, 0.5, 3)
    whole = paired_bootstrap(a, b, resamples=3000, seed=5)
    monkeypatch.setattr(paired, "_CHUNK_DRAWS", 500 * 7)  # chunks of 7 replicates
    assert paired_bootstrap(a, b, resamples=3000, seed=5) == whole


@pytest.mark.parametrize("seed", [0, 1])
def test_paired_bootstrap_matches_scipy(seed: int) -> None:
    rng = np.random.default_rng(100 + seed)
    a = rng.normal(size=200)
    b = 0.6 * a + rng.normal(0.15, 0.8, size=200)
    result = paired_bootstrap(a, b, resamples=4000, seed=seed)

    # same seed: scipy draws the same (resamples, n) index matrix, so the CI agrees to rounding
    same = scipy_stats.bootstrap((b - a,), np.mean, n_resamples=4000, method="percentile",
                                 confidence_level=0.95, rng=np.random.default_rng(seed))
    assert (result.ci_low, result.ci_high) == pytest.approx(
        (same.confidence_interval.low, same.confidence_interval.high), abs=1e-9)

    # independent draws, paired two-sample form: equal within Monte-Carlo error
    other = scipy_stats.bootstrap((a, b), lambda x, y, axis=-1: np.mean(y - x, axis=axis), paired=True,
                                  n_resamples=20000, method="percentile", rng=np.random.default_rng(999))
    se = float(np.std(b - a, ddof=1) / np.sqrt(a.size))
    # a 2.5% quantile of 4000 replicates has a Monte-Carlo sd of about 0.04·se
    assert result.ci_low == pytest.approx(other.confidence_interval.low, abs=0.2 * se)
    assert result.ci_high == pytest.approx(other.confidence_interval.high, abs=0.2 * se)


def _table_pair(both: int, b_only_a: int, c_only_b: int, neither: int) -> tuple[np.ndarray, np.ndarray]:
    """0/1 arrays with the given 2×2 table (a correct/b correct counts)."""
    a = np.array([1] * both + [1] * b_only_a + [0] * c_only_b + [0] * neither, dtype=float)
    b = np.array([1] * both + [0] * b_only_a + [1] * c_only_b + [0] * neither, dtype=float)
    return a, b


def test_paired_bootstrap_p_value_is_consistent_with_the_ci() -> None:
    a, b = _binary_pair(400, 0.5, 0.7, 8)
    clear = paired_bootstrap(a, b, resamples=5000)
    assert clear.ci_low > 0 and clear.p_value < 0.05 and clear.significant
    a0, b0 = _table_pair(150, 20, 20, 110)  # no difference at all
    null = paired_bootstrap(a0, b0, resamples=5000)
    assert null.ci_low < 0 < null.ci_high and null.p_value > 0.5 and not null.significant
    # on 0/1 data it is close to the exact McNemar test
    for table in [(150, 20, 20, 110), (150, 15, 30, 105), (100, 10, 25, 65)]:
        x, y = _table_pair(*table)
        assert paired_bootstrap(x, y, resamples=5000).p_value == pytest.approx(mcnemar_exact(x, y).p_value, abs=0.03)


def test_paired_bootstrap_edge_cases() -> None:
    empty = paired_bootstrap([], [])
    assert empty.n == 0 and all(math.isnan(x) for x in (empty.mean_diff, empty.ci_low, empty.ci_high, empty.p_value))
    assert empty.to_dict()["ci"] == [None, None]

    ties = paired_bootstrap([1, 0, 1, 0], [1, 0, 1, 0])
    assert (ties.mean_diff, ties.ci_low, ties.ci_high, ties.p_value, ties.n) == (0.0, 0.0, 0.0, 1.0, 4)

    one_way = paired_bootstrap([0] * 20, [1] * 20, resamples=999)
    assert (one_way.mean_diff, one_way.ci_low, one_way.ci_high) == (1.0, 1.0, 1.0)
    assert one_way.p_value == pytest.approx(2 / 1000)  # never exactly 0

    single = paired_bootstrap([0.2], [0.7])
    assert single.n == 1 and single.ci_low == single.ci_high == pytest.approx(0.5)

    # pairs with a missing side are dropped (None or NaN), n counts the rest
    partial = paired_bootstrap([1, math.nan, 0, 1, None], [1, 1, math.nan, 0, 1], resamples=500)
    assert partial.n == 2 and partial.mean_diff == pytest.approx(-0.5)

    seeded = paired_bootstrap(*_binary_pair(50, 0.5, 0.6, 1), seed=3)
    assert seeded == paired_bootstrap(*_binary_pair(50, 0.5, 0.6, 1), seed=3)
    assert "percentile" in seeded.method and "seed 3" in seeded.method
    with pytest.raises(ValueError, match="length"):
        paired_bootstrap([1, 2], [1])
    with pytest.raises(ValueError, match="resamples"):
        paired_bootstrap([1], [1], resamples=0)


# ---------------------------------------------------------------------------- Poisson machinery


def test_macro_paired_difference_one_task_agrees_with_paired_bootstrap() -> None:
    a, b = _binary_pair(3000, 0.5, 0.56, 21)
    macro = paired.macro_paired_difference([(b, a)], [1.0], resamples=4000, seed=0)  # A − B
    single = paired_bootstrap(a, b, resamples=4000, seed=0)  # mean(b − a)
    assert macro.difference == pytest.approx(single.mean_diff)
    se = float(np.std(b - a, ddof=1) / np.sqrt(a.size))
    assert macro.ci_low == pytest.approx(single.ci_low, abs=0.15 * se)
    assert macro.ci_high == pytest.approx(single.ci_high, abs=0.15 * se)
    assert macro.n_shared == 3000 and macro.n_tasks == 1


def test_core_never_imports_reports() -> None:
    import ast
    from pathlib import Path

    source = Path(paired.__file__).read_text(encoding="utf-8")
    imported = [node.module for node in ast.walk(ast.parse(source)) if isinstance(node, ast.ImportFrom)]
    assert not [m for m in imported if m and m.startswith("evalkit.reports")]
