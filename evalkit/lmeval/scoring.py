"""Aggregation of an lm-eval task's per-sample metrics with lm-eval's own code, plus evalkit's
n and 95% CIs.

lm-eval's evaluator (`lm_eval.evaluator_utils._process_results`, lm-eval 0.4.13) turns the
per-sample values of `process_results` into the task and group aggregates and the rest of its
results layout; that dict is kept in the summary's details (`details["lmeval"]`), which is what
`evalkit show --format lmeval` writes. Metric names are lm-eval's keys (`acc,none`) without the
default filter's suffix: `acc`, `exact_match,strict-match`.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

from evalkit.lmeval.loading import Loaded, jsonable
from evalkit.log.records import SampleRecord
from evalkit.metrics.stats import mean_normal_interval, stratified_macro_interval, wilson_interval
from evalkit.results import GroupMetrics, TaskResults
from evalkit.types import MetricValue

#: lm-eval's default --bootstrap_iters (its stderr of non-mean metrics)
BOOTSTRAP_ITERS = 100000
DEFAULT_FILTER = ",none"

RawMetrics = dict[tuple[str, str], list[Any]]


def metric_name(key: str) -> str:
    """evalkit's name of an lm-eval metric key."""
    return key.removesuffix(DEFAULT_FILTER)


def lmeval_key(name: str) -> str:
    return name if "," in name else name + DEFAULT_FILTER


def raw_metrics(records: Sequence[SampleRecord]) -> dict[str, RawMetrics]:
    """Per subtask, lm-eval's `raw_metrics`: (metric, filter) -> per-sample values, in log order."""
    out: dict[str, RawMetrics] = defaultdict(lambda: defaultdict(list))
    for record in records:
        if record.score is None or record.error is not None:
            continue
        for key, value in (record.score.extras.get("lmeval") or {}).items():
            metric, _, filter_key = key.rpartition(",")
            out[record.subtask][(metric, filter_key)].append(value)
    return out


def aggregate(loaded: Loaded, records: Sequence[SampleRecord]) -> TaskResults:
    from lm_eval.evaluator_utils import _process_results

    raw = raw_metrics(records)
    accumulators = {leaf: {"task": task, "raw_metrics": raw[leaf], "logged_samples": []}
                    for leaf, task in loaded.tasks.items() if leaf in raw}
    if not accumulators:
        return TaskResults(overall={})
    groups = {name: g for name, g in loaded.groups.items() if all(t.task_name in raw for t in g.get_all_tasks())}
    results = jsonable(_process_results(accumulators, groups, BOOTSTRAP_ITERS)._to_eval_results())
    shots = {r.subtask: len(r.shots) for r in records}
    results["n-shot"].update({leaf: n for leaf, n in shots.items() if leaf in results["n-shot"]})
    leaves = {leaf: _metrics(results["results"][leaf], raw[leaf], results["higher_is_better"].get(leaf, {}))
              for leaf in accumulators}
    group_metrics = {name: _group_metrics(results["results"][name], [raw[t.task_name] for t in g.get_all_tasks()],
                                          results["higher_is_better"].get(name, {}))
                     for name, g in groups.items() if name in results.get("groups", {})}
    if loaded.is_group:
        overall = group_metrics.pop(loaded.name, {})
        subtasks: Mapping[str, GroupMetrics] = leaves
    else:
        overall, subtasks = leaves.get(loaded.name) or next(iter(leaves.values())), {}
    return TaskResults(overall=overall, subtasks=subtasks, categories=group_metrics, details={"lmeval": results})


def _metrics(values: Mapping[str, Any], raw: RawMetrics, better: Mapping[str, Any]) -> GroupMetrics:
    out: GroupMetrics = {}
    for (metric, filter_key), items in raw.items():
        key = f"{metric},{filter_key}"
        value = values.get(key)
        if isinstance(value, (int, float)):
            out[metric_name(key)] = with_interval(metric_name(key), float(value), [items], better.get(metric, True))
    return out


def _group_metrics(values: Mapping[str, Any], raws: Sequence[RawMetrics], better: Mapping[str, Any]) -> GroupMetrics:
    out: GroupMetrics = {}
    for key, value in values.items():
        metric, _, filter_key = key.partition(",")
        if not filter_key or "_stderr" in metric or not isinstance(value, (int, float)):
            continue
        per_task = [raw.get((metric, filter_key), []) for raw in raws]
        out[metric_name(key)] = with_interval(metric_name(key), float(value), per_task, better.get(metric, True))
    return out


def with_interval(name: str, value: float, per_task: Sequence[Sequence[Any]], higher: Any,
                  n: int | None = None) -> MetricValue:
    """The aggregate with n and a CI where lm-eval's number is a mean of per-sample values:
    Wilson for 0/1 items, a normal interval for other means, and for an unweighted mean of
    subtask proportions the stratified interval. Other aggregations (corpus BLEU, F1) get none."""
    numeric = [[float(v) for v in items if isinstance(v, (int, float))] for items in per_task]
    flat = [v for items in numeric for v in items]
    hib = bool(higher) if higher is not None else True
    given = sum(len(i) for i in per_task)
    if not flat or len(flat) != given:
        why = "no per-item values" if not given else "lm-eval aggregate of non-numeric items"
        return MetricValue(name, value, n if n is not None else given, higher_is_better=hib, note=f"{why}; no CI")
    n = len(flat)
    binary = set(flat) <= {0.0, 1.0}
    if math.isclose(value, sum(flat) / n, rel_tol=0, abs_tol=1e-9):
        low, high = wilson_interval(sum(flat), n) if binary else mean_normal_interval(flat)
        return MetricValue(name, value, n, low, high, "wilson" if binary else "normal", hib)
    props = [sum(items) / len(items) for items in numeric if items]
    if binary and len(props) > 1 and math.isclose(value, sum(props) / len(props), abs_tol=1e-9):
        low, high = stratified_macro_interval(props, [len(i) for i in numeric if i])
        return MetricValue(name, value, n, low, high, "normal (stratified)", hib,
                           note=f"unweighted mean over {len(props)} subtasks")
    return MetricValue(name, value, n, higher_is_better=hib, note="lm-eval aggregation is not a mean of items; no CI")
