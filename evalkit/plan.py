"""The pipeline's data types: what a run was asked to do, and each task's plan.

Kept apart from the runner so that the log builders, stages and the dry-run can use them
without importing the runner (and the runner imports no log code that imports it back).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from evalkit.efficiency import EnergySettings
from evalkit.executors.config import RayOptions
from evalkit.log.io import RunLog
from evalkit.results import TaskResults
from evalkit.task import Task, TaskData
from evalkit.types import Sample

#: the role name of the model under test
MODEL_ROLE = "model"


@dataclass(frozen=True)
class RoleConfig:
    """A named model besides the one under test (`--role judge=SPEC --role-args judge:k=v`)."""

    name: str
    spec: str
    args: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class RunConfig:
    model: str
    tasks: tuple[str, ...]
    model_args: Mapping[str, str] = field(default_factory=dict)
    #: task parameters: task name ("" for every task that takes the key) -> key -> raw values
    task_params: Mapping[str, Mapping[str, tuple[str, ...]]] = field(default_factory=dict)
    roles: Mapping[str, RoleConfig] = field(default_factory=dict)
    limit: int | None = None
    num_fewshot: int | None = None
    seed: int = 0
    output_dir: Path = Path("runs")
    data_dir: Path | None = None
    cache_dir: Path | None = None
    use_cache: bool = True
    overwrite: bool = False
    repair: bool = False
    progress: bool = True
    allow_hub: bool = True
    #: constants of the energy estimate (`--energy KEY=VALUE`)
    energy: EnergySettings = field(default_factory=EnergySettings)
    #: run the model under test on a Ray cluster (`--executor ray`); None: in this process
    ray: RayOptions | None = None


@dataclass(frozen=True)
class TaskPlan:
    task: Task
    data: TaskData
    samples: tuple[Sample, ...]
    num_fewshot: int
    seed: int
    identity: Mapping[str, Any]
    log_path: Path
    existing: RunLog | None
    #: the roles this task's scorer calls (a subset of the run's roles)
    roles: tuple[str, ...] = ()
    #: how automatic choices were made (e.g. "chat": "the model has a chat template")
    notes: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class TaskOutcome:
    task: str
    log_path: Path
    results: TaskResults
    n_samples: int
    n_errors: int
    seconds: float
