"""Shared by the robustness tests: run the CLI in-process, read logs, pair records by hand."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from evalkit.cli import main
from tests.helpers import log_records


def run_cli(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    capsys.readouterr()
    code = main(list(args))
    out, err = capsys.readouterr()
    assert code == 0, err
    return out


def run_tasks(capsys: pytest.CaptureFixture[str], out: Path, model: str, tasks: str, *extra: str) -> None:
    run_cli(capsys, "run", "--model", model, "--tasks", tasks, "--output-dir", str(out), "--no-progress", *extra)


def robustness_json(capsys: pytest.CaptureFixture[str], runs: Path) -> dict[str, dict[str, Any]]:
    rows = json.loads(run_cli(capsys, "robustness", str(runs), "--json", "--resamples", "4000"))
    return {row["task"]: row for row in rows}


def samples_of(runs: Path, task: str) -> list[dict[str, Any]]:
    """The sample records of the one run log of `task` (its exact name), read as plain JSON."""
    logs = [p for p in runs.rglob("*.jsonl") if "robustness" not in p.parts
            and log_records(p)[0]["task"]["name"] == task]
    assert len(logs) == 1, logs
    return [r for r in log_records(logs[0]) if r["type"] == "sample"]


def original_option(record: dict[str, Any]) -> int:
    """The original index of the option a record's answer picked (by hand, from the log)."""
    order = (record.get("derivation") or {}).get("order")
    picked = record["score"]["extracted"]
    return int(order[picked]) if order else int(picked)
