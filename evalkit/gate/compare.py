"""Pair a candidate run with a baseline: per task, the samples both answered, per gated metric.

Logs are paired by task name; samples by the one join rule (`evalkit.types.join_key`: a
derived sample meets the sample it came from; several records under one key are averaged).
Before anything is compared the runs must agree: the same task version, prompt format and
parameters, the same sample keys and no errored samples. A difference is a ConfigError that
names the task and the counts, unless `allow_task_mismatch` / `allow_sample_mismatch` let it
through (then the comparison uses the shared, error-free samples and reports the rest).

A gated metric needs a per-sample value: the headline metric is each sample's `score.value`,
any other metric a numeric field of `score.extras`. It must also be the plain mean of those
values (checked against the baseline's summary), otherwise a paired test of means would gate
something other than the number users see.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from evalkit.errors import ConfigError
from evalkit.gate.config import GateConfig, MetricRule
from evalkit.log.io import RunLog, read_log
from evalkit.log.records import SampleRecord
from evalkit.types import MetricValue

#: the task config fields two runs must share to be compared
TASK_FIELDS = ("version", "prompt_format", "parameters")
EXAMPLES = 3


@dataclass(frozen=True)
class PairedScores:
    """One gated (task, group, metric): the two runs' values on the same keys, aligned."""

    task: str
    group: str
    metric: str
    baseline: NDArray[np.float64]
    candidate: NDArray[np.float64]
    higher_is_better: bool = True
    ideal: float | None = None
    rule: MetricRule | None = None

    @property
    def n(self) -> int:
        return int(self.baseline.size)

    @property
    def binary(self) -> bool:
        values = np.concatenate([self.baseline, self.candidate])
        return bool(values.size) and bool(np.all((values == 0) | (values == 1)))


@dataclass(frozen=True)
class TaskPairing:
    """What the two logs of one task had in common, and what not."""

    task: str
    baseline_path: str
    candidate_path: str
    n_shared: int
    only_baseline: int = 0
    only_candidate: int = 0
    errors_baseline: int = 0
    errors_candidate: int = 0
    notes: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {"task": self.task, "baseline": self.baseline_path, "candidate": self.candidate_path,
                "n_shared": self.n_shared, "only_baseline": self.only_baseline,
                "only_candidate": self.only_candidate, "errors_baseline": self.errors_baseline,
                "errors_candidate": self.errors_candidate, "notes": list(self.notes)}


@dataclass(frozen=True)
class Pairing:
    tasks: list[TaskPairing]
    scores: list[PairedScores]
    #: tasks only the candidate ran (not gated)
    candidate_only: list[str] = field(default_factory=list)


def logs_by_task(paths: Sequence[Path], flag: str) -> dict[str, RunLog]:
    """Each task's log; two logs of one task in one run are ambiguous."""
    out: dict[str, RunLog] = {}
    for path in paths:
        log = read_log(path)
        name = log.header.task_name
        if name in out:
            raise ConfigError(f"{flag}: two logs of task {name!r} ({out[name].path} and {path}); "
                              "point at one run's directory or log")
        out[name] = log
    return out


def pair_runs(baseline: Sequence[Path], candidate: Sequence[Path], config: GateConfig) -> Pairing:
    base_logs = logs_by_task(baseline, "--baseline")
    cand_logs = logs_by_task(candidate, "--candidate")
    missing = [t for t in base_logs if t not in cand_logs]
    if missing:
        raise ConfigError(f"--candidate has no log of task(s) {', '.join(missing)} that the baseline has "
                          f"(candidate tasks: {', '.join(cand_logs) or 'none'})")
    tasks, scores = [], []
    for name, base in base_logs.items():
        pairing, task_scores = pair_task(base, cand_logs[name], config)
        tasks.append(pairing)
        scores.extend(task_scores)
    return Pairing(tasks, scores, [t for t in cand_logs if t not in base_logs])


def pair_task(base: RunLog, cand: RunLog, config: GateConfig) -> tuple[TaskPairing, list[PairedScores]]:
    name = base.header.task_name
    notes = list(_task_differences(base, cand, config))
    base_keys, base_errors = _keyed(base)
    cand_keys, cand_errors = _keyed(cand)
    shared = [k for k in base_keys if k in cand_keys and k not in base_errors and k not in cand_errors]
    pairing = TaskPairing(
        name, str(base.path), str(cand.path), len(shared),
        only_baseline=sum(1 for k in base_keys if k not in cand_keys),
        only_candidate=sum(1 for k in cand_keys if k not in base_keys),
        errors_baseline=len(base_errors), errors_candidate=len(cand_errors), notes=tuple(notes),
    )
    _check_samples(pairing, base_keys, cand_keys, base_errors | cand_errors, config)
    headline = base.header.headline_metric
    scores = []
    for rule in config.metrics_for(name, headline):
        meta = _metric_meta(base, rule.metric, headline)
        for group, keys in _groups(base, shared, base_keys, config):
            scores.append(PairedScores(
                name, group, rule.metric,
                _values(base_keys, keys, rule.metric, headline, base.path),
                _values(cand_keys, keys, rule.metric, headline, cand.path),
                meta.higher_is_better, meta.ideal, rule,
            ))
    return pairing, scores


def _task_differences(base: RunLog, cand: RunLog, config: GateConfig) -> Iterable[str]:
    for key in TASK_FIELDS:
        was, now = base.header.task.get(key), cand.header.task.get(key)
        if was != now:
            message = f"task {base.header.task_name!r}: {key.replace('_', ' ')} differs (baseline {was!r}, candidate {now!r})"
            if not config.allow_task_mismatch:
                raise ConfigError(f"{message}; pass --allow-task-mismatch to compare anyway")
            yield message


def _keyed(log: RunLog) -> tuple[dict[str, list[SampleRecord]], set[str]]:
    keyed: dict[str, list[SampleRecord]] = defaultdict(list)
    errors = set()
    for record in log.samples.values():
        keyed[record.join_key].append(record)
        if record.error or record.score is None:
            errors.add(record.join_key)
    return dict(keyed), errors


def _check_samples(pairing: TaskPairing, base_keys: Mapping[str, Any], cand_keys: Mapping[str, Any],
                   errors: set[str], config: GateConfig) -> None:
    problems = []
    if pairing.only_baseline:
        examples = [k for k in base_keys if k not in cand_keys][:EXAMPLES]
        problems.append(f"{pairing.only_baseline} samples only in the baseline (e.g. {', '.join(examples)})")
    if pairing.only_candidate:
        examples = [k for k in cand_keys if k not in base_keys][:EXAMPLES]
        problems.append(f"{pairing.only_candidate} samples only in the candidate (e.g. {', '.join(examples)})")
    for label, count in (("baseline", pairing.errors_baseline), ("candidate", pairing.errors_candidate)):
        if count:
            problems.append(f"{count} samples with errors in the {label} (rerun it to retry them)")
    if problems and not config.allow_sample_mismatch:
        raise ConfigError(f"task {pairing.task!r}: the runs' samples differ: {'; '.join(problems)}; "
                          "pass --allow-sample-mismatch to compare the shared samples")
    if pairing.n_shared == 0:
        raise ConfigError(f"task {pairing.task!r}: the runs share no scored sample")


def sample_value(record: SampleRecord, metric: str, headline: str) -> float | None:
    """A record's value of `metric`: the score's value for the headline, else a numeric extra."""
    score = record.score
    if score is None:
        return None
    if metric == headline:
        return float(score.value)
    value = score.extras.get(metric)
    if isinstance(value, bool | int | float):
        return float(value)
    return None


def _values(keyed: Mapping[str, list[SampleRecord]], keys: Sequence[str], metric: str, headline: str,
            path: Path) -> NDArray[np.float64]:
    out = np.empty(len(keys))
    for i, key in enumerate(keys):
        values = [sample_value(r, metric, headline) for r in keyed[key]]
        if any(v is None for v in values):
            raise ConfigError(f"{path}: sample {key!r} has no per-sample value of metric {metric!r} "
                              f"(gateable: the headline {headline!r} and numeric score fields)")
        out[i] = sum(v for v in values if v is not None) / len(values)
    return out


def _metric_meta(base: RunLog, metric: str, headline: str) -> MetricValue:
    """The baseline summary's view of the metric, checked to be the mean of the sample values."""
    scored = [r for r in base.samples.values() if r.score is not None and not r.error]
    values = [sample_value(r, metric, headline) for r in scored]
    if not values or any(v is None for v in values):
        raise ConfigError(f"{base.path}: metric {metric!r} has no per-sample value in task "
                          f"{base.header.task_name!r} (gateable: the headline {headline!r} and numeric score fields)")
    mean = sum(v for v in values if v is not None) / len(values)
    summary = base.summary.results.overall.get(metric) if base.summary else None
    if summary is None:
        return MetricValue(metric, mean, len(values))
    if not math.isclose(summary.value, mean, rel_tol=1e-9, abs_tol=1e-9):
        raise ConfigError(f"{base.path}: metric {metric!r} ({summary.value:g}) is not the mean of its per-sample "
                          f"values ({mean:g}); a paired test of means cannot gate it")
    return summary


def _groups(base: RunLog, shared: Sequence[str], keyed: Mapping[str, list[SampleRecord]],
            config: GateConfig) -> Iterable[tuple[str, list[str]]]:
    yield "overall", list(shared)
    subtask_of = {k: keyed[k][0].subtask for k in shared}
    if "subtask" in config.by:
        for subtask in sorted({s for s in subtask_of.values() if s}):
            yield f"subtask:{subtask}", [k for k in shared if subtask_of[k] == subtask]
    if "category" in config.by:
        categories = _category_map(base)
        for category in sorted(set(categories.values())):
            keys = [k for k in shared if categories.get(subtask_of[k]) == category]
            if keys:
                yield f"category:{category}", keys


def _category_map(base: RunLog) -> Mapping[str, str]:
    """subtask -> category, from the task rebuilt with the log's parameters."""
    from evalkit.stages.rescore import task_of

    categories = getattr(task_of(base), "categories", None)
    if not categories:
        raise ConfigError(f"--by category: task {base.header.task_name!r} has no categories")
    return dict(categories)
