"""Paired comparisons of two models on the same samples, and multiple-testing correction.

Core statistics shared by reports (leaderboards, the UI) and core stages (e.g. a regression
gate); this module imports nothing from `evalkit.reports`. Each function is checked in
tests/test_stats_paired.py against scipy or statsmodels.

- `paired_bootstrap`: CI and two-sided p-value of mean(b − a) over aligned per-sample scores
  (percentile bootstrap, resampling pairs with replacement).
- `mcnemar_exact`: exact McNemar test for paired 0/1 outcomes.
- `holm_adjust`: Holm–Bonferroni step-down adjusted p-values, in the input order.
- `wilson_interval`, `bootstrap_interval`: re-exported from `evalkit.metrics.stats`.
- The Poisson bootstrap the leaderboards use to compare many models over many tasks at once
  (`bootstrap_weights`, `replicate_means`, `TaskDifference`, `combine_differences`,
  `macro_paired_difference`), plus `percentile_interval` and `ranks_desc`.

Missing values (NaN) never count: a pair where either score is missing is dropped, and `n`
reports the number of pairs used.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from evalkit.metrics.stats import bootstrap_interval, wilson_interval

__all__ = [
    "ALPHA",
    "DEFAULT_RESAMPLES",
    "MacroPairedDifference",
    "McNemarResult",
    "PairedDifference",
    "TaskDifference",
    "aligned_pairs",
    "bootstrap_interval",
    "bootstrap_weights",
    "combine_differences",
    "distinct_columns",
    "holm_adjust",
    "macro_paired_difference",
    "mcnemar_exact",
    "mcnemar_exact_counts",
    "paired_bootstrap",
    "percentile_interval",
    "ranks_desc",
    "replicate_means",
    "wilson_interval",
]

ALPHA = 0.05
DEFAULT_RESAMPLES = 10_000
#: index draws per chunk in `paired_bootstrap` (bounds memory at ~32 MiB of int64)
_CHUNK_DRAWS = 1 << 22


# --------------------------------------------------------------------------------------------
# Two aligned score arrays


def aligned_pairs(a: ArrayLike, b: ArrayLike) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """`a` and `b` as float arrays with every pair where either is NaN (or None) dropped."""
    arr_a = np.asarray(a, dtype=np.float64).ravel()
    arr_b = np.asarray(b, dtype=np.float64).ravel()
    if arr_a.shape != arr_b.shape:
        raise ValueError(f"paired arrays differ in length: {arr_a.size} vs {arr_b.size}")
    keep = ~(np.isnan(arr_a) | np.isnan(arr_b))
    return arr_a[keep], arr_b[keep]


@dataclass(frozen=True)
class PairedDifference:
    """mean(b − a) over the `n` pairs both answered, its CI and a two-sided p-value for 0.

    All of mean_diff, ci_low, ci_high and p_value are NaN when n = 0.
    """

    mean_diff: float
    ci_low: float
    ci_high: float
    p_value: float
    n: int
    method: str

    @property
    def significant(self) -> bool:
        """The CI excludes 0."""
        return bool(self.ci_low > 0 or self.ci_high < 0)

    def to_dict(self) -> dict[str, object]:
        return {"mean_diff": _clean(self.mean_diff), "ci": [_clean(self.ci_low), _clean(self.ci_high)],
                "p_value": _clean(self.p_value), "n": self.n, "method": self.method}


def paired_bootstrap(
    a: ArrayLike,
    b: ArrayLike,
    *,
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = 0,
    alpha: float = ALPHA,
) -> PairedDifference:
    """Paired percentile bootstrap of mean(b − a).

    Each replicate resamples the n pairs with replacement (the same draws as
    `rng.integers(0, n, size=(resamples, n))` with `rng = np.random.default_rng(seed)`, made
    in chunks to bound memory) and takes the mean difference. The CI is the
    (alpha/2, 1 − alpha/2) percentiles of the replicates (linear interpolation). The
    two-sided p-value inverts the percentile interval:
    p = min(1, 2·(1 + min(#{d* ≤ 0}, #{d* ≥ 0})) / (resamples + 1)),
    so p ≤ alpha roughly when the CI excludes 0, and p is never exactly 0.
    """
    if resamples < 1:
        raise ValueError(f"resamples must be ≥ 1, got {resamples}")
    x, y = aligned_pairs(a, b)
    diffs = y - x
    n = int(diffs.size)
    method = f"paired bootstrap, percentile, {resamples} resamples, seed {seed}"
    if n == 0:
        return PairedDifference(math.nan, math.nan, math.nan, math.nan, 0, method)
    replicates = _bootstrap_means(diffs, resamples, np.random.default_rng(seed))
    low, high = np.percentile(replicates, [100 * alpha / 2, 100 * (1 - alpha / 2)])
    at_most = int(np.count_nonzero(replicates <= 0))
    at_least = int(np.count_nonzero(replicates >= 0))
    p_value = min(1.0, 2.0 * (1 + min(at_most, at_least)) / (resamples + 1))
    return PairedDifference(float(diffs.mean()), float(low), float(high), p_value, n, method)


def _bootstrap_means(values: NDArray[np.float64], resamples: int, rng: np.random.Generator) -> NDArray[np.float64]:
    n = values.size
    rows = max(1, _CHUNK_DRAWS // n)
    out = np.empty(resamples)
    for start in range(0, resamples, rows):
        stop = min(resamples, start + rows)
        idx = rng.integers(0, n, size=(stop - start, n))
        out[start:stop] = values[idx].mean(axis=1)
    return out


@dataclass(frozen=True)
class McNemarResult:
    """Exact McNemar test. b = pairs with a=1, b=0; c = pairs with a=0, b=1; n = pairs used."""

    b: int
    c: int
    n: int
    p_value: float

    @property
    def statistic(self) -> int:
        """min(b, c), the binomial statistic (as statsmodels reports it for exact=True)."""
        return min(self.b, self.c)

    def to_dict(self) -> dict[str, object]:
        return {"b": self.b, "c": self.c, "n": self.n, "p_value": self.p_value,
                "method": "exact McNemar (two-sided binomial on discordant pairs)"}


def mcnemar_exact(a: ArrayLike, b: ArrayLike) -> McNemarResult:
    """Exact McNemar test on two aligned arrays of 0/1 (or bool) outcomes; NaN pairs dropped."""
    x, y = aligned_pairs(a, b)
    values = np.concatenate([x, y])
    bad = values[(values != 0) & (values != 1)]
    if bad.size:
        raise ValueError(f"McNemar needs 0/1 outcomes, got {bad[0]!r}")
    b_count = int(np.count_nonzero((x == 1) & (y == 0)))
    c_count = int(np.count_nonzero((x == 0) & (y == 1)))
    return McNemarResult(b_count, c_count, int(x.size), mcnemar_exact_counts(b_count, c_count))


def mcnemar_exact_counts(b: int, c: int) -> float:
    """Two-sided exact p-value from the discordant counts: min(1, 2·P(X ≤ min(b, c))), X ~ Bin(b+c, ½)."""
    if b < 0 or c < 0:
        raise ValueError(f"discordant counts must be ≥ 0, got b={b}, c={c}")
    n, k = b + c, min(b, c)
    if n == 0:
        return 1.0
    # exact integer arithmetic: Σ_{i≤k} C(n, i) / 2^n, with C(n, i+1) = C(n, i)·(n−i)/(i+1)
    term, total = 1, 1
    for i in range(k):
        term = term * (n - i) // (i + 1)
        total += term
    return min(1.0, 2 * total / (1 << n))


# --------------------------------------------------------------------------------------------
# Multiple testing


def holm_adjust(p_values: ArrayLike) -> NDArray[np.float64]:
    """Holm–Bonferroni step-down adjusted p-values, in the input order.

    With the m p-values sorted ascending p₍₁₎ ≤ … ≤ p₍ₘ₎, adjusted p₍ᵢ₎ =
    max_{j ≤ i} min(1, (m − j + 1)·p₍ⱼ₎). Reject hypothesis i at level α iff adjusted pᵢ ≤ α.
    NaN entries stay NaN and do not count in m.
    """
    p = np.asarray(p_values, dtype=np.float64).ravel()
    out = np.full(p.shape, np.nan)
    finite = np.flatnonzero(~np.isnan(p))
    if finite.size == 0:
        return out
    if np.any((p[finite] < 0) | (p[finite] > 1)):
        raise ValueError("p-values must lie in [0, 1]")
    order = finite[np.argsort(p[finite], kind="stable")]
    m = order.size
    scaled = np.minimum(1.0, (m - np.arange(m)) * p[order])
    out[order] = np.maximum.accumulate(scaled)
    return out


# --------------------------------------------------------------------------------------------
# Poisson bootstrap over many models and tasks (the leaderboards' machinery)


def bootstrap_weights(
    matrix: NDArray[np.float64], resamples: int, rng: np.random.Generator
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """(columns, weights) such that `replicate_means(columns, weights)` is a Poisson bootstrap.

    `matrix` is models × samples (NaN = not answered). Poisson bootstrap: each sample gets a
    Poisson(1) weight per replicate, the large-n equivalent of resampling n samples with
    replacement, the same weights for every model (paired). A replicate mean only depends on
    the summed weight of each distinct column (the models' scores on one sample), which is
    Poisson(frequency of that column); with 0/1 scores there are few distinct columns, so
    this costs (replicates × patterns) draws instead of (replicates × samples).
    """
    if matrix.shape[1] == 0:
        return matrix, np.zeros((resamples, 0))
    columns, freq = distinct_columns(matrix)
    return columns, rng.poisson(freq.astype(np.float64), size=(resamples, freq.size)).astype(np.float64)


def distinct_columns(matrix: NDArray[np.float64]) -> tuple[NDArray[np.float64], NDArray[np.int64]]:
    """The distinct columns of `matrix` (NaN equal to NaN) and how often each occurs."""
    rows = matrix.shape[0]
    state = np.where(np.isnan(matrix), 2.0, matrix)
    if rows <= 39 and np.all((state == 0) | (state == 1) | (state == 2)):
        # 0/1/missing scores: one base-3 integer per column, a fast 1-D unique
        codes = (3 ** np.arange(rows, dtype=np.int64)) @ state.astype(np.int64)
        _, first, freq = np.unique(codes, return_index=True, return_counts=True)
        return matrix[:, first], freq
    keyed = np.where(np.isnan(matrix), np.inf, matrix).T  # NaN never equals itself; inf does
    patterns, freq = np.unique(keyed, axis=0, return_counts=True)
    return np.where(np.isinf(patterns), np.nan, patterns).T, freq


def replicate_means(matrix: NDArray[np.float64], counts: NDArray[np.float64]) -> NDArray[np.float64]:
    """resamples × models: each model's mean over the samples it answered, per replicate."""
    answered = ~np.isnan(matrix)
    sums = counts @ np.where(answered, matrix, 0.0).T
    sizes = counts @ answered.T.astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(sizes > 0, sums / np.where(sizes > 0, sizes, 1.0), np.nan)


def percentile_interval(
    values: NDArray[np.float64], axis: int = 0, alpha: float = ALPHA
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """(alpha/2, 1 − alpha/2) percentiles along `axis`, ignoring non-finite values (NaN if none)."""
    finite_any = np.any(np.isfinite(values), axis=axis)
    safe = np.where(np.isfinite(values), values, np.nan)
    with np.errstate(all="ignore"):
        if not finite_any.any():
            nan = np.full(finite_any.shape, np.nan)
            return nan, nan
        low, high = np.nanpercentile(safe, [100 * alpha / 2, 100 * (1 - alpha / 2)], axis=axis)
    return np.where(finite_any, low, np.nan), np.where(finite_any, high, np.nan)


def ranks_desc(scores: NDArray[np.float64]) -> NDArray[np.float64]:
    """Rank 1 = highest, along the last axis; ties share the best rank; NaN ranks last."""
    filled = np.where(np.isnan(scores), -np.inf, scores)
    # rank = 1 + number of models strictly better
    better = np.sum(filled[..., None, :] > filled[..., :, None], axis=-1)
    return np.asarray(1.0 + better, dtype=np.float64)


@dataclass(frozen=True)
class MacroPairedDifference:
    """Weighted mean over tasks of mean(A) − mean(B) on shared samples, with a paired bootstrap CI."""

    difference: float
    ci_low: float
    ci_high: float
    n_shared: int
    n_tasks: int

    @property
    def significant(self) -> bool:
        return bool(self.ci_low > 0 or self.ci_high < 0)

    def to_dict(self) -> dict[str, object]:
        return {"difference": _clean(self.difference), "ci": [_clean(self.ci_low), _clean(self.ci_high)],
                "n_shared": self.n_shared, "n_tasks": self.n_tasks, "significant": self.significant,
                "ci_method": "paired Poisson bootstrap percentile over shared samples"}


@dataclass(frozen=True)
class TaskDifference:
    """One task's paired difference: point value, bootstrap replicates, shared sample count."""

    point: float
    replicates: NDArray[np.float64]
    n_shared: int

    @staticmethod
    def from_replicates(diff: NDArray[np.float64], replicates: NDArray[np.float64]) -> TaskDifference:
        shared = diff[~np.isnan(diff)]
        point = float(shared.mean()) if shared.size else math.nan
        return TaskDifference(point, replicates, int(shared.size))


def macro_paired_difference(
    pairs: Sequence[tuple[NDArray[np.float64], NDArray[np.float64]]],
    weights: Sequence[float],
    *,
    resamples: int = 1000,
    seed: int = 0,
) -> MacroPairedDifference:
    """mean over tasks of w_t · (mean_t(A) − mean_t(B)), each over the task's shared samples.

    `pairs` holds per task the two models' scores on the same samples (aligned arrays);
    samples either model did not answer are dropped here. Tasks with no shared sample
    are left out (the mean is over the tasks that have some). Poisson bootstrap.
    """
    rng = np.random.default_rng(seed)
    parts = []
    for a, b in pairs:
        columns, sample_weights = bootstrap_weights(np.vstack([a, b]), resamples, rng)
        diff_columns = (columns[0] - columns[1])[None, :]
        parts.append(TaskDifference.from_replicates(a - b, replicate_means(diff_columns, sample_weights)[:, 0]))
    return combine_differences(parts, weights)


def combine_differences(parts: Sequence[TaskDifference], weights: Sequence[float]) -> MacroPairedDifference:
    used = [(p, w) for p, w in zip(parts, weights, strict=True) if p.n_shared > 0]
    if not used:
        return MacroPairedDifference(math.nan, math.nan, math.nan, 0, 0)
    w = np.asarray([w for _, w in used]) / len(used)
    point = float(np.dot(w, [p.point for p, _ in used]))
    replicate = np.stack([p.replicates for p, _ in used], axis=1) @ w
    low, high = np.percentile(replicate, [100 * ALPHA / 2, 100 * (1 - ALPHA / 2)])
    return MacroPairedDifference(point, float(low), float(high), sum(p.n_shared for p, _ in used), len(used))


def _clean(x: float | None) -> float | None:
    return None if x is None or not math.isfinite(x) else float(x)
