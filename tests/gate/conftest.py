"""Run logs for the gate tests, made by the real pipeline on real MMLU questions (offline):
a baseline replayed from answer letters (about 70% right) and a candidate that replays the
baseline's own outputs with 10% of its correct answers changed to a wrong letter."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.helpers import evalkit, single_log
from tests.support.gate_replay import degraded_replay

LIMIT = "4"  # per subject: 228 questions


@dataclass(frozen=True)
class GateRuns:
    root: Path
    baseline: Path
    candidate: Path
    changed: list[str]


def run_replay(replay: Path, out: Path, expect: int = 0) -> Path:
    """Run mmlu_gen on the replayed outputs (exit 1 when some samples have no output)."""
    result = evalkit("run", "--model", f"replay:{replay}", "--tasks", "mmlu_gen", "--limit", LIMIT,
                     "--output-dir", str(out), "--no-cache", "--no-progress")
    assert result.returncode == expect, result.stderr
    return single_log(out, "mmlu_gen-*.jsonl")


@pytest.fixture(scope="session")
def gate_runs(tmp_path_factory: pytest.TempPathFactory) -> GateRuns:
    root = tmp_path_factory.mktemp("gate")
    result = evalkit("run", "--model", "mock", "--tasks", "mmlu_gen", "--limit", LIMIT,
                     "--output-dir", str(root / "mock"), "--no-cache", "--no-progress")
    assert result.returncode == 0, result.stderr
    degraded_replay(single_log(root / "mock"), root / "baseline.jsonl", 0.3, seed=1, answer_letters=True)
    baseline = run_replay(root / "baseline.jsonl", root / "baseline")
    changed = degraded_replay(baseline, root / "candidate.jsonl", 0.1, seed=2)
    candidate = run_replay(root / "candidate.jsonl", root / "candidate")
    return GateRuns(root, baseline, candidate, changed)


def gate(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    result = evalkit("gate", *args, env=env)
    return result.returncode, result.stdout, result.stderr


def read_json(path: Path) -> dict:
    return json.loads(path.read_text())
