"""AlpacaEval's length-controlled win rate (AE `metrics/glm_winrate.py`, `length_controlled_v1`).

Per model, a logistic GLM of its comparisons against the baseline, without intercept:

    logit P(model ≻ baseline)_i = φ·tanh(Δlen_i / std(Δlen)) + ψ·difficulty_i + θ

where Δlen_i = len(baseline output) − len(model output) in characters (AE's sign: output_1 is
the baseline; φ < 0 when the longer answer is preferred), std is the sample standard
deviation (ddof = 1, pandas'), and θ is the `not_gamed_baseline` coefficient (every real
comparison has the indicator 1). The labels are AE's preferences − 1 in [0, 1] (a draw 0.5),
fitted as soft labels. Then

    LC win rate = 100 · mean_i σ(ψ·difficulty_i + θ)        (Δlen set to 0)

and its standard error is the SEM (ddof = 1) of those predictions, as AE reports it.

Variants (named in the result): `glm` with per-instruction difficulties from an input file
(AE fetches them from the hub); `glm_no_difficulty` without the ψ term, where the closed form
is LC = 100·σ(θ) and AE's SEM is 0, so a bootstrap CI over instructions is given as well. Both
are the unpenalised MLE: AE's L1 `LogisticRegressionCV` and its regularisation towards two
"gamed" baselines (λ = 0.2, data from the hub) are not reproduced, so the numbers approach
AE's leaderboard only as far as those choices matter.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from evalkit.metrics.logistic import FloatArray, fit_logistic, sigmoid

VARIANT_FULL = "glm"
VARIANT_NO_DIFFICULTY = "glm_no_difficulty"


@dataclass(frozen=True)
class LengthControlled:
    lc_win_rate: float
    standard_error: float
    ci_low: float
    ci_high: float
    win_rate: float
    n: int
    variant: str
    #: fitted weights by AE's column names: length, instruction_difficulty (full variant), not_gamed_baseline
    weights: dict[str, float]
    std_delta_len: float


def _design(delta_len: FloatArray, difficulty: FloatArray | None) -> tuple[FloatArray, list[str], float]:
    std = float(np.std(delta_len, ddof=1)) if delta_len.size > 1 else 0.0
    scaled = np.tanh(delta_len / std) if std > 0 else np.zeros_like(delta_len)
    columns = [scaled]
    names = ["np.tanh(std_delta_len)"]
    if difficulty is not None:
        columns.append(difficulty)
        names.append("instruction_difficulty")
    columns.append(np.ones_like(delta_len))
    names.append("not_gamed_baseline.astype(float)")
    return np.stack(columns, axis=1), names, std


def length_controlled_win_rate(outcomes: ArrayLike, delta_len: ArrayLike, difficulty: ArrayLike | None = None,
                               *, resamples: int = 1000, seed: int = 0, alpha: float = 0.05) -> LengthControlled:
    """`outcomes`: P(model better) per instruction in [0, 1] (AE's preference − 1; draws 0.5);
    `delta_len`: len(baseline) − len(model) in characters; `difficulty`: per instruction, optional."""
    y = np.asarray(outcomes, dtype=float)
    delta = np.asarray(delta_len, dtype=float)
    diff = None if difficulty is None else np.asarray(difficulty, dtype=float)
    if y.shape != delta.shape or (diff is not None and diff.shape != y.shape):
        raise ValueError("outcomes, length differences and difficulties need one value per instruction each")
    if y.size < 2:
        raise ValueError(f"the length-controlled GLM needs at least 2 comparisons, got {y.size}")
    if np.any((y < 0) | (y > 1)) or np.any(np.isnan(y)):
        raise ValueError("outcomes must lie in [0, 1] (preference − 1)")
    x, names, std = _design(delta, diff)
    rng = np.random.default_rng(seed)
    drawn = rng.multinomial(y.size, np.full(y.size, 1 / y.size), size=resamples).astype(float)
    beta = fit_logistic(x, y, np.vstack([np.ones(y.size), drawn]))
    test = x.copy()
    test[:, 0] = 0.0  # Δlen = 0
    predicted = sigmoid(beta @ test.T)  # (1 + resamples) × n
    point = predicted[0]
    boot = np.einsum("rn,rn->r", predicted[1:], drawn) / y.size  # each resample's mean over its draws
    low, high = np.percentile(100 * boot, [100 * alpha / 2, 100 * (1 - alpha / 2)])
    return LengthControlled(
        lc_win_rate=100 * float(point.mean()), standard_error=100 * float(point.std(ddof=1) / math.sqrt(y.size)),
        ci_low=float(low), ci_high=float(high), win_rate=100 * float(y.mean()), n=int(y.size),
        variant=VARIANT_NO_DIFFICULTY if diff is None else VARIANT_FULL,
        weights={name: float(w) for name, w in zip(names, beta[0], strict=True)}, std_delta_len=std)
