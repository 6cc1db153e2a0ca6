"""The robustness report: a stage that pairs a clean log (joined on id) with a perturbed log
of the same task (joined on source id) and gives, per perturbation:

- the clean and perturbed headline metric and their paired difference (paired bootstrap CI;
  exact McNemar p-value for 0/1 scores);
- the invariance rate: the share of samples whose answer is unchanged (for option shuffles
  and rotations, "unchanged" means the same option text, whatever its letter);
- counterfactual swaps: the same on the samples the swap changed, and their count;
- contrast sets (the answer should change): the sensitivity rate (the model's output changed;
  Niu et al.'s "over-stable" failure is a low one), the contrast accuracy and the consistency
  (correct on both, Gardner et al.);
- per-group gaps, where the samples carry a group label in their metadata.

A key with several perturbed samples (every rotation) is correct only if all are, and
invariant only if all agree with the clean answer.
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from evalkit.engine import Engine
from evalkit.log.records import HeaderRecord, SampleRecord
from evalkit.metrics.paired import mcnemar_exact, paired_bootstrap
from evalkit.metrics.stats import mean_normal_interval
from evalkit.models import ModelSpec
from evalkit.perturb.circular import picked_position, proportion
from evalkit.results import TaskResults
from evalkit.stages.base import Stage, StageInput
from evalkit.task import ScoreContext
from evalkit.types import MetricValue, Score

RESAMPLES = 2000


def answer_of(record: SampleRecord) -> Any:
    """What the answer means, comparable across option orders: the original option index for
    a reordered sample (-1: an option added by the perturbation), else the extracted answer."""
    extracted = record.score.extracted if record.score else None
    order = record.derivation.get("order")
    pos = picked_position(extracted)
    if order is not None and pos is not None and 0 <= pos < len(order):
        return ("option", order[pos])
    if record.choices and pos is not None:
        return ("option", pos)
    return ("answer", extracted)


class Robustness(Stage):
    name = "robustness"
    headline_metric = "delta"

    def __init__(self, perturbed_task: str, kind: str, group_field: str = "group",
                 resamples: int = RESAMPLES) -> None:
        self.perturbed_task = perturbed_task
        # named after what it measures, so `evalkit show` and the leaderboard tell the rows apart
        self.name = f"robustness:{perturbed_task}"
        self.kind = kind
        self.group_field = group_field
        self.resamples = resamples

    def config(self) -> dict[str, Any]:
        return {**super().config(), "perturbed_task": self.perturbed_task, "kind": self.kind,
                "group_field": self.group_field, "resamples": self.resamples}

    def header(self, inputs: Sequence[StageInput], identity: str,
               roles: Mapping[str, tuple[ModelSpec, Engine]]) -> HeaderRecord:
        """A stage log whose model is the clean log's: the leaderboard ranks models on it."""
        header = super().header(inputs, identity, roles)
        model = {**inputs[0].log.header.model, "stage": header.model["spec"]}
        return dataclasses.replace(header, model=model, model_fingerprint=inputs[0].log.header.model_fingerprint)

    async def process(self, key: str, joined: Mapping[str, tuple[SampleRecord, ...]],
                      ctx: ScoreContext) -> SampleRecord:
        (clean,) = joined["clean"]
        perturbed = joined["perturbed"]
        failed = [r for r in (clean, *perturbed) if r.score is None or r.error]
        if failed:
            raise ValueError(f"input sample {failed[0].id} has no score ({failed[0].error or 'not scored'})")
        return pair_record(key, clean, perturbed, self.kind)

    def aggregate(self, records: Sequence[SampleRecord], seed: int) -> TaskResults:
        return robustness_results(records, self.kind, self.group_field, seed, self.resamples)


def pair_record(key: str, clean: SampleRecord, perturbed: Sequence[SampleRecord], kind: str) -> SampleRecord:
    """One key's paired verdict: value = perturbed − clean score; the rest in extras."""
    assert clean.score is not None
    values = [r.score.value for r in perturbed if r.score]
    binary = all(v in (0.0, 1.0) for v in [clean.score.value, *values])
    after = min(values) if binary else float(np.mean(values))
    raw_same = all(_raw(r) == _raw(clean) for r in perturbed)
    extras: dict[str, Any] = {
        "clean": clean.score.value, "perturbed": after,
        "clean_answer": answer_of(clean), "perturbed_answers": [answer_of(r) for r in perturbed],
        "invariant": all(answer_of(r) == answer_of(clean) for r in perturbed),
        "output_changed": not raw_same,
        "changed": any(r.derivation.get("changed", True) for r in perturbed),
    }
    return SampleRecord(id=key, subtask=clean.subtask, metadata=clean.metadata,
                        score=Score(after - clean.score.value, extras["invariant"], extras),
                        joined={"clean": clean.id, "perturbed": ",".join(r.id for r in perturbed)},
                        derivation={"kind": kind})


def _raw(record: SampleRecord) -> Any:
    extracted = record.score.extracted if record.score else None
    pos = picked_position(extracted)
    return pos if pos is not None else extracted


def robustness_results(records: Sequence[SampleRecord], kind: str, group_field: str, seed: int,
                       resamples: int) -> TaskResults:
    scored = [r for r in records if r.score is not None and r.error is None]
    out = paired_metrics(scored, seed, resamples)
    if kind == "contrast":
        out.update(contrast_metrics(scored))
    else:
        out["invariance"] = proportion("invariance", sum(_extra(r, "invariant") for r in scored), len(scored),
                                       "share of samples whose answer is unchanged")
    if kind == "counterfactual":
        changed = [r for r in scored if _extra(r, "changed")]
        out["changed_n"] = MetricValue("changed_n", float(len(changed)), len(scored), higher_is_better=False,
                                       note="samples the swap changed")
        out.update({f"{name}_changed": dataclasses.replace(m, name=f"{name}_changed")
                    for name, m in paired_metrics(changed, seed, resamples).items()})
        out["prediction_changed"] = proportion(
            "prediction_changed", sum(not _extra(r, "invariant") for r in changed), len(changed),
            "share of changed samples whose answer changed")
    out["errors"] = MetricValue("errors", float(len(records) - len(scored)), len(records), higher_is_better=False,
                                note="keys whose clean or perturbed sample failed")
    return TaskResults(overall=out, categories=group_metrics(scored, group_field, seed, resamples))


def paired_metrics(scored: Sequence[SampleRecord], seed: int, resamples: int) -> dict[str, MetricValue]:
    if not scored:
        return {}
    clean = np.array([_extra(r, "clean") for r in scored], dtype=float)
    after = np.array([_extra(r, "perturbed") for r in scored], dtype=float)
    out = {"clean": _mean("clean", clean), "perturbed": _mean("perturbed", after)}
    diff = paired_bootstrap(clean, after, resamples=resamples, seed=seed)
    out["delta"] = MetricValue("delta", diff.mean_diff, diff.n, diff.ci_low, diff.ci_high, diff.method,
                               note=f"perturbed − clean; bootstrap p = {diff.p_value:.4g}", ideal=0.0)
    if np.isin(np.concatenate([clean, after]), (0.0, 1.0)).all():
        test = mcnemar_exact(clean, after)
        out["mcnemar_p"] = MetricValue("mcnemar_p", test.p_value, test.n, ci_method="exact McNemar",
                                       note=f"clean-only correct {test.b}, perturbed-only correct {test.c}")
    return out


def contrast_metrics(scored: Sequence[SampleRecord]) -> dict[str, MetricValue]:
    n = len(scored)
    both = sum(1 for r in scored if _extra(r, "clean") == 1 and _extra(r, "perturbed") == 1)
    return {
        "sensitivity": proportion("sensitivity", sum(_extra(r, "output_changed") for r in scored), n,
                                  "share of contrast samples whose output changed (the answer did)"),
        "consistency": proportion("consistency", both, n, "correct on the original and on the contrast sample"),
    }


def group_metrics(scored: Sequence[SampleRecord], field: str, seed: int,
                  resamples: int) -> dict[str, dict[str, MetricValue]]:
    groups: dict[str, list[SampleRecord]] = defaultdict(list)
    for r in scored:
        if field in r.metadata:
            groups[str(r.metadata[field])].append(r)
    return {f"{field}:{g}": paired_metrics(rs, seed, resamples) for g, rs in sorted(groups.items())}


def group_gaps(results: TaskResults, field: str = "group") -> dict[str, float]:
    """Largest minus smallest clean and perturbed metric over the groups (with ≥ 2 groups)."""
    rows = [m for name, m in results.categories.items() if name.startswith(f"{field}:") and "clean" in m]
    if len(rows) < 2:
        return {}
    return {which: max(m[which].value for m in rows) - min(m[which].value for m in rows)
            for which in ("clean", "perturbed")}


def _mean(name: str, values: np.ndarray) -> MetricValue:
    if np.isin(values, (0.0, 1.0)).all():
        return proportion(name, float(values.sum()), int(values.size))
    low, high = mean_normal_interval(values)
    return MetricValue(name, float(values.mean()), int(values.size), low, high, "normal")


def _extra(record: SampleRecord, key: str) -> Any:
    return record.score.extras[key] if record.score else None

