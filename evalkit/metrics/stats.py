"""Confidence intervals: analytic where exact enough, bootstrap otherwise."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np
from numpy.typing import NDArray

Z95 = 1.959963984540054


def wilson_interval(successes: float, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval for a binomial proportion (good at small n and near 0 or 1)."""
    if n == 0:
        return (math.nan, math.nan)
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return (max(0.0, centre - half), min(1.0, centre + half))


def mean_normal_interval(values: Sequence[float] | NDArray[np.float64], z: float = Z95) -> tuple[float, float]:
    """Normal-approximation CI of a mean: mean ± z·s/√n (sample std, ddof=1)."""
    arr = np.asarray(values, dtype=float)
    n = arr.size
    if n < 2:
        return (math.nan, math.nan)
    mean = float(arr.mean())
    half = z * float(arr.std(ddof=1)) / math.sqrt(n)
    return (mean - half, mean + half)


def stratified_macro_interval(
    proportions: Sequence[float], sizes: Sequence[int], z: float = Z95
) -> tuple[float, float]:
    """CI of an unweighted mean of per-group proportions: Var = Σ p(1−p)/n_g / G²."""
    g = len(proportions)
    if g == 0:
        return (math.nan, math.nan)
    mean = sum(proportions) / g
    var = sum(p * (1 - p) / n for p, n in zip(proportions, sizes, strict=True) if n > 0) / (g * g)
    half = z * math.sqrt(var)
    return (mean - half, mean + half)


def bootstrap_interval(
    statistic: Callable[[NDArray[np.int64]], float],
    n: int,
    *,
    resamples: int = 1000,
    seed: int = 0,
    alpha: float = 0.05,
) -> tuple[float, float]:
    """Percentile bootstrap. `statistic` receives an index array of size n (with repeats)."""
    if n < 2:
        return (math.nan, math.nan)
    rng = np.random.default_rng(seed)
    stats = np.fromiter(
        (statistic(rng.integers(0, n, size=n)) for _ in range(resamples)), dtype=float, count=resamples
    )
    low, high = np.nanpercentile(stats, [100 * alpha / 2, 100 * (1 - alpha / 2)])
    return (float(low), float(high))
