"""Task spec: a task is a Python plugin built from small parts.

A task loads frozen samples (plus an optional few-shot pool per subtask), turns one sample
and its shots into requests (`build`, the one request hook), scores a sample from its
responses (calling named model roles through a `ScoreContext` if it needs a judge), and
aggregates the log's sample records into named metrics. Tasks register with
`register_task(name, factory, params)`; `get_task(name, {"key": ["value"]})` builds one.
"""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from evalkit import registry
from evalkit.errors import ConfigError
from evalkit.params import NO_MODEL, ModelFacts, Param, resolve
from evalkit.perturb.spec import canonical_name, parse_task_name
from evalkit.results import GroupMetrics, TaskResults
from evalkit.types import Request, Response, Sample, Score

if TYPE_CHECKING:
    from evalkit.log.records import SampleRecord

__all__ = [
    "Built", "DataSource", "Execute", "GroupMetrics", "ScoreContext", "Solved", "Task", "TaskData",
    "TaskEntry", "TaskResults", "get_task", "register_task", "task_entry",
]


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


#: sends requests through the engine (cache, retries) and returns their responses
Execute = Callable[[Sequence[Request]], Awaitable[list[Response]]]


@dataclass(frozen=True, slots=True)
class Built:
    """A sample's requests and its prompt as the model sees it (kept in the log)."""

    prompt: str
    requests: tuple[Request, ...]


@dataclass(frozen=True)
class Solved:
    """What a multi-step sample did: its prompt, every request made and its response, in order."""

    prompt: str
    requests: tuple[Request, ...]
    responses: tuple[Response, ...]


@dataclass(frozen=True)
class ScoreContext:
    """What a scorer may use besides the sample and its responses: the run's seed and the
    named model roles (`await ctx.execute("judge", requests)`: cached, counted, logged under
    that role)."""

    sample_id: str
    seed: int = 0
    roles: Mapping[str, Execute] = field(default_factory=dict)

    async def execute(self, role: str, requests: Sequence[Request]) -> list[Response]:
        if role not in self.roles:
            given = ", ".join(sorted(self.roles)) or "none"
            raise ConfigError(f"the scorer called role {role!r}, which this run does not have (roles: {given})")
        return await self.roles[role](requests)


class Task(ABC):
    """Base class for tasks. Subclasses set the class attributes and implement the parts.

    A task is immutable once built: parameters arrive through its factory, and what depends on
    the backend (optional capabilities) comes from `with_capabilities`, which returns a copy.
    """

    name: str = ""
    version: str = "1"
    description: str = ""
    #: capabilities the model under test must have, e.g. {"loglikelihood"}
    requires: frozenset[str] = frozenset()
    #: model roles the scorer calls, each with the capabilities it needs, e.g.
    #: {"judge": frozenset({"generate"})}; the run fails before any model loads without them
    roles: Mapping[str, frozenset[str]] = {}
    #: roles (of `roles`) that the model under test plays when the run gives none (SEAT's
    #: `embedder`): the same loaded model, under the role's own cache namespace
    roles_default_to_model: frozenset[str] = frozenset()
    #: the prompt format, named so results say how they were obtained
    prompt_format: str = ""
    #: the metric shown in leaderboards
    headline_metric: str = "acc"
    default_num_fewshot: int = 0
    #: True when --limit applies per subtask (MMLU subjects), as lm-eval users expect
    limit_per_subtask: bool = False
    #: True for multi-step tasks (multi-turn chat): the runner calls `solve` per sample
    #: instead of batching every sample's requests of a chunk together
    interactive: bool = False
    #: the task's parameter values (set when the task is built by `get_task`)
    parameters: Mapping[str, Any] = {}

    @abstractmethod
    def load(self, source: DataSource) -> TaskData: ...

    @abstractmethod
    def build(self, sample: Sample, shots: Sequence[Sample]) -> Built:
        """The one request hook: a sample's requests and its rendered prompt."""

    def build_requests(self, sample: Sample, shots: Sequence[Sample]) -> tuple[Request, ...]:
        return self.build(sample, shots).requests

    def score(self, sample: Sample, responses: Sequence[Response]) -> Score:
        raise NotImplementedError(f"task {self.name!r} scores only asynchronously (ascore)")

    async def ascore(self, sample: Sample, responses: Sequence[Response], ctx: ScoreContext) -> Score:
        """Async scoring; tasks that run code or call a role (a judge) override this."""
        return self.score(sample, responses)

    async def solve(self, sample: Sample, shots: Sequence[Sample], execute: Execute) -> Solved:
        """Run a sample's requests; multi-step tasks override this (each step may depend on
        earlier responses)."""
        built = self.build(sample, shots)
        return Solved(built.prompt, built.requests, tuple(await execute(built.requests)))

    @abstractmethod
    def aggregate(self, records: Sequence[SampleRecord], seed: int = 0) -> TaskResults: ...

    def with_capabilities(self, capabilities: frozenset[str]) -> Task:
        """The task as it runs on a backend with these capabilities (e.g. first-token
        logprobs for calibration): a copy if anything changes. Must not change `config()`."""
        return self

    def config(self) -> dict[str, Any]:
        """Everything about the task that changes results (hashed into the run's identity)."""
        out: dict[str, Any] = {"name": self.name, "version": self.version, "prompt_format": self.prompt_format}
        if self.parameters:
            out["parameters"] = {k: list(v) if isinstance(v, tuple) else v for k, v in self.parameters.items()}
        return out

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


TaskFactory = Callable[..., Task]


@dataclass(frozen=True)
class TaskEntry:
    """A registered task: its factory and the parameters the factory takes."""

    factory: TaskFactory
    params: tuple[Param, ...] = ()
    #: the family this task is listed under (`evalkit list tasks` groups subtasks), e.g. "mmlu"
    group: str = ""


def register_task(name: str, factory: TaskFactory, params: Sequence[Param] = (), *, group: str = "") -> None:
    registry.tasks.register(name, TaskEntry(factory, tuple(params), group))


def task_entry(name: str) -> TaskEntry:
    """A task's entry; for `task@wrapper(...)` the entry of the task it wraps."""
    entry: Any = registry.tasks.get(parse_task_name(name)[0])
    return entry if isinstance(entry, TaskEntry) else TaskEntry(entry)


def get_task(name: str, given: Mapping[str, Sequence[str]] | None = None, facts: ModelFacts = NO_MODEL) -> Task:
    """Build a task from raw `-T` values (checked, typed, defaults filled in)."""
    entry = task_entry(name)
    values = resolve(parse_task_name(name)[0], entry.params, given or {}, facts)
    task = entry.factory(**values)
    if not isinstance(task, Task):
        raise TypeError(f"task factory for {name!r} returned {type(task).__name__}, not a Task")
    if entry.params:
        task.parameters = MappingProxyType(values)  # part of construction: nothing has seen it yet
    base, calls = parse_task_name(name)
    if calls:
        from evalkit.perturb.wrap import wrap_task  # the wrappers import this module

        task = wrap_task(task, calls, canonical_name(base, calls))
    return task


def run_sync(coro: Any) -> Any:
    """For the rare sync caller (tests, scripts) outside the CLI's event loop."""
    return asyncio.run(coro)
