"""Re-score run logs from their stored responses: never calls a model.

Each log is rewritten atomically (temp file + rename) with fresh per-sample scores and a
new summary, so a crash mid-way leaves the old log intact.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from evalkit import records, registry
from evalkit.engine import EngineStats
from evalkit.errors import RunLogError
from evalkit.runlog import LogWriter, RunLog, find_logs, read_log
from evalkit.runner import score_sample
from evalkit.task import Task, TaskResults, get_task


def rescore_path(path: Path) -> Iterator[tuple[Path, TaskResults]]:
    for log_path in find_logs(path):
        yield log_path, rescore_log(read_log(log_path))


def rescore_log(log: RunLog) -> TaskResults:
    task = get_task(log.header["task"]["name"])
    if task.config() != log.header["task"]:
        raise RunLogError(f"{log.path}: task {task.name!r} has changed since this log was written "
                          f"(log: {log.header['task']}, now: {task.config()})")
    rescored = asyncio.run(_rescore_records(task, list(log.samples.values())))
    seed = int(log.header.get("config", {}).get("seed", 0))
    results = task.aggregate([records.scored_record(r) for r in rescored], seed=seed)
    summary = records.summary_record(results, rescored, 0.0, 0, EngineStats())
    summary["rescored"] = True
    _atomic_rewrite(log.path, [log.header, *rescored, summary])
    registry.notify_log_finished(log.path)
    return results


async def _rescore_records(task: Task, sample_records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for rec in sample_records:
        responses = records.responses_from_record(rec)
        if any(r.error for r in responses) or not responses:
            out.append(rec)  # nothing new to score: the request failed
            continue
        score, error = await score_sample(task, records.sample_from_record(rec), responses)
        out.append({**rec, "score": score.to_dict() if score else None, "error": error})
    return out


def _atomic_rewrite(path: Path, all_records: list[dict[str, Any]]) -> None:
    tmp = path.with_name(path.name + ".rescore.tmp")
    with LogWriter(tmp) as writer:
        writer.append_many(all_records)
    os.replace(tmp, path)

