"""Robustness on the real SmolLM2 (`hf:smollm2`, log-likelihood MMLU), tiny limits: the
report's paired numbers against the logs, circular accuracy ≤ plain accuracy with position
frequencies, a gender swap on a subject with gendered text (prompt formats: mock tests). Fuller
numbers are in the issue 20 report."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from evalkit.log.io import read_log
from tests.robustness.support import robustness_json, run_tasks, samples_of

pytestmark = pytest.mark.slow

# rot0 and unchanged swaps repeat the clean prompts: answered from the run's cache
TASKS = "mmlu,mmlu@typos(rate=0.1),mmlu@option_shuffle,mmlu@circular,mmlu@gender_swap"


@pytest.fixture(scope="module")
def real_runs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("real")


def test_smollm2_robustness(capsys: pytest.CaptureFixture[str], real_runs: Path) -> None:
    run_tasks(capsys, real_runs, "hf:smollm2", TASKS, "--limit", "3", "-T", "subjects=human_sexuality|anatomy",
              "--offline")
    rows = robustness_json(capsys, real_runs)
    clean = {r["id"]: r for r in samples_of(real_runs, "mmlu")}
    for task in ("mmlu@typos(rate=0.1)", "mmlu@option_shuffle"):
        row = rows[task]
        perturbed = samples_of(real_runs, task)
        deltas = [p["score"]["value"] - clean[p["source_id"]]["score"]["value"] for p in perturbed]
        assert row["delta"]["n"] == 6 and row["delta"]["value"] == pytest.approx(np.mean(deltas))
        assert row["delta"]["ci"][0] <= row["delta"]["value"] <= row["delta"]["ci"][1]
        assert 0 <= row["mcnemar_p"]["value"] <= 1 and 0 <= row["invariance"]["value"] <= 1
    (circular_log,) = (real_runs / "hf_smollm2").glob("mmlu@circular-*.jsonl")
    overall = read_log(circular_log).summary.results.overall  # type: ignore[union-attr]
    assert overall["circular_acc"].value <= overall["acc_rot0"].value
    assert overall["acc_rot0"].value == pytest.approx(np.mean([r["score"]["value"] for r in clean.values()]))
    assert sum(overall[f"pick_{x}"].value for x in "ABCD") == pytest.approx(1)
    swap = rows["mmlu@gender_swap"]
    changed = [r for r in samples_of(real_runs, "mmlu@gender_swap") if r["derivation"]["changed"]]
    assert swap["changed_n"]["value"] == len(changed)
    assert all(r["source_id"] in clean for r in changed)
