"""Acceptance 1 on real models: SmolLM2-135M and Gemma 3 270M on an MMLU and a C-Eval slice;
`evalkit leaderboard --format json` must match a recomputation from the sample records."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import SHARED_DATA
from tests.helpers import evalkit
from tests.reports.test_reports import recompute, win_rates

MODELS = ("hf:smollm2", "hf:gemma3-270m")
TASKS = "mmlu_high_school_psychology,ceval_accountant"


@pytest.mark.slow
def test_leaderboard_of_real_models_matches_recomputation(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    for model in MODELS:
        done = evalkit("run", "--model", model, "--tasks", TASKS, "--limit", "8", "--data-dir", str(SHARED_DATA),
                       "--output-dir", str(runs), "--no-progress", timeout=900)
        assert done.returncode == 0, done.stderr[-2000:]
    ref = recompute(runs)
    assert {m for m, _ in ref} == set(MODELS) and len(ref) == 4
    for method in ("mean", "win_rate"):
        done = evalkit("leaderboard", str(runs), "--format", "json", "--method", method)
        assert done.returncode == 0, done.stderr
        board = json.loads(done.stdout)
        assert {row["model"] for row in board["models"]} == set(MODELS)
        for row in board["models"]:
            for task, cell in row["tasks"].items():
                expected = ref[(row["model"], task)]
                assert cell["source"] == "summary"
                assert cell["value"] == pytest.approx(expected["acc"], abs=1e-12)
                assert cell["n"] == expected["n"] == 8
                assert cell["ci"] == pytest.approx(list(expected["ci"]), abs=1e-9)
            tasks = sorted(row["tasks"])
            expected_agg = (np.mean([ref[(row["model"], t)]["acc"] for t in tasks]) if method == "mean"
                            else win_rates(ref)[row["model"]])
            assert row["aggregate"]["value"] == pytest.approx(expected_agg, abs=1e-12)
        upper, lower = board["models"]
        diffs = []
        for t in sorted(upper["tasks"]):
            a, b = ref[(upper["model"], t)]["scores"], ref[(lower["model"], t)]["scores"]
            diffs.append(np.mean([a[s] - b[s] for s in set(a) & set(b)]))
        assert upper["vs_next"]["difference"] == pytest.approx(float(np.mean(diffs)), abs=1e-12)
        assert math.isfinite(upper["vs_next"]["ci"][0]) and upper["vs_next"]["n_shared"] == 16
