"""Calibration: ECE (equal-width and equal-mass binning), Brier scores, reliability bins.

Definitions follow Guo et al. (2017), see docs/METRICS.md. Confidence is the top-label
probability; correctness is whether the top label is the gold one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

#: named binnings evalkit reports
EQUAL_WIDTH_BINS = 15
EQUAL_MASS_BINS = 10


@dataclass(frozen=True)
class ReliabilityBin:
    lower: float
    upper: float
    count: int
    mean_confidence: float
    accuracy: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "lower": self.lower,
            "upper": self.upper,
            "count": self.count,
            "mean_confidence": self.mean_confidence,
            "accuracy": self.accuracy,
        }


def _as_arrays(confidence: ArrayLike, correct: ArrayLike) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    conf = np.asarray(confidence, dtype=float)
    corr = np.asarray(correct, dtype=float)
    if conf.shape != corr.shape or conf.ndim != 1:
        raise ValueError("confidence and correct must be 1-D arrays of the same length")
    return conf, corr


def equal_width_bin_ids(confidence: NDArray[np.float64], num_bins: int) -> NDArray[np.int64]:
    """Bin m holds [(m-1)/M, m/M); a confidence of exactly 1.0 goes to the last bin."""
    ids = np.floor(confidence * num_bins).astype(np.int64)
    return np.clip(ids, 0, num_bins - 1)


def equal_mass_bin_ids(confidence: NDArray[np.float64], num_bins: int) -> NDArray[np.int64]:
    """Quantile bins: sort by confidence and split into num_bins nearly equal groups.

    Ties are kept together by sorting stably; groups follow numpy.array_split sizes.
    """
    n = confidence.size
    order = np.argsort(confidence, kind="stable")
    ids = np.empty(n, dtype=np.int64)
    for b, chunk in enumerate(np.array_split(order, min(num_bins, max(n, 1)))):
        ids[chunk] = b
    return ids


def ece_from_bins(confidence: NDArray[np.float64], correct: NDArray[np.float64], ids: NDArray[np.int64]) -> float:
    n = confidence.size
    if n == 0:
        return float("nan")
    counts = np.bincount(ids)
    conf_sum = np.bincount(ids, weights=confidence)
    acc_sum = np.bincount(ids, weights=correct)
    nonempty = counts > 0
    gaps = np.abs(acc_sum[nonempty] - conf_sum[nonempty])  # |B|·|acc − conf|
    return float(gaps.sum() / n)


def ece_equal_width(confidence: ArrayLike, correct: ArrayLike, num_bins: int = EQUAL_WIDTH_BINS) -> float:
    conf, corr = _as_arrays(confidence, correct)
    return ece_from_bins(conf, corr, equal_width_bin_ids(conf, num_bins))


def ece_equal_mass(confidence: ArrayLike, correct: ArrayLike, num_bins: int = EQUAL_MASS_BINS) -> float:
    conf, corr = _as_arrays(confidence, correct)
    return ece_from_bins(conf, corr, equal_mass_bin_ids(conf, num_bins))


def brier_top_label(confidence: ArrayLike, correct: ArrayLike) -> float:
    """Mean (p̂ − c)²: the binary Brier score of the top label (sklearn's brier_score_loss)."""
    conf, corr = _as_arrays(confidence, correct)
    return float(np.mean((conf - corr) ** 2)) if conf.size else float("nan")


def brier_multiclass(probabilities: NDArray[np.float64], gold: ArrayLike) -> float:
    """Brier (1950): mean over items of Σ_k (p_k − 1[k = gold])²; ranges 0..2."""
    probs = np.asarray(probabilities, dtype=float)
    gold_idx = np.asarray(gold, dtype=np.int64)
    if probs.size == 0:
        return float("nan")
    onehot = np.zeros_like(probs)
    onehot[np.arange(len(gold_idx)), gold_idx] = 1.0
    return float(np.mean(np.sum((probs - onehot) ** 2, axis=1)))


def reliability_bins(
    confidence: ArrayLike, correct: ArrayLike, num_bins: int = EQUAL_WIDTH_BINS
) -> list[ReliabilityBin]:
    """Equal-width reliability-diagram data (empty bins included, with count 0)."""
    conf, corr = _as_arrays(confidence, correct)
    ids = equal_width_bin_ids(conf, num_bins)
    counts = np.bincount(ids, minlength=num_bins)
    conf_sum = np.bincount(ids, weights=conf, minlength=num_bins)
    acc_sum = np.bincount(ids, weights=corr, minlength=num_bins)
    bins = []
    for m in range(num_bins):
        c = int(counts[m])
        bins.append(
            ReliabilityBin(
                lower=m / num_bins,
                upper=(m + 1) / num_bins,
                count=c,
                mean_confidence=float(conf_sum[m] / c) if c else float("nan"),
                accuracy=float(acc_sum[m] / c) if c else float("nan"),
            )
        )
    return bins


def softmax(logits: ArrayLike) -> NDArray[np.float64]:
    x = np.asarray(logits, dtype=float)
    x = x - np.max(x, axis=-1, keepdims=True)
    e = np.exp(x)
    return np.asarray(e / np.sum(e, axis=-1, keepdims=True), dtype=float)


def bootstrap_ece_intervals(
    confidence: ArrayLike,
    correct: ArrayLike,
    *,
    resamples: int = 1000,
    seed: int = 0,
    alpha: float = 0.05,
    width_bins: int = EQUAL_WIDTH_BINS,
    mass_bins: int = EQUAL_MASS_BINS,
) -> dict[str, tuple[float, float]]:
    """Percentile-bootstrap CIs of both ECEs, vectorised over resamples.

    Items are sorted by confidence once; a resample draws n *ranks* in that order uniformly
    with replacement (the ordinary bootstrap: every item equally likely), kept as a vector of
    counts per rank. With d = correct − confidence and F the cumulative sum of d over the
    sorted resample, a bin's Σ d is a difference of F at its edges: equal-width bins end at
    fixed ranks, equal-mass bins at fixed positions of the resample. No resample is ever
    sorted. On data already sorted by confidence, the same seed draws the same resamples as
    `stats.bootstrap_interval`.
    """
    conf, corr = _as_arrays(confidence, correct)
    n = conf.size
    if n < 2:
        nan = (float("nan"), float("nan"))
        return {"equal_width": nan, "equal_mass": nan}
    order = np.argsort(conf, kind="stable")
    gap = corr[order] - conf[order]
    width_ids = equal_width_bin_ids(conf[order], width_bins)  # non-decreasing along the ranks
    width_ends = np.append(np.flatnonzero(np.diff(width_ids)) + 1, n)  # rank after each non-empty bin
    sizes = [len(c) for c in np.array_split(np.arange(n), min(mass_bins, n))]
    mass_edges = np.cumsum(sizes)  # positions where equal-mass bins end in a sorted resample
    rng = np.random.default_rng(seed)
    width_stats, mass_stats = [], []
    batch = max(1, min(resamples, 500_000 // n))  # rows per batch: keeps arrays cache-sized
    for start in range(0, resamples, batch):
        rows = min(batch, resamples - start)
        draws = rng.integers(0, n, size=(rows, n)) + (np.arange(rows) * n)[:, None]
        counts = np.bincount(draws.ravel(), minlength=rows * n).reshape(rows, n)
        sums = np.cumsum(counts * gap, axis=1)  # F after each rank's last copy
        width_sums = np.diff(sums[:, width_ends - 1], axis=1, prepend=0.0)
        width_stats.append(np.abs(width_sums).sum(axis=1) / n)
        mass_stats.append(_mass_ece_rows(counts, sums, gap, mass_edges))
    q = [100 * alpha / 2, 100 * (1 - alpha / 2)]
    w_lo, w_hi = np.percentile(np.concatenate(width_stats), q)
    m_lo, m_hi = np.percentile(np.concatenate(mass_stats), q)
    return {"equal_width": (float(w_lo), float(w_hi)), "equal_mass": (float(m_lo), float(m_hi))}


def _mass_ece_rows(counts: NDArray[np.int64], sums: NDArray[np.float64], gap: NDArray[np.float64],
                   edges: NDArray[np.int64]) -> NDArray[np.float64]:
    """Equal-mass ECE of each resample (row of counts per rank; `sums` is F after each rank)."""
    rows, n = counts.shape
    ends = np.cumsum(counts, axis=1)  # position after each rank's last copy
    # one searchsorted for every row: row r's ends lie in [r(n+1), r(n+1)+n], apart from other rows'
    shift = (np.arange(rows) * (n + 1))[:, None]
    found = np.searchsorted((ends + shift).ravel(), (edges[None, :] + shift).ravel(), side="right")
    j = found.reshape(rows, -1) - (np.arange(rows) * n)[:, None]  # items wholly before each edge
    last = np.maximum(j - 1, 0)
    before_end = np.where(j > 0, np.take_along_axis(ends, last, axis=1), 0)
    before_sum = np.where(j > 0, np.take_along_axis(sums, last, axis=1), 0.0)
    partial = (edges[None, :] - before_end) * gap[np.minimum(j, n - 1)]
    cumulative = before_sum + np.where(j < n, partial, 0.0)
    return np.asarray(np.abs(np.diff(cumulative, axis=1, prepend=0.0)).sum(axis=1) / n, dtype=float)
