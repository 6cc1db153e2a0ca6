"""Task spec: a task is a Python plugin built from small parts.

A task loads frozen samples (plus an optional few-shot pool per subtask), turns one sample
and its shots into requests, scores a sample from its responses, and aggregates scored
records into named metrics. Tasks register with `@register_task` or `register_task(name, obj)`.
"""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from evalkit import registry
from evalkit.errors import ConfigError
from evalkit.types import MetricValue, Request, Response, Sample, Score


@dataclass(frozen=True)
class DataSource:
    """Where benchmark data comes from: a local folder (EVALKIT_DATA_DIR) or the hub."""

    data_dir: Path | None
    allow_hub: bool = True


@dataclass(frozen=True)
class TaskData:
    samples: tuple[Sample, ...]
    fewshot: Mapping[str, tuple[Sample, ...]] = field(default_factory=dict)
    #: where the data was read from, for the run log
    origin: str = ""


@dataclass(frozen=True)
class ScoredRecord:
    """One finished sample as the aggregator sees it (also rebuilt from a run log)."""

    sample_id: str
    subtask: str
    score: Score | None
    error: str | None = None


#: sends requests through the engine (cache, retries) and returns their responses
Execute = Callable[[Sequence[Request]], Awaitable[list[Response]]]

#: metrics for one group: metric name -> value
GroupMetrics = dict[str, MetricValue]


@dataclass(frozen=True)
class TaskResults:
    """Aggregates of one task: overall, per subtask and per category."""

    overall: GroupMetrics
    subtasks: Mapping[str, GroupMetrics] = field(default_factory=dict)
    categories: Mapping[str, GroupMetrics] = field(default_factory=dict)
    #: extra structured results (e.g. reliability-diagram bins)
    details: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        def group(g: GroupMetrics) -> dict[str, Any]:
            return {name: m.to_dict() for name, m in g.items()}

        return {
            "overall": group(self.overall),
            "subtasks": {k: group(v) for k, v in sorted(self.subtasks.items())},
            "categories": {k: group(v) for k, v in sorted(self.categories.items())},
            "details": dict(self.details),
        }


class Task(ABC):
    """Base class for tasks. Subclasses set the class attributes and implement the parts."""

    name: str = ""
    version: str = "1"
    description: str = ""
    #: capabilities the backend must have, e.g. {"loglikelihood"}
    requires: frozenset[str] = frozenset()
    #: the prompt format, named so results say how they were obtained
    prompt_format: str = ""
    #: the metric shown in leaderboards
    headline_metric: str = "acc"
    default_num_fewshot: int = 0
    #: True when --limit applies per subtask (MMLU subjects), as lm-eval users expect
    limit_per_subtask: bool = False

    @abstractmethod
    def load(self, source: DataSource) -> TaskData: ...

    @abstractmethod
    def build_requests(self, sample: Sample, shots: Sequence[Sample]) -> tuple[Request, ...]: ...

    @abstractmethod
    def render_prompt(self, sample: Sample, shots: Sequence[Sample]) -> str:
        """The prompt as the model sees it (kept in the log)."""

    def requests_and_prompt(self, sample: Sample, shots: Sequence[Sample]) -> tuple[tuple[Request, ...], str]:
        """`build_requests` and `render_prompt` together; tasks whose requests carry the
        rendered prompt override this to render it once (the runner's hot path)."""
        return self.build_requests(sample, shots), self.render_prompt(sample, shots)

    @abstractmethod
    def score(self, sample: Sample, responses: Sequence[Response]) -> Score: ...

    async def ascore(self, sample: Sample, responses: Sequence[Response]) -> Score:
        """Async scoring; tasks that run code or call judges override this."""
        return self.score(sample, responses)

    #: True for multi-step tasks (multi-turn chat): the runner calls `solve` per sample
    #: instead of batching every sample's requests of a chunk together
    interactive: bool = False

    async def solve(
        self, sample: Sample, shots: Sequence[Sample], execute: Execute
    ) -> tuple[tuple[Request, ...], list[Response]]:
        """Run a sample's requests; multi-step tasks override this (each step may depend on
        earlier responses) and return every request made with its response, in order."""
        requests = self.build_requests(sample, shots)
        return requests, await execute(requests)

    @abstractmethod
    def aggregate(self, records: Sequence[ScoredRecord], seed: int = 0) -> TaskResults: ...

    def configure_for(self, capabilities: frozenset[str]) -> None:
        """Called once the backend is known, before any request: a task may use optional
        capabilities (e.g. first-token logprobs for calibration). Must not change `config()`."""
        return None

    def config(self) -> dict[str, Any]:
        """Everything about the task that changes results (hashed into the run's identity)."""
        return {"name": self.name, "version": self.version, "prompt_format": self.prompt_format}

    def select_shots(self, sample: Sample, data: TaskData, k: int) -> tuple[Sample, ...]:
        """Default: the first k of the subtask's few-shot pool (lm-eval's `first_n`)."""
        if k == 0:
            return ()
        pool = data.fewshot.get(sample.subtask, ())
        if len(pool) < k:
            raise ConfigError(
                f"--num-fewshot {k}: task {self.name!r} has only {len(pool)} few-shot examples"
                f" for subtask {sample.subtask or '(all)'!r}"
            )
        return pool[:k]


TaskFactory = Callable[[], Task]


def register_task(name: str, factory: TaskFactory) -> None:
    registry.tasks.register(name, factory)


def get_task(name: str) -> Task:
    factory: Any = registry.tasks.get(name)
    task = factory()
    if not isinstance(task, Task):
        raise TypeError(f"task factory for {name!r} returned {type(task).__name__}, not a Task")
    return task


def run_sync(coro: Any) -> Any:
    """For the rare sync caller (tests, scripts) outside the CLI's event loop."""
    return asyncio.run(coro)
