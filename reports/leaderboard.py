"""Leaderboard: model × task table of headline metrics with CIs, an aggregate, ranks.

- Each cell is the task's headline metric as the run's summary reports it (value, n, CI),
  or, for a run without a current summary, recomputed from its sample records.
- The aggregate column's method is named and selectable (METHODS).
- Rank intervals: a paired (Poisson) bootstrap over samples within each task (every model
  gets the same sample weights) gives replicate aggregates; each model's rank in each
  replicate gives the 95% interval of its rank.
- Adjacent rows are marked when their difference is not significant: a paired bootstrap
  over the samples both models answered (95% CI of the difference includes 0).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from evalkit.metrics.paired import (
    MacroPairedDifference,
    TaskDifference,
    bootstrap_weights,
    combine_differences,
    percentile_interval,
    ranks_desc,
    replicate_means,
)
from evalkit.metrics.stats import mean_normal_interval, wilson_interval
from evalkit.reports.bootstrap import task_matrix
from evalkit.reports.frames import RunData, RunSet, SkippedLog

METHODS = {
    "mean": "macro mean: the unweighted mean over tasks of each task's headline metric",
    "win_rate": "mean win rate (as in HELM): per task, the share of the other models this model "
                "beats (ties count half), averaged over the tasks it has",
    "normalized": "chance-normalised mean: per task (x − chance) / (1 − chance), chance = the mean "
                  "of 1/|choices| over its samples (0 for open-ended tasks), then the macro mean",
}
DEFAULT_RESAMPLES = 1000


@dataclass(frozen=True)
class Cell:
    task: str
    metric: str
    value: float
    ci_low: float
    ci_high: float
    n: int
    ci_method: str
    #: "summary" or "samples" (recomputed: the run has no summary, or a stale one)
    source: str
    n_errors: int
    higher_is_better: bool = True
    #: the metric's best value when it is a target (StereoSet's SS: 50): ranked by distance to it
    ideal: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"metric": self.metric, "value": _num(self.value), "ci": [_num(self.ci_low), _num(self.ci_high)],
                "n": self.n, "ci_method": self.ci_method, "source": self.source, "n_errors": self.n_errors,
                "higher_is_better": self.higher_is_better, **({"ideal": self.ideal} if self.ideal is not None else {})}


@dataclass(frozen=True)
class Row:
    model: str
    cells: dict[str, Cell]
    aggregate: float
    aggregate_ci: tuple[float, float]
    rank: int
    rank_interval: tuple[int, int]
    #: paired difference to the next row in the table's order (None for the last row)
    vs_next: MacroPairedDifference | None = None

    @property
    def tied_with_next(self) -> bool:
        return self.vs_next is not None and not self.vs_next.significant

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model, "rank": self.rank, "rank_interval": list(self.rank_interval),
            "aggregate": {"value": _num(self.aggregate), "ci": [_num(c) for c in self.aggregate_ci]},
            "tasks": {t: c.to_dict() for t, c in self.cells.items()},
            "vs_next": self.vs_next.to_dict() if self.vs_next else None,
            "not_significant_vs_next": self.tied_with_next,
        }


@dataclass(frozen=True)
class Leaderboard:
    method: str
    tasks: list[str]
    rows: list[Row]
    sort_by: str
    resamples: int
    seed: int
    skipped: list[SkippedLog] = field(default_factory=list)
    superseded: list[SkippedLog] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def description(self) -> str:
        return METHODS[self.method]

    def to_dict(self) -> dict[str, Any]:
        return {
            "aggregation": {"method": self.method, "description": self.description},
            "sorted_by": self.sort_by,
            "rank_interval_method": f"paired Poisson bootstrap over samples within tasks ({self.resamples} "
                                    f"resamples, seed {self.seed}), 95% percentile interval of each model's rank",
            "significance": "adjacent rows: paired Poisson bootstrap over the samples both models answered; "
                            "not significant when the 95% CI of the difference includes 0",
            "tasks": self.tasks, "models": [r.to_dict() for r in self.rows],
            "skipped": [vars(s) for s in self.skipped], "superseded": [vars(s) for s in self.superseded],
            "notes": self.notes,
        }


def headline_cell(run: RunData) -> Cell:
    """The run's headline metric: from its summary when it covers every sample, else recomputed."""
    metric = run.headline_metric
    summary = run.summary or {}
    n_errors = int(np.count_nonzero(run.errored))
    entry = (summary.get("results") or {}).get("overall", {}).get(metric)
    if isinstance(entry, dict) and summary.get("n_samples") == run.ids.size and _is_number(entry.get("value")):
        ci = entry.get("ci") or [None, None]
        return Cell(run.task, metric, float(entry["value"]), _float(ci[0]), _float(ci[1]), int(entry.get("n") or 0),
                    str(entry.get("ci_method") or ""), "summary", n_errors, bool(entry.get("higher_is_better", True)),
                    _float(entry["ideal"]) if _is_number(entry.get("ideal")) else None)
    return _cell_from_samples(run, metric, n_errors)


def _cell_from_samples(run: RunData, metric: str, n_errors: int) -> Cell:
    scored = run.values[~np.isnan(run.values)]
    n = int(scored.size)
    value = float(scored.mean()) if n else math.nan
    if n and np.all((scored == 0) | (scored == 1)):
        low, high, method = *wilson_interval(float(scored.sum()), n), "wilson"
    else:
        low, high, method = *mean_normal_interval(scored), "normal"
    return Cell(run.task, metric, value, low, high, n, method, "samples", n_errors)


def aggregate(method: str, values: NDArray[np.float64], chance: NDArray[np.float64],
              higher_is_better: NDArray[np.bool_]) -> NDArray[np.float64]:
    """values: [..., T, M] → [..., M]. Tasks with a lower-is-better headline count only in win rate."""
    with np.errstate(invalid="ignore", divide="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a model with no tasks: NaN, no warning
        if method == "mean":
            return np.asarray(np.nanmean(values[..., higher_is_better, :], axis=-2), dtype=np.float64)
        if method == "normalized":
            c = chance[higher_is_better][:, None]
            return np.asarray(np.nanmean((values[..., higher_is_better, :] - c) / (1.0 - c), axis=-2), dtype=np.float64)
        if method == "win_rate":
            return np.asarray(np.nanmean(_win_rates(values, higher_is_better), axis=-2), dtype=np.float64)
    raise ValueError(f"unknown aggregation method {method!r}; choose from {', '.join(METHODS)}")


def _win_rates(values: NDArray[np.float64], higher_is_better: NDArray[np.bool_]) -> NDArray[np.float64]:
    signed = np.where(higher_is_better[:, None], values, -values)
    present = ~np.isnan(signed)
    a, b = signed[..., :, None], signed[..., None, :]
    both = present[..., :, None] & present[..., None, :]
    n_models = signed.shape[-1]
    both = both & ~np.eye(n_models, dtype=bool)
    wins = np.sum(((a > b) + 0.5 * (a == b)) * both, axis=-1)
    others = np.sum(both, axis=-1)
    return np.where(present & (others > 0), wins / np.maximum(others, 1), np.nan)


def build_leaderboard(
    runset: RunSet,
    method: str = "mean",
    *,
    sort_by: str = "aggregate",
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = 0,
) -> Leaderboard:
    if method not in METHODS:
        raise ValueError(f"unknown aggregation method {method!r}; choose from {', '.join(METHODS)}")
    tasks, models = runset.tasks, runset.models
    if sort_by != "aggregate" and sort_by not in tasks:
        raise ValueError(f"cannot sort by {sort_by!r}: not a task here ({', '.join(tasks)})")
    if not runset.runs:
        return Leaderboard(method, [], [], sort_by, resamples, seed, runset.skipped, runset.superseded,
                           ["no readable run logs"])
    cells = {(r.model, r.task): headline_cell(r) for r in runset.runs}
    point = np.array([[cells[(m, t)].value if (m, t) in cells else np.nan for m in models] for t in tasks])
    hib = np.array([all(c.higher_is_better for (_, t2), c in cells.items() if t2 == t) for t in tasks], dtype=bool)
    ideal = np.array([_task_ideal(cells, t) for t in tasks])
    # a target metric is ranked by closeness to its ideal; it counts in win rate only (a mean of
    # distances next to accuracies would mix scales)
    hib = np.where(np.isnan(ideal), hib, method == "win_rate")
    chance = np.array([_chance(runset, t) for t in tasks])
    ranked = toward_ideal(point, ideal)
    agg_point = aggregate(method, ranked, chance, hib)
    order = _order(models, agg_point if sort_by == "aggregate" else ranked[tasks.index(sort_by)])
    replicates, diffs = _bootstrap(runset, tasks, models, point, order, resamples, seed)
    rep_agg = aggregate(method, toward_ideal(replicates, ideal), chance, hib)
    low, high = percentile_interval(rep_agg)
    rank_low, rank_high = percentile_interval(ranks_desc(rep_agg))
    point_rank = ranks_desc(agg_point)
    weights = _difference_weights(method, chance, hib & np.isnan(ideal))
    if sort_by != "aggregate":
        weights = np.array([1.0 if t == sort_by else 0.0 for t in tasks])
    rows = []
    for pos, m in enumerate(order):
        vs_next = None
        if pos + 1 < len(order):
            parts = diffs[(m, order[pos + 1])]
            keep = [i for i, w in enumerate(weights) if w != 0]
            vs_next = combine_differences([parts[i] for i in keep], [float(weights[i]) for i in keep])
        rows.append(Row(
            model=models[m], cells={t: cells[(models[m], t)] for t in tasks if (models[m], t) in cells},
            aggregate=float(agg_point[m]), aggregate_ci=(float(low[m]), float(high[m])),
            rank=int(point_rank[m]), rank_interval=(_int_or(rank_low[m], point_rank[m], math.floor),
                                                    _int_or(rank_high[m], point_rank[m], math.ceil)),
            vs_next=vs_next))
    notes = _notes(tasks, hib, method)
    return Leaderboard(method, tasks, rows, sort_by, resamples, seed, runset.skipped, runset.superseded, notes)


def _bootstrap(
    runset: RunSet, tasks: list[str], models: list[str], point: NDArray[np.float64], order: list[int],
    resamples: int, seed: int,
) -> tuple[NDArray[np.float64], dict[tuple[int, int], list[TaskDifference]]]:
    """Replicates of every cell (B × T × M) and the adjacent pairs' paired differences per task.

    One set of bootstrap weights per task serves both: the model rows and the adjacent
    pairs' difference rows are multiplied by the same weight matrix.
    """
    rng = np.random.default_rng(seed)
    replicates = np.full((resamples, len(tasks), len(models)), np.nan)
    pairs = list(zip(order[:-1], order[1:], strict=True))
    diffs: dict[tuple[int, int], list[TaskDifference]] = {p: [] for p in pairs}
    for t, task in enumerate(tasks):
        runs = [r for r in runset.runs if r.task == task]
        matrix = task_matrix(task, runs)
        row_of = {models.index(r.model): i for i, r in enumerate(runs)}
        columns, weights = bootstrap_weights(matrix.values, resamples, rng)
        nan_row = np.full(columns.shape[1], np.nan)
        diff_rows = np.stack([
            (columns[row_of[a]] if a in row_of else nan_row) - (columns[row_of[b]] if b in row_of else nan_row)
            for a, b in pairs]) if pairs else np.empty((0, columns.shape[1]))
        reps = replicate_means(np.vstack([columns, diff_rows]), weights)
        for m, i in row_of.items():
            full_mean = np.nanmean(matrix.values[i]) if np.any(~np.isnan(matrix.values[i])) else np.nan
            # centre on the reported headline value (equal to the sample mean for accuracy)
            replicates[:, t, m] = reps[:, i] - full_mean + point[t, m]
        for k, (a, b) in enumerate(pairs):
            sample_diff = _row(matrix.values, row_of.get(a)) - _row(matrix.values, row_of.get(b))
            diffs[(a, b)].append(TaskDifference.from_replicates(sample_diff, reps[:, len(runs) + k]))
    return replicates, diffs


def toward_ideal(values: NDArray[np.float64], ideal: NDArray[np.float64]) -> NDArray[np.float64]:
    """values [..., T, M] with each target task's values replaced by −|value − ideal| (higher =
    closer), so every ranking below can keep reading "higher is better"."""
    has = ~np.isnan(ideal)
    if not has.any():
        return values
    return np.where(has[:, None], -np.abs(values - np.nan_to_num(ideal)[:, None]), values)


def _task_ideal(cells: dict[tuple[str, str], Cell], task: str) -> float:
    ideals = {c.ideal for (_, t), c in cells.items() if t == task}
    only = ideals.pop() if len(ideals) == 1 else None
    return float(only) if only is not None else math.nan


def _row(values: NDArray[np.float64], row: int | None) -> NDArray[np.float64]:
    return values[row] if row is not None else np.full(values.shape[1], np.nan)


def _difference_weights(method: str, chance: NDArray[np.float64], hib: NDArray[np.bool_]) -> NDArray[np.float64]:
    """Per-task weights of the adjacent-pair test: the aggregate's linear form (mean for win rate)."""
    weights = np.where(hib, 1.0, 0.0)
    if method == "normalized":
        weights = weights / np.maximum(1.0 - chance, 1e-12)
    return weights


def _order(models: list[str], scores: NDArray[np.float64]) -> list[int]:
    return sorted(range(len(models)), key=lambda m: (math.isnan(scores[m]), -np.nan_to_num(scores[m]), models[m]))


def _chance(runset: RunSet, task: str) -> float:
    sizes = np.concatenate([r.n_choices for r in runset.runs if r.task == task])
    sizes = sizes[sizes > 0]
    return float(np.mean(1.0 / sizes)) if sizes.size else 0.0


def _notes(tasks: list[str], hib: NDArray[np.bool_], method: str) -> list[str]:
    lower = [t for t, h in zip(tasks, hib, strict=True) if not h]
    if lower and method != "win_rate":
        return [f"tasks with a lower-is-better headline are left out of the {method} aggregate: {', '.join(lower)}"]
    return []


def _int_or(value: float, fallback: float, rounding: Any) -> int:
    return int(rounding(value)) if math.isfinite(value) else int(fallback)


def _is_number(x: object) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(float(x))


def _float(x: object) -> float:
    return float(x) if _is_number(x) else math.nan  # type: ignore[arg-type]


def _num(x: float) -> float | None:
    return float(x) if x is not None and math.isfinite(x) else None
