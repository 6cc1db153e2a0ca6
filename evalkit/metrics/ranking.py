"""Rankings of any number of models from pairwise battles (judge verdicts, human votes).

- `bradley_terry`: the Bradley–Terry MLE (FastChat `rating_systems.py`, Chatbot Arena):
  P(a beats b) = 1 / (1 + base^((R_b − R_a)/scale)); a tie counts as half a win each way
  (outcome y = 0.5 in the log-likelihood y·log p + (1 − y)·log(1 − p)). Fitted by Newton's
  method on the log-strengths θ (P = σ(θ_a − θ_b)), then reported in Elo points
  R = scale·θ / ln(base), shifted so that the **anchor** model is at `anchor_rating`, or,
  without an anchor, so that the **mean rating** is `anchor_rating`.
- `online_elo`: FastChat's sequential Elo (R_a += K·(S_a − E_a)); order-dependent.
- `rank_with_ci`: either rating with percentile-bootstrap CIs (resampling battles with
  replacement, as FastChat's `compute_bootstrap_elo`/`_bt`) and rank intervals.
- `win_rate_matrix`: row model's (wins + ties/2) / battles against the column model.

A model that never lost (or never won) has no finite BT MLE; its rating is where the
iterations stop (far from the others), and its CI is correspondingly wide.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from evalkit.metrics.logistic import fit_logistic

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]
METHODS = ("bt", "elo")


@dataclass(frozen=True)
class Battle:
    """One comparison: outcome 1.0 = model_a wins, 0.0 = model_b wins, 0.5 = tie."""

    model_a: str
    model_b: str
    outcome: float

    def __post_init__(self) -> None:
        if self.outcome not in (0.0, 0.5, 1.0):
            raise ValueError(f"a battle's outcome must be 1.0 (model_a wins), 0.0 or 0.5 (tie), got {self.outcome!r}")
        if self.model_a == self.model_b:
            raise ValueError(f"a battle needs two different models, got {self.model_a!r} twice")


@dataclass(frozen=True)
class RatedModel:
    name: str
    rating: float
    ci_low: float
    ci_high: float
    rank: int
    rank_low: int
    rank_high: int
    battles: int


@dataclass(frozen=True)
class _Design:
    """Battles as integer model indices (models sorted by name) and outcomes."""

    models: list[str]
    a: IntArray
    b: IntArray
    y: FloatArray


def _design(battles: Sequence[Battle]) -> _Design:
    if not battles:
        raise ValueError("no battles to rank")
    models = sorted({m for x in battles for m in (x.model_a, x.model_b)})
    index = {m: i for i, m in enumerate(models)}
    a = np.array([index[x.model_a] for x in battles], dtype=np.int64)
    b = np.array([index[x.model_b] for x in battles], dtype=np.int64)
    y = np.array([x.outcome for x in battles], dtype=float)
    return _Design(models, a, b, y)


def _cells(design: _Design) -> tuple[_Design, FloatArray]:
    """The unique (model_a, model_b, outcome) cells and their battle counts: the BT
    likelihood depends on the battles only through these counts, so fits stay small."""
    keys = np.stack([design.a, design.b, (2 * design.y).astype(np.int64)], axis=1)
    unique, counts = np.unique(keys, axis=0, return_counts=True)
    cells = _Design(design.models, unique[:, 0].copy(), unique[:, 1].copy(), unique[:, 2] / 2.0)
    return cells, counts.astype(float)


def fit_log_strengths(design: _Design, weights: FloatArray) -> FloatArray:
    """BT log-strengths θ for each row of `weights` (resamples × battles), mean 0 per row.

    A logistic regression on x = e_a − e_b without intercept (FastChat's `compute_mle_elo`
    design). The likelihood is invariant to adding a constant to θ; the gradient is
    orthogonal to that direction, so the Newton iterates stay at mean 0 from θ = 0."""
    onehot = np.zeros((design.a.size, len(design.models)))
    onehot[np.arange(design.a.size), design.a] = 1.0
    onehot[np.arange(design.a.size), design.b] -= 1.0
    theta = fit_logistic(onehot, design.y, weights)
    centred: FloatArray = theta - theta.mean(axis=1, keepdims=True)
    return centred


def _to_elo(theta: FloatArray, models: Sequence[str], anchor: str | None, anchor_rating: float,
            scale: float, base: float) -> FloatArray:
    ratings: FloatArray = scale * theta / math.log(base)
    if anchor is None:
        centred: FloatArray = ratings - ratings.mean(axis=-1, keepdims=True) + anchor_rating
        return centred
    if anchor not in models:
        raise ValueError(f"anchor model {anchor!r} is in no battle (models: {', '.join(models)})")
    pinned = ratings[..., list(models).index(anchor)]
    return ratings - pinned[..., None] + anchor_rating


def bradley_terry(battles: Sequence[Battle], *, anchor: str | None = None, anchor_rating: float = 1000.0,
                  scale: float = 400.0, base: float = 10.0) -> dict[str, float]:
    """Bradley–Terry MLE ratings in Elo points (anchor at anchor_rating, else mean = anchor_rating)."""
    cells, counts = _cells(_design(battles))
    theta = fit_log_strengths(cells, counts[None, :])
    ratings = _to_elo(theta, cells.models, anchor, anchor_rating, scale, base)[0]
    return {m: float(r) for m, r in zip(cells.models, ratings, strict=True)}


def log_strengths(battles: Sequence[Battle]) -> dict[str, float]:
    """The BT MLE's natural-log strengths θ (P(a beats b) = σ(θ_a − θ_b)), centred at mean 0."""
    cells, counts = _cells(_design(battles))
    theta = fit_log_strengths(cells, counts[None, :])[0]
    return {m: float(t) for m, t in zip(cells.models, theta, strict=True)}


def _elo_batch(design: _Design, order: IntArray, k: float, scale: float, base: float,
               initial: float) -> FloatArray:
    """Online Elo for each row of `order` (resamples × steps: battle indices, in play order)."""
    rows = order.shape[0]
    ratings = np.full((rows, len(design.models)), initial)
    r_index = np.arange(rows)
    for step in range(order.shape[1]):
        battle = order[:, step]
        ia, ib, score = design.a[battle], design.b[battle], design.y[battle]
        expected = 1.0 / (1.0 + base ** ((ratings[r_index, ib] - ratings[r_index, ia]) / scale))
        delta = k * (score - expected)
        ratings[r_index, ia] += delta
        ratings[r_index, ib] -= delta
    return ratings


def online_elo(battles: Sequence[Battle], *, k: float = 4.0, scale: float = 400.0, base: float = 10.0,
               initial: float = 1000.0) -> dict[str, float]:
    """FastChat's online Elo over the battles in the given order (every model starts at `initial`)."""
    design = _design(battles)
    order = np.arange(design.y.size, dtype=np.int64)[None, :]
    ratings = _elo_batch(design, order, k, scale, base, initial)[0]
    return {m: float(r) for m, r in zip(design.models, ratings, strict=True)}


def _bootstrap_ratings(design: _Design, method: str, resamples: int, seed: int, anchor: str | None,
                       anchor_rating: float, scale: float, base: float, k: float) -> tuple[FloatArray, FloatArray]:
    """(point ratings, resamples × models ratings); each resample draws n battles with replacement
    (for BT, equivalently, multinomial counts over the unique cells, as FastChat's `compute_bootstrap_bt`)."""
    n = design.y.size
    rng = np.random.default_rng(seed)
    if method == "bt":
        cells, counts = _cells(design)
        drawn = rng.multinomial(n, counts / n, size=resamples).astype(float)
        theta = fit_log_strengths(cells, np.vstack([counts, drawn]))
        ratings = _to_elo(theta, design.models, anchor, anchor_rating, scale, base)
    else:
        draws = rng.integers(0, n, size=(resamples, n))
        order = np.vstack([np.arange(n, dtype=np.int64)[None, :], draws])
        ratings = _elo_batch(design, order, k, scale, base, anchor_rating)
        if anchor is not None:
            ratings = _to_elo(ratings * math.log(base) / scale, design.models, anchor, anchor_rating, scale, base)
    return ratings[0], ratings[1:]


def rank_with_ci(battles: Sequence[Battle], *, method: str = "bt", resamples: int = 1000, seed: int = 0,
                 alpha: float = 0.05, anchor: str | None = None, anchor_rating: float = 1000.0,
                 scale: float = 400.0, base: float = 10.0, k: float = 4.0) -> list[RatedModel]:
    """Ratings (BT MLE or online Elo in the given order) with percentile-bootstrap CIs, best first.

    `rank` is 1 + the number of models with a higher point rating. The rank interval is read
    off the CIs (Chatbot Arena's rule): `rank_low` (best) = 1 + the number of models whose
    CI lies entirely above this model's, `rank_high` (worst) = the number of models whose CI
    does not lie entirely below it. Elo starts every model at `anchor_rating` (K = `k`)."""
    if method not in METHODS:
        raise ValueError(f"ranking method must be one of {', '.join(METHODS)}, got {method!r}")
    if resamples < 1:
        raise ValueError(f"resamples must be at least 1, got {resamples}")
    design = _design(battles)
    point, boot = _bootstrap_ratings(design, method, resamples, seed, anchor, anchor_rating, scale, base, k)
    low, high = np.percentile(boot, [100 * alpha / 2, 100 * (1 - alpha / 2)], axis=0)
    played = np.bincount(np.concatenate([design.a, design.b]), minlength=len(design.models))
    rated = [
        RatedModel(name=m, rating=float(point[i]), ci_low=float(low[i]), ci_high=float(high[i]),
                   rank=1 + int((point > point[i]).sum()), rank_low=1 + int((low > high[i]).sum()),
                   rank_high=int((high >= low[i]).sum()), battles=int(played[i]))
        for i, m in enumerate(design.models)
    ]
    return sorted(rated, key=lambda r: (-r.rating, r.name))


def win_rate_matrix(battles: Sequence[Battle]) -> dict[str, dict[str, float]]:
    """matrix[row][col] = row's (wins + ties/2) / battles against col, for every pair that met."""
    score: dict[tuple[str, str], float] = defaultdict(float)
    played: dict[tuple[str, str], int] = defaultdict(int)
    for x in battles:
        score[(x.model_a, x.model_b)] += x.outcome
        score[(x.model_b, x.model_a)] += 1.0 - x.outcome
        played[(x.model_a, x.model_b)] += 1
        played[(x.model_b, x.model_a)] += 1
    models = sorted({m for pair in played for m in pair})
    return {row: {col: score[(row, col)] / played[(row, col)] for col in models if played.get((row, col))}
            for row in models}
