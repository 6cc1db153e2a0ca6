"""Win rates of pairwise comparisons, shared by judges, imported judgments and human ratings.

- `WinTieLoss`: counts of outcomes (1 win, 0.5 tie, 0 loss) with both win rates named:
  `win_rate` = W / n and `win_rate_ties_half` = (W + T/2) / n (FastChat's `win_rate_adjusted`).
- `cluster_bootstrap_mean`: percentile CI of a mean where the resampled unit is a cluster
  (a question with two turns is one unit: its judgments are not independent).
- `alpaca_eval_winrate`: AlpacaEval's win rate and standard error exactly as alpaca_eval
  computes them (`metrics/helpers.py`, `describe_head2head`): preferences in [1, 2] (1 = the
  baseline wins, 2 = the model wins), 0 and 1.5 are draws (0 is read as 1.5); anything else
  (NaN, out of range) is dropped; win_rate = 100·mean(p − 1), standard_error = 100·SEM (ddof=1).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

DEFAULT_RESAMPLES = 1000


@dataclass(frozen=True)
class WinTieLoss:
    wins: int
    ties: int
    losses: int

    @property
    def n(self) -> int:
        return self.wins + self.ties + self.losses

    @property
    def win_rate(self) -> float:
        return self.wins / self.n if self.n else math.nan

    @property
    def win_rate_ties_half(self) -> float:
        return (self.wins + 0.5 * self.ties) / self.n if self.n else math.nan

    @staticmethod
    def of(outcomes: ArrayLike) -> WinTieLoss:
        """Counts of outcomes given as 1 (win), 0.5 (tie) and 0 (loss)."""
        arr = np.asarray(outcomes, dtype=float)
        bad = arr[~np.isin(arr, (0.0, 0.5, 1.0))]
        if bad.size:
            raise ValueError(f"an outcome must be 0, 0.5 or 1, got {bad[0]}")
        return WinTieLoss(int((arr == 1).sum()), int((arr == 0.5).sum()), int((arr == 0).sum()))


def cluster_bootstrap_mean(values: ArrayLike, clusters: Sequence[str] | None = None, *,
                           resamples: int = DEFAULT_RESAMPLES, seed: int = 0,
                           alpha: float = 0.05) -> tuple[float, float]:
    """Percentile bootstrap CI of mean(values), resampling whole clusters with replacement.

    Each resample draws as many clusters as there are, and the statistic is the mean over
    every value of the drawn clusters (a cluster drawn twice counts twice). Without
    `clusters` each value is its own cluster (the ordinary bootstrap)."""
    arr = np.asarray(values, dtype=float)
    return cluster_bootstrap_ratio(arr, np.ones(arr.size), clusters, resamples=resamples, seed=seed, alpha=alpha)


def cluster_bootstrap_ratio(numerators: ArrayLike, denominators: ArrayLike, clusters: Sequence[str] | None = None,
                            *, resamples: int = DEFAULT_RESAMPLES, seed: int = 0,
                            alpha: float = 0.05) -> tuple[float, float]:
    """Percentile bootstrap CI of Σ numerators / Σ denominators, resampling whole clusters
    (e.g. Vicuna's relative score: a model's total rating over the baseline's)."""
    num = np.asarray(numerators, dtype=float)
    den = np.asarray(denominators, dtype=float)
    labels = list(clusters) if clusters is not None else [str(i) for i in range(num.size)]
    if len(labels) != num.size or den.size != num.size:
        raise ValueError(f"{num.size} values but {den.size} denominators and {len(labels)} cluster labels")
    names = sorted(set(labels))
    if len(names) < 2:
        return (math.nan, math.nan)
    index = {name: i for i, name in enumerate(names)}
    ids = np.fromiter((index[x] for x in labels), dtype=np.int64, count=num.size)
    sums = np.bincount(ids, weights=num, minlength=len(names))
    sizes = np.bincount(ids, weights=den, minlength=len(names))
    rng = np.random.default_rng(seed)
    # counts[r, c]: how often cluster c is drawn in resample r (a multinomial draw)
    counts = rng.multinomial(len(names), np.full(len(names), 1 / len(names)), size=resamples)
    with np.errstate(divide="ignore", invalid="ignore"):
        stats = (counts @ sums) / (counts @ sizes)
    low, high = np.percentile(stats, [100 * alpha / 2, 100 * (1 - alpha / 2)])
    return (float(low), float(high))


@dataclass(frozen=True)
class AlpacaEvalWinRate:
    win_rate: float
    standard_error: float
    n_wins: int
    n_wins_base: int
    n_draws: int
    n_total: int


def alpaca_eval_winrate(preferences: ArrayLike) -> AlpacaEvalWinRate:
    """AlpacaEval's head-to-head numbers (in percent), as its leaderboard reports them."""
    prefs = np.asarray(preferences, dtype=float)
    n_draws = int(((prefs == 0) | (prefs == 1.5)).sum())  # counted before invalid ones are dropped
    prefs = np.where(prefs == 0, 1.5, prefs)
    valid = prefs[~np.isnan(prefs) & (prefs >= 1) & (prefs <= 2)] - 1
    n = int(valid.size)
    sem = float(valid.std(ddof=1) / math.sqrt(n)) if n > 1 else math.nan
    return AlpacaEvalWinRate(
        win_rate=float(valid.mean()) * 100 if n else math.nan,
        standard_error=sem * 100,
        n_wins=int((valid > 0.5).sum()),
        n_wins_base=int((valid < 0.5).sum()),
        n_draws=n_draws,
        n_total=n,
    )
