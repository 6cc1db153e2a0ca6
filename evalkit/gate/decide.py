"""The gate's decision: per gated metric, the paired change, its CI and a named rule.

For each (task, group, metric) the change is candidate − baseline on the shared samples
(for a metric with an ideal target: the change in distance to it, |cand − ideal| −
|base − ideal|). `improvement` below is that change oriented so that positive is better.

The rule (`RULE`, printed with every result):
- fail when the drop is larger than the tolerance: the one-sided paired-bootstrap p-value of
  "improvement ≥ −tolerance" is ≤ alpha after Holm's correction over all gated metrics (with a
  single metric: the 95% CI lies wholly beyond −tolerance); for 0/1 scores the exact McNemar
  test's Holm-adjusted p must also be ≤ alpha with the drop in the same direction;
- pass when the 95% CI lies wholly inside (lower bound of the improvement ≥ −tolerance);
- inconclusive otherwise, or when fewer than `min_samples` samples are shared (a bootstrap CI
  from a handful of samples is degenerate, not precise).
The tolerance is max(absolute, relative × |baseline|) plus the noise floor, if calibrated.

Every result carries the minimum detectable effect: the drop beyond the tolerance that the
test would detect with the configured power at this n, (z_{1−α/2m} + z_power)·s/√n, with s
the standard deviation of the per-sample differences (when they are all 0: the unpaired
bound √(var_base + var_cand)), and the n at which that effect equals the tolerance.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np
from numpy.typing import NDArray

from evalkit.gate.compare import PairedScores
from evalkit.gate.config import GateConfig
from evalkit.metrics.paired import McNemarResult, holm_adjust, mcnemar_exact, paired_bootstrap

RULE = ("fail: Holm-adjusted one-sided paired-bootstrap p of 'drop ≤ tolerance' ≤ alpha (one metric: "
        "the 95% CI lies wholly beyond −tolerance), and for 0/1 scores the Holm-adjusted exact McNemar p ≤ alpha; "
        "pass: the 95% CI lies wholly within the tolerance; inconclusive: otherwise, or n < min_samples")
PASS, FAIL, INCONCLUSIVE = "pass", "fail", "inconclusive"


@dataclass(frozen=True)
class Verdict:
    task: str
    group: str
    metric: str
    n: int
    baseline: float
    candidate: float
    #: "difference" (candidate − baseline) or "distance to ideal" (|cand − ideal| − |base − ideal|)
    change_kind: str
    change: float
    ci_low: float
    ci_high: float
    ci_method: str
    higher_is_better: bool
    ideal: float | None
    tolerance: float
    tolerance_rule: str
    noise_floor: float
    p_regression: float
    p_regression_holm: float
    mcnemar: McNemarResult | None
    mcnemar_holm: float | None
    mde: float
    mde_basis: str
    n_for_tolerance: int | None
    status: str
    reason: str

    @property
    def name(self) -> str:
        group = "" if self.group == "overall" else f"[{self.group}]"
        return f"{self.task}{group}:{self.metric}"


@dataclass(frozen=True)
class _Stats:
    """One metric's improvement statistics before the multiple-testing step."""

    scores: PairedScores
    change: float
    ci: tuple[float, float]
    ci_method: str
    tolerance: float
    noise: float
    p_regression: float
    mcnemar: McNemarResult | None
    p_mcnemar_regression: float


def decide(scores: Sequence[PairedScores], config: GateConfig,
           noise: Mapping[tuple[str, str], float] | None = None) -> list[Verdict]:
    stats = [_statistics(s, config, (noise or {}).get((s.task, s.metric), 0.0)) for s in scores]
    holm = holm_adjust([s.p_regression for s in stats]) if stats else np.array([])
    holm_mc = holm_adjust([s.p_mcnemar_regression if s.mcnemar else math.nan for s in stats]) \
        if stats else np.array([])
    return [_verdict(s, float(h), None if math.isnan(hm) else float(hm), config, len(stats))
            for s, h, hm in zip(stats, holm, holm_mc, strict=True)]


def _statistics(scores: PairedScores, config: GateConfig, noise: float) -> _Stats:
    a, b = scores.baseline, scores.candidate
    if scores.ideal is not None:
        base_distance = abs(float(a.mean()) - scores.ideal)
        tol = config.tolerance_for(scores.rule).allowed(base_distance) if scores.rule else 0.0
        tol += noise
        change, ci, p_reg = _distance_bootstrap(a, b, scores.ideal, tol, config.resamples, config.seed)
        method = f"paired bootstrap of the distance to {scores.ideal:g}, percentile, {config.resamples} resamples, seed {config.seed}"
        return _Stats(scores, change, ci, method, tol, noise, p_reg, None, math.nan)
    tol = (config.tolerance_for(scores.rule).allowed(float(a.mean())) if scores.rule else 0.0) + noise
    worse, better = (a, b) if scores.higher_is_better else (b, a)
    diff = paired_bootstrap(worse, better, resamples=config.resamples, seed=config.seed)  # mean(improvement)
    shifted = paired_bootstrap(worse, better + tol, resamples=config.resamples, seed=config.seed)  # same draws: tests improvement = −tol
    p_reg = shifted.p_value if shifted.mean_diff < 0 else 1.0
    sign = 1.0 if scores.higher_is_better else -1.0
    ci = (diff.ci_low, diff.ci_high) if sign > 0 else (-diff.ci_high, -diff.ci_low)
    mcnemar, p_mc = None, math.nan
    if scores.binary:
        mcnemar = mcnemar_exact(a, b)
        # regression direction: more pairs that got worse than better
        worse_pairs, better_pairs = (mcnemar.b, mcnemar.c) if scores.higher_is_better else (mcnemar.c, mcnemar.b)
        p_mc = mcnemar.p_value if worse_pairs > better_pairs else 1.0
    return _Stats(scores, sign * diff.mean_diff, ci, diff.method, tol, noise, p_reg, mcnemar, p_mc)


def _distance_bootstrap(a: NDArray[np.float64], b: NDArray[np.float64], ideal: float, tol: float,
                        resamples: int, seed: int) -> tuple[float, tuple[float, float], float]:
    """(change in distance, its 95% CI, one-sided p of 'distance grew by ≤ tol'); the same index
    draws as `paired_bootstrap`."""
    rng = np.random.default_rng(seed)
    n = a.size
    rows = max(1, (1 << 22) // max(1, n))
    grew = np.empty(resamples)
    for start in range(0, resamples, rows):
        idx = rng.integers(0, n, size=(min(resamples, start + rows) - start, n))
        grew[start:start + idx.shape[0]] = np.abs(b[idx].mean(axis=1) - ideal) - np.abs(a[idx].mean(axis=1) - ideal)
    change = abs(float(b.mean()) - ideal) - abs(float(a.mean()) - ideal)
    low, high = np.percentile(grew, [2.5, 97.5])
    p = min(1.0, 2.0 * (1 + int(np.count_nonzero(grew <= tol))) / (resamples + 1)) if change > tol else 1.0
    return change, (float(low), float(high)), p


def _verdict(s: _Stats, p_holm: float, mc_holm: float | None, config: GateConfig, m: int) -> Verdict:
    scores = s.scores
    improvement_low = -s.ci[1] if scores.ideal is not None else (s.ci[0] if scores.higher_is_better else -s.ci[1])
    mde, basis = _mde(scores, config, m)
    n_needed = math.ceil((mde * math.sqrt(scores.n) / s.tolerance) ** 2) if s.tolerance > 0 and math.isfinite(mde) else None
    ci_text = f"[{s.ci[0]:+.4f}, {s.ci[1]:+.4f}]"
    if scores.n < config.min_samples:
        status, reason = INCONCLUSIVE, f"n = {scores.n} < min_samples {config.min_samples}"
    elif p_holm <= config.alpha and (mc_holm is None or mc_holm <= config.alpha):
        status, reason = FAIL, (f"drop beyond the tolerance {s.tolerance:.4f}: change {s.change:+.4f}, 95% CI {ci_text}, "
                                f"Holm p = {p_holm:.3g}" + (f", McNemar Holm p = {mc_holm:.3g}" if mc_holm is not None else ""))
    elif improvement_low >= -s.tolerance:
        status, reason = PASS, f"95% CI {ci_text} lies within the tolerance {s.tolerance:.4f}"
    else:
        why = "the McNemar test does not confirm the drop" if p_holm <= config.alpha else \
            f"95% CI {ci_text} crosses the tolerance {s.tolerance:.4f}"
        status, reason = INCONCLUSIVE, why
    if status == INCONCLUSIVE:
        needed = (f"; about {n_needed} shared samples would detect a drop of {2 * s.tolerance:.4f} (twice the tolerance)"
                  if n_needed else "")
        reason += f"; minimum detectable effect at n = {scores.n}: {mde:.4f} beyond the tolerance{needed}"
    base_mean, cand_mean = float(scores.baseline.mean()), float(scores.candidate.mean())
    tolerance = config.tolerance_for(scores.rule) if scores.rule else config.tolerance
    return Verdict(
        scores.task, scores.group, scores.metric, scores.n, base_mean, cand_mean,
        "distance to ideal" if scores.ideal is not None else "difference", s.change, s.ci[0], s.ci[1],
        s.ci_method, scores.higher_is_better, scores.ideal, s.tolerance, tolerance.describe(), s.noise,
        s.p_regression, p_holm, s.mcnemar, mc_holm, mde, basis, n_needed, status, reason,
    )


def _mde(scores: PairedScores, config: GateConfig, m: int) -> tuple[float, str]:
    """Minimum detectable effect beyond the tolerance (see the module doc) and what s was."""
    n = scores.n
    if n < 2:
        return math.nan, "n < 2"
    z = NormalDist().inv_cdf(1 - config.alpha / (2 * m)) + NormalDist().inv_cdf(config.power)
    sd = float(np.std(scores.candidate - scores.baseline, ddof=1))
    basis = "sd of the paired differences"
    if sd == 0:
        sd = math.sqrt(float(np.var(scores.baseline, ddof=1) + np.var(scores.candidate, ddof=1)))
        basis = "unpaired bound (no sample changed)"
    if sd == 0:
        return math.nan, "no variation in either run"
    return z * sd / math.sqrt(n), f"{basis}, alpha/{m}, power {config.power:g}"


def exit_status(verdicts: Sequence[Verdict], config: GateConfig) -> tuple[str, int]:
    """The gate's overall status and exit code: 0 pass, 1 regression, 3 inconclusive (by policy)."""
    if any(v.status == FAIL for v in verdicts):
        return FAIL, 1
    if any(v.status == INCONCLUSIVE for v in verdicts):
        return INCONCLUSIVE, {"exit3": 3, "pass": 0, "fail": 1}[config.inconclusive]
    return PASS, 0
