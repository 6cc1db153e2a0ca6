"""Shared parts of open-ended generation tasks (MT-Bench, AlpacaEval) before judging.

Their quality needs a judge (a later step). Until then the metrics say only what can be
measured honestly: the share of samples answered (every turn non-empty; Wilson CI) and the
mean output length in characters (normal CI), overall and per category. No quality score.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

import numpy as np

from evalkit.log.records import SampleRecord
from evalkit.metrics.stats import mean_normal_interval, wilson_interval
from evalkit.task import GroupMetrics, Task, TaskResults
from evalkit.types import GENERATE, MetricValue, Response, Sample, Score


class OpenEndedTask(Task):
    requires = frozenset({GENERATE})
    headline_metric = "answered"

    def score(self, sample: Sample, responses: Sequence[Response]) -> Score:
        texts = [r.text or "" for r in responses]
        answered = bool(texts) and all(t.strip() for t in texts)
        return Score(value=1.0 if answered else 0.0, extras={"chars": [len(t) for t in texts]})

    def aggregate(self, records: Sequence[SampleRecord], seed: int = 0) -> TaskResults:
        scored = [r for r in records if r.score is not None and r.error is None]
        by_subtask: dict[str, list[SampleRecord]] = defaultdict(list)
        for r in scored:
            by_subtask[r.subtask].append(r)
        overall = output_metrics(scored)
        overall["errors"] = MetricValue(
            "errors", float(len(records) - len(scored)), len(records), higher_is_better=False,
            note="samples with a failed request or no stored output; excluded from every metric",
        )
        subtasks = {name: output_metrics(rs) for name, rs in sorted(by_subtask.items())}
        return TaskResults(overall=overall, subtasks=subtasks)


def output_metrics(records: Sequence[SampleRecord]) -> GroupMetrics:
    """`answered` and `output_chars` (per turn when there are several turns)."""
    n = len(records)
    if n == 0:
        return {}
    answered = sum(r.score.value for r in records if r.score)
    low, high = wilson_interval(answered, n)
    metrics: GroupMetrics = {
        "answered": MetricValue("answered", answered / n, n, low, high, "wilson",
                                note="share of samples whose every turn is non-empty (not a quality score)")
    }
    lengths = [list(r.score.extras.get("chars", [])) for r in records if r.score]
    n_turns = max((len(x) for x in lengths), default=0)
    for turn in range(n_turns):
        values = np.array([x[turn] for x in lengths if len(x) > turn], dtype=float)
        name = "output_chars" if n_turns == 1 else f"output_chars_turn{turn + 1}"
        low, high = mean_normal_interval(values)
        metrics[name] = MetricValue(name, float(values.mean()), int(values.size), _finite(low), _finite(high),
                                    "normal", note="mean output length in characters: a length, "
                                    "not a quality (neither direction is better)")
    return metrics


def _finite(x: float) -> float | None:
    return None if np.isnan(x) else x
