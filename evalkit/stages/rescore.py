"""`evalkit score`: re-score run logs from their stored responses, as a stage (no model calls).

The stage writes the re-scored log next to the original (`<log>.rescore.tmp`: resumable if
killed) and then replaces the original in one rename, so a crash leaves the old log intact.
The task is rebuilt from the log's own parameters and must still have the log's config.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from evalkit import registry
from evalkit.engine import EngineStats
from evalkit.errors import RunLogError
from evalkit.log.build import summary_record
from evalkit.log.io import RunLog, find_logs, read_log
from evalkit.log.records import SCHEMA_VERSION, HeaderRecord, SampleRecord, SummaryRecord
from evalkit.params import ModelFacts
from evalkit.results import TaskResults
from evalkit.stages.base import Stage, StageInput, StageOptions, run_stage
from evalkit.task import ScoreContext, Task, get_task


class Rescore(Stage):
    """One input log; each sample's stored responses scored again by the task."""

    name = "rescore"

    def __init__(self, task: Task, log: RunLog) -> None:
        self.task = task
        self.log = log
        self.headline_metric = task.headline_metric

    def config(self) -> dict[str, Any]:
        return {**super().config(), "task": self.task.config()}

    async def process(self, key: str, joined: Mapping[str, tuple[SampleRecord, ...]],
                      ctx: ScoreContext) -> SampleRecord:
        from evalkit.runner import score_sample

        (record,) = joined["log"]
        if not record.responses or any(r.error for r in record.responses):
            return record  # nothing new to score: the request failed
        score, error = await score_sample(self.task, record.to_sample(), record.responses, ctx)
        return dataclasses.replace(record, score=score, error=error)

    def aggregate(self, records: Sequence[SampleRecord], seed: int) -> TaskResults:
        return self.task.aggregate(records, seed=seed)

    def header(self, inputs: Sequence[StageInput], identity: str, roles: Mapping[str, Any]) -> HeaderRecord:
        # the output is the same run's log: its header, in the current schema
        return dataclasses.replace(self.log.header, schema_version=SCHEMA_VERSION,
                                   extra={**self.log.header.extra, "rescore_identity": identity})

    def summary(self, records: Sequence[SampleRecord], seconds: float, processed: int,
                engines: Mapping[str, Any], seed: int, energy: Mapping[str, Any] | None = None) -> SummaryRecord:
        # rescoring sends nothing: the run's own efficiency panel still describes its computation
        kept = self.log.summary.efficiency if self.log.summary else {}
        return summary_record(self.aggregate(records, seed), records, 0.0, 0, EngineStats(), rescored=True,
                              efficiency=kept)


def rescore_path(path: Path) -> Iterator[tuple[Path, TaskResults]]:
    for log_path in find_logs(path):
        log = read_log(log_path)
        yield log_path, rescore_stage_log(log) if log.header.kind == "stage" else rescore_log(log)


def rescore_stage_log(log: RunLog) -> TaskResults:
    """A stage log is re-scored by the plugin whose stage wrote it (`registry.rescorers`)."""
    registry.load_plugins()
    name = log.header.task_name
    if name not in registry.rescorers:
        raise RunLogError(f"{log.path}: a {name!r} stage log, which no installed plugin re-scores")
    rescorer: Any = registry.rescorers.get(name)
    results: TaskResults = rescorer(log)
    return results


def rescore_log(log: RunLog) -> TaskResults:
    task = task_of(log)
    seed = int(log.header.config.get("seed", 0))
    tmp = log.path.with_name(log.path.name + ".rescore.tmp")
    stage = Rescore(task, log)
    tmp.unlink(missing_ok=True)  # left by a killed rescore; re-scoring is cheap, so start clean
    summary = asyncio.run(run_stage(stage, [StageInput("log", log)], tmp, StageOptions(seed=seed, progress=False)))
    os.replace(tmp, log.path)
    return summary.results


def task_of(log: RunLog) -> Task:
    """The log's task, rebuilt from its parameters; it must still have the log's config."""
    logged = dict(log.header.task)
    params = logged.get("parameters") or {}
    raw = {k: [_raw(v)] if not isinstance(v, list) else ["|".join(map(_raw, v))] for k, v in params.items()}
    task = get_task(str(logged.get("name")), raw, ModelFacts())
    now = task.config()
    if "parameters" not in logged:  # a schema-1 log: its task had no parameters, defaults applied
        now.pop("parameters", None)
    if now != logged:
        raise RunLogError(f"{log.path}: task {task.name!r} has changed since this log was written "
                          f"(log: {logged}, now: {now})")
    return task


def _raw(value: Any) -> str:
    if value is None:
        return "auto"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)

