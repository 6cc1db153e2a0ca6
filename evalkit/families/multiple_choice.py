"""Multiple-choice tasks scored by log-likelihood, and their aggregation.

Each choice becomes one loglikelihood request `(prompt, delimiter + choice)`. The prediction
is the argmax; the option probabilities are the softmax over the option log-likelihoods,
which gives the confidence for calibration metrics.
"""

from __future__ import annotations

import math
import os
from collections import defaultdict
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from evalkit.log.records import SampleRecord
from evalkit.metrics import calibration as cal
from evalkit.metrics.stats import (
    mean_normal_interval,
    stratified_macro_interval,
    wilson_interval,
)
from evalkit.task import Built, GroupMetrics, Task, TaskResults
from evalkit.types import (
    LOGLIKELIHOOD,
    LoglikelihoodRequest,
    MetricValue,
    Response,
    Sample,
    Score,
)

BOOTSTRAP_RESAMPLES = 1000


class MultipleChoiceTask(Task):
    """Subclasses implement `load`, `render_prompt` and (for other than letter answers) `continuations`."""

    requires = frozenset({LOGLIKELIHOOD})
    headline_metric = "acc"
    #: subtask -> category (e.g. MMLU subject -> STEM)
    categories: Mapping[str, str] = {}
    #: report lm-eval's length-normalised accuracy (meaningful only for text continuations)
    report_acc_norm = False

    def continuations(self, sample: Sample) -> tuple[str, ...]:
        """The scored continuation of each choice; default: ' A', ' B', ... (lm-eval style)."""
        return tuple(f" {chr(ord('A') + i)}" for i in range(len(sample.choices)))

    def render_prompt(self, sample: Sample, shots: Sequence[Sample]) -> str:
        raise NotImplementedError

    def build(self, sample: Sample, shots: Sequence[Sample]) -> Built:
        prompt = self.render_prompt(sample, shots)
        return Built(prompt, tuple(LoglikelihoodRequest(prompt, cont) for cont in self.continuations(sample)))

    def score(self, sample: Sample, responses: Sequence[Response]) -> Score:
        lls = [r.logprob for r in responses]
        if any(ll is None for ll in lls):
            raise ValueError(f"sample {sample.id}: a loglikelihood response has no logprob")
        logprobs = [float(ll) for ll in lls]  # type: ignore[arg-type]
        pred = max(range(len(logprobs)), key=logprobs.__getitem__)
        gold = int(sample.target)
        extras: dict[str, Any] = {"gold": gold, "probs": [round(p, 8) for p in softmax_list(logprobs)]}
        if self.report_acc_norm:
            # as lm-eval: log-likelihood divided by the continuation's length in bytes
            per_byte = [ll / max(1, len(c.encode("utf-8"))) for ll, c in zip(logprobs, self.continuations(sample), strict=True)]
            extras["acc_norm"] = float(max(range(len(per_byte)), key=per_byte.__getitem__) == gold)
        return Score(value=float(pred == gold), extracted=pred, extras=extras)

    def aggregate(self, records: Sequence[SampleRecord], seed: int = 0) -> TaskResults:
        return aggregate_multiple_choice(records, self.categories, seed=seed)


def aggregate_multiple_choice(
    records: Sequence[SampleRecord], categories: Mapping[str, str], seed: int = 0
) -> TaskResults:
    scored = [r for r in records if r.score is not None and r.error is None]
    errors = len(records) - len(scored)
    by_subtask: dict[str, list[SampleRecord]] = defaultdict(list)
    for r in scored:
        by_subtask[r.subtask].append(r)

    subtasks = {name: _group_metrics(rs, seed, with_ece=False) for name, rs in by_subtask.items()}
    by_category: dict[str, list[str]] = defaultdict(list)
    for name in by_subtask:
        if name in categories:
            by_category[categories[name]].append(name)
    # the ECE bootstraps dominate and numpy releases the GIL in them: groups run in parallel
    with ThreadPoolExecutor(max_workers=max(1, min(4, os.cpu_count() or 1))) as pool:
        pending = {cat: pool.submit(_grouped_metrics, [by_subtask[s] for s in names], seed)
                   for cat, names in by_category.items()}
        overall = _grouped_metrics(list(by_subtask.values()), seed) if scored else {}
        category_metrics = {cat: job.result() for cat, job in pending.items()}
    overall["errors"] = MetricValue("errors", float(errors), len(records), higher_is_better=False,
                                    note="samples with a failed request; excluded from every metric")
    details = {"reliability_equal_width_15": [b.to_dict() for b in _reliability(scored)]}
    return TaskResults(overall=overall, subtasks=subtasks, categories=category_metrics, details=details)


def _grouped_metrics(groups: list[list[SampleRecord]], seed: int) -> GroupMetrics:
    """Metrics over several subtasks: micro (over questions) and macro (over subtasks) accuracy."""
    flat = [r for g in groups for r in g]
    metrics = _group_metrics(flat, seed, with_ece=True)
    metrics["acc_micro"] = MetricValue(**{**_fields(metrics["acc"]), "name": "acc_micro"})
    if len(groups) > 1:
        props = [sum(r.score.value for r in g if r.score) / len(g) for g in groups]
        sizes = [len(g) for g in groups]
        low, high = stratified_macro_interval(props, sizes)
        metrics["acc_macro"] = MetricValue(
            "acc_macro", sum(props) / len(props), len(flat), low, high,
            "normal (stratified)", note=f"unweighted mean over {len(groups)} subtasks",
        )
    return metrics


def _group_metrics(records: list[SampleRecord], seed: int, *, with_ece: bool) -> GroupMetrics:
    n = len(records)
    if n == 0:
        return {}
    correct = np.fromiter((r.score.value for r in records if r.score), dtype=float, count=n)
    probs_rows = [r.score.extras.get("probs") for r in records if r.score]
    metrics: GroupMetrics = {}
    low, high = wilson_interval(float(correct.sum()), n)
    metrics["acc"] = MetricValue("acc", float(correct.mean()), n, low, high, "wilson")
    norm = [r.score.extras.get("acc_norm") for r in records if r.score]
    if norm and all(v is not None for v in norm):
        k = float(sum(norm))  # type: ignore[arg-type]
        low, high = wilson_interval(k, n)
        metrics["acc_norm"] = MetricValue("acc_norm", k / n, n, low, high, "wilson",
                                          note="argmax of log-likelihood per byte (lm-eval acc_norm)")
    if any(p is None for p in probs_rows):
        return metrics
    conf = np.fromiter((max(p) for p in probs_rows if p), dtype=float, count=n)
    brier_items = (conf - correct) ** 2
    low, high = mean_normal_interval(brier_items)
    metrics["brier_top_label"] = MetricValue("brier_top_label", float(brier_items.mean()), n, low, high,
                                             "normal", higher_is_better=False)
    gold = [r.score.extras.get("gold") for r in records if r.score]
    if all(g is not None for g in gold) and len({len(p) for p in probs_rows if p}) == 1:
        probs = np.asarray(probs_rows, dtype=float)
        onehot = np.zeros_like(probs)
        onehot[np.arange(n), np.asarray(gold, dtype=np.int64)] = 1.0
        items = np.sum((probs - onehot) ** 2, axis=1)
        low, high = mean_normal_interval(items)
        metrics["brier_multiclass"] = MetricValue("brier_multiclass", float(items.mean()), n, low, high,
                                                  "normal", higher_is_better=False)
    if with_ece:
        metrics.update(_ece_metrics(conf, correct, seed))
    return metrics


def _ece_metrics(conf: np.ndarray, correct: np.ndarray, seed: int) -> GroupMetrics:
    n = conf.size
    intervals = cal.bootstrap_ece_intervals(conf, correct, resamples=BOOTSTRAP_RESAMPLES, seed=seed)
    note = "unreliable below ~300 samples" if n < 300 else ""
    method = f"bootstrap percentile ({BOOTSTRAP_RESAMPLES})"
    out: GroupMetrics = {}
    for name, value, key in (
        ("ece_equal_width_15", cal.ece_equal_width(conf, correct), "equal_width"),
        ("ece_equal_mass_10", cal.ece_equal_mass(conf, correct), "equal_mass"),
    ):
        low, high = intervals[key]
        out[name] = MetricValue(name, value, n, low, high, method, higher_is_better=False, note=note)
    return out


def _reliability(records: list[SampleRecord]) -> list[cal.ReliabilityBin]:
    rows = [(max(r.score.extras["probs"]), r.score.value) for r in records
            if r.score and r.score.extras.get("probs")]
    if not rows:
        return []
    conf, correct = zip(*rows, strict=True)
    return cal.reliability_bins(conf, correct)


def _fields(m: MetricValue) -> dict[str, Any]:
    return {"name": m.name, "value": m.value, "n": m.n, "ci_low": m.ci_low, "ci_high": m.ci_high,
            "ci_method": m.ci_method, "higher_is_better": m.higher_is_better, "note": m.note}


def softmax_list(logits: Sequence[float]) -> list[float]:
    """Softmax of a handful of numbers (plain Python beats numpy at this size)."""
    top = max(logits)
    exps = [math.exp(x - top) for x in logits]
    total = sum(exps)
    return [e / total for e in exps]
