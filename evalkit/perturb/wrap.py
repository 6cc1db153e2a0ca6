"""`task@perturbation(...)`: a task whose samples are perturbed copies of another task's.

The wrapped task loads the inner task's data and replaces each test sample by its variants
(few-shot examples stay clean). Building requests, scoring and aggregating are the inner
task's, so the wrapper works on any task whose samples have what the perturbation changes
(text, or options). A circular wrapper adds circular accuracy and the per-position answer
frequencies to the inner task's metrics.
"""

from __future__ import annotations

import copy
import dataclasses
import random
from collections.abc import Mapping, Sequence
from typing import Any

from evalkit.errors import ConfigError
from evalkit.log.records import SampleRecord
from evalkit.params import resolve
from evalkit.perturb.base import Perturbation, Variant, WrapperEntry, sample_seed, wrapper_entry
from evalkit.perturb.spec import WrapperCall
from evalkit.task import (
    Built,
    DataSource,
    Execute,
    ScoreContext,
    Solved,
    Task,
    TaskData,
    TaskResults,
)
from evalkit.types import Response, Sample, Score, prompt_to_json


def wrap_task(task: Task, calls: Sequence[WrapperCall], name: str) -> Task:
    """The task with each wrapper applied in order; parameters checked (before any model)."""
    for call in calls:
        entry = wrapper_entry(call.name)
        label = f"@{call.label()}"
        task = entry.factory(task, wrapper_values(f"{task.name}{label}", call, entry), label)
    task.name = name  # part of construction: nothing has seen it yet
    return task


def wrapper_values(where: str, call: WrapperCall, entry: WrapperEntry) -> dict[str, Any]:
    """The wrapper's parameter values, checked as `-T` values are (same parser, same ranges)."""
    known = sorted(p.name for p in entry.params)
    unknown = [k for k, _ in call.given if k not in known]
    if unknown:
        raise ConfigError(f"task {where!r}: @{call.name} has no parameter {unknown[0]!r} "
                          f"(it takes: {', '.join(known) or 'none'}; see docs/perturbations.md)")
    try:
        return resolve(where, entry.params, call.raw())
    except ConfigError as exc:  # the shared parser words its errors for -T; these came in the name
        raise ConfigError(str(exc).replace(" -T ", " ")) from None


class WrappedTask(Task):
    """Delegates everything to the inner task; subclasses change the samples or the prompts."""

    def __init__(self, inner: Task, label: str, wrapper: Mapping[str, Any]) -> None:
        self.inner = inner
        self.label = label
        self.wrapper = dict(wrapper)
        self.name = inner.name + label
        for attr in ("version", "description", "requires", "roles", "prompt_format", "headline_metric",
                     "default_num_fewshot", "limit_per_subtask", "interactive", "parameters"):
            setattr(self, attr, getattr(inner, attr))

    def config(self) -> dict[str, Any]:
        inner = self.inner.config()
        return {**inner, "name": self.name, "wrappers": [*inner.get("wrappers", []), self.wrapper]}

    def load(self, source: DataSource) -> TaskData:
        return self.inner.load(source)

    def build(self, sample: Sample, shots: Sequence[Sample]) -> Built:
        return self.inner.build(sample, shots)

    def score(self, sample: Sample, responses: Sequence[Response]) -> Score:
        return self.inner.score(sample, responses)

    async def solve(self, sample: Sample, shots: Sequence[Sample], execute: Execute) -> Solved:
        return await self.inner.solve(sample, shots, execute)

    def aggregate(self, records: Sequence[SampleRecord], seed: int = 0) -> TaskResults:
        return self.inner.aggregate(records, seed)

    def select_shots(self, sample: Sample, data: TaskData, k: int) -> tuple[Sample, ...]:
        return self.inner.select_shots(sample, data, k)

    def with_capabilities(self, capabilities: frozenset[str]) -> Task:
        inner = self.inner.with_capabilities(capabilities)
        if inner is self.inner:
            return self
        twin = copy.copy(self)
        twin.inner = inner
        return twin


class AsyncScoring:
    """Mixed in when the inner task scores asynchronously (code execution, judges)."""

    inner: Task

    async def ascore(self, sample: Sample, responses: Sequence[Response], ctx: ScoreContext) -> Score:
        return await self.inner.ascore(sample, responses, ctx)


class PerturbedTask(WrappedTask):
    def __init__(self, inner: Task, perturbation: Perturbation, label: str) -> None:
        super().__init__(inner, label, {"perturbation": perturbation.name, "kind": perturbation.kind,
                                        "params": dict(perturbation.values)})
        self.perturbation = perturbation

    def load(self, source: DataSource) -> TaskData:
        data = self.inner.load(source)
        usable = [s for s in data.samples if self.perturbation.applies_to(s)]
        if not usable:
            what = "multiple-choice options" if self.perturbation.needs == "choices" else "input text"
            raise ConfigError(f"task {self.name!r}: perturbation {self.perturbation.name!r} needs samples with "
                              f"{what}, and task {self.inner.name!r} has none")
        derived = tuple(v for s in data.samples for v in self.derive(s))
        return dataclasses.replace(data, samples=derived)

    def derive(self, sample: Sample) -> tuple[Sample, ...]:
        """The sample's variants as derived samples (an inapplicable sample: itself, unchanged)."""
        seed = sample_seed(int(self.perturbation.values.get("seed", 0)), self.perturbation.name, sample.id)
        if not self.perturbation.applies_to(sample):
            variants: tuple[Variant, ...] = (Variant(self.perturbation.name, sample.input, sample.choices,
                                                     sample.target, {"applicable": False}),)
        else:
            variants = self.perturbation.derive(sample, random.Random(seed))
        return tuple(self._sample(sample, v, seed) for v in variants)

    def _sample(self, sample: Sample, variant: Variant, seed: int) -> Sample:
        changed = (variant.input, variant.choices, variant.target) != (sample.input, sample.choices, sample.target)
        derivation: dict[str, Any] = {
            "perturbation": self.perturbation.name, "kind": self.perturbation.kind,
            "params": dict(self.perturbation.values), "seed": seed, "changed": changed,
            "original": {"input": _json_prompt(sample.input), "choices": list(sample.choices), "target": sample.target},
            **variant.info,
        }
        if sample.derivation:
            derivation["previous"] = dict(sample.derivation)
        return dataclasses.replace(sample, id=f"{sample.id}@{variant.suffix}", input=variant.input,
                                   choices=variant.choices, target=variant.target,
                                   source_id=sample.source_id or sample.id, derivation=derivation)

    def aggregate(self, records: Sequence[SampleRecord], seed: int = 0) -> TaskResults:
        results = self.inner.aggregate(records, seed)
        if self.perturbation.kind != "rotation":
            return results
        from evalkit.perturb.circular import circular_metrics

        return results.with_overall(circular_metrics(records))


class _AsyncPerturbedTask(AsyncScoring, PerturbedTask):
    pass


def perturbed_task(inner: Task, perturbation: Perturbation, label: str) -> PerturbedTask:
    """The runner scores synchronously unless a task overrides `ascore`: keep the inner's way."""
    cls = PerturbedTask if type(inner).ascore is Task.ascore else _AsyncPerturbedTask
    return cls(inner, perturbation, label)


def _json_prompt(prompt: Any) -> Any:
    return prompt_to_json(prompt)
