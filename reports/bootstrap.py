"""Bootstrap machinery for leaderboards: aligned score matrices, replicate means, paired tests.

Resampling is over samples within each task, with the same sample weights for every model
(a paired bootstrap): models that answered the same questions are compared on them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from evalkit.reports.frames import RunData

ALPHA = 0.05


@dataclass(frozen=True)
class TaskMatrix:
    """Per-sample scores of several models on one task: rows = models, columns = sample ids.

    NaN marks a sample the model did not answer (absent, or its request failed).
    """

    task: str
    models: tuple[str, ...]
    sample_ids: NDArray[np.str_]
    values: NDArray[np.float64]


def task_matrix(task: str, runs: Sequence[RunData]) -> TaskMatrix:
    """Align runs of one task by sample id (the union of their samples)."""
    if runs and all(np.array_equal(r.ids, runs[0].ids) for r in runs[1:]):
        # the common case: every model answered the same samples in the same order
        values = np.vstack([r.values for r in runs])
        return TaskMatrix(task, tuple(r.model for r in runs), runs[0].ids, values)
    all_ids = np.unique(np.concatenate([r.ids for r in runs])) if runs else np.array([], dtype=np.str_)
    values = np.full((len(runs), all_ids.size), np.nan)
    for row, run in enumerate(runs):
        values[row, np.searchsorted(all_ids, run.ids)] = run.values
    return TaskMatrix(task, tuple(r.model for r in runs), all_ids, values)


def bootstrap_weights(
    matrix: NDArray[np.float64], resamples: int, rng: np.random.Generator
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """(columns, weights) such that `replicate_means(columns, weights)` is a Poisson bootstrap.

    Poisson bootstrap: each sample gets a Poisson(1) weight per replicate, the large-n
    equivalent of resampling n samples with replacement. A replicate mean only depends on
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


def percentile_interval(values: NDArray[np.float64], axis: int = 0) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    finite_any = np.any(np.isfinite(values), axis=axis)
    safe = np.where(np.isfinite(values), values, np.nan)
    with np.errstate(all="ignore"):
        if not finite_any.any():
            nan = np.full(finite_any.shape, np.nan)
            return nan, nan
        low, high = np.nanpercentile(safe, [100 * ALPHA / 2, 100 * (1 - ALPHA / 2)], axis=axis)
    return np.where(finite_any, low, np.nan), np.where(finite_any, high, np.nan)


def ranks_desc(scores: NDArray[np.float64]) -> NDArray[np.float64]:
    """Rank 1 = highest, along the last axis; ties share the best rank; NaN ranks last."""
    filled = np.where(np.isnan(scores), -np.inf, scores)
    # rank = 1 + number of models strictly better
    return 1.0 + np.sum(filled[..., None, :] > filled[..., :, None], axis=-1)


@dataclass(frozen=True)
class PairedDifference:
    """Mean score of A minus B on the samples both answered, with a paired bootstrap CI."""

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


def paired_difference(
    pairs: Sequence[tuple[NDArray[np.float64], NDArray[np.float64]]],
    weights: Sequence[float],
    *,
    resamples: int = 1000,
    seed: int = 0,
) -> PairedDifference:
    """mean over tasks of w_t · (mean_t(A) − mean_t(B)), each over the task's shared samples.

    `pairs` holds per task the two models' scores on the same samples (aligned arrays);
    samples either model did not answer are dropped here. Tasks with no shared sample
    are left out (the mean is over the tasks that have some).
    """
    rng = np.random.default_rng(seed)
    parts = []
    for a, b in pairs:
        columns, sample_weights = bootstrap_weights(np.vstack([a, b]), resamples, rng)
        diff_columns = (columns[0] - columns[1])[None, :]
        parts.append(TaskDifference.from_replicates(a - b, replicate_means(diff_columns, sample_weights)[:, 0]))
    return combine_differences(parts, weights)


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


def combine_differences(parts: Sequence[TaskDifference], weights: Sequence[float]) -> PairedDifference:
    used = [(p, w) for p, w in zip(parts, weights, strict=True) if p.n_shared > 0]
    if not used:
        return PairedDifference(math.nan, math.nan, math.nan, 0, 0)
    w = np.asarray([w for _, w in used]) / len(used)
    point = float(np.dot(w, [p.point for p, _ in used]))
    replicate = np.stack([p.replicates for p, _ in used], axis=1) @ w
    low, high = np.percentile(replicate, [100 * ALPHA / 2, 100 * (1 - ALPHA / 2)])
    return PairedDifference(point, float(low), float(high), sum(p.n_shared for p, _ in used), len(used))


def _clean(x: float) -> float | None:
    return None if x is None or not math.isfinite(x) else float(x)
