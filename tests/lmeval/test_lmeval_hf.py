"""Acceptance on the real model (slow): through `hf:smollm2`, an `lmeval:` task gives lm-eval's
own `hf` model's accuracy and per-item log-likelihoods within 1e-4 and the same filtered
answers of a generate_until task; `--model evalkit` inside lm-eval's CLI gives the same numbers."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

import pytest

pytest.importorskip("lm_eval", reason="the lmeval extra is not installed (pip install 'evalkit[lmeval]')")

from tests.helpers import evalkit, log_records  # noqa: E402
from tests.lmeval.support import write_tasks  # noqa: E402

pytestmark = pytest.mark.slow
OFFLINE = {"HF_DATASETS_OFFLINE": "1", "HF_HUB_OFFLINE": "1"}
TASKS = ("tiny_mmlu_text", "tiny_mmlu_gen")  # multi-token choices; generation with a regex filter


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    from lm_eval import simple_evaluate
    from lm_eval.tasks import TaskManager

    from evalkit.backends.embedded import hf_dir
    from tests.conftest import SHARED_DATA

    root = tmp_path_factory.mktemp("lmeval_hf")
    tasks = write_tasks(root / "tasks", SHARED_DATA, per_subject=2)
    os.environ.update(OFFLINE)
    reference = simple_evaluate(model="hf", model_args=f"pretrained={hf_dir('smollm2')},dtype=float32",
                                tasks=list(TASKS), batch_size=8, device="cpu", log_samples=True,
                                task_manager=TaskManager(include_path=str(tasks)))
    assert reference is not None
    return {"root": root, "tasks": tasks, "reference": reference}


def _lls(resps: list[Any]) -> list[float]:
    return [float(r[0][0]) for r in resps]


def test_lmeval_task_on_hf_backend_equals_lmevals_hf_model(setup: dict[str, Any]) -> None:
    out = setup["root"] / "evalkit"
    ran = evalkit("run", "--model", "hf:smollm2", "--model-args", "dtype=float32",
                  "--tasks", ",".join(f"lmeval:{t}" for t in TASKS), "-T", f"include_path={setup['tasks']}",
                  "--output-dir", str(out), "--no-progress", "--no-cache", env=OFFLINE)
    assert ran.returncode == 0, ran.stderr[-3000:]
    reference = setup["reference"]
    for log in sorted(out.rglob("*.jsonl")):
        records = log_records(log)
        results = records[-1]["results"]["details"]["lmeval"]["results"]
        for task, values in results.items():
            for key, value in values.items():
                if "," in key and "_stderr" not in key:
                    assert value == pytest.approx(reference["results"][task][key], abs=1e-4), (task, key)
        for record in (r for r in records if r["type"] == "sample"):
            theirs = next(s for s in reference["samples"][record["subtask"]]
                          if s["doc_id"] == record["metadata"]["doc_id"])
            if record["requests"][0]["kind"] == "loglikelihood":
                ours = [resp["logprob"] for resp in record["responses"]]
                assert ours == pytest.approx(_lls(theirs["resps"]), abs=1e-4), record["id"]
            else:
                assert record["score"]["extracted"] == theirs["filtered_resps"], record["id"]


def test_evalkit_model_inside_lmeval_cli_equals_lmevals_hf_model(setup: dict[str, Any]) -> None:
    out = setup["root"] / "wrapper"
    ran = subprocess.run([sys.executable, "-m", "evalkit.lmeval", "run", "--model", "evalkit",
                          "--model_args", "spec=hf:smollm2,dtype=float32,cache_dir=none", "--tasks", TASKS[0],
                          "--include_path", str(setup["tasks"]), "--output_path", str(out), "--log_samples"],
                         capture_output=True, text=True, timeout=900, env={**os.environ, **OFFLINE})
    assert ran.returncode == 0, ran.stderr[-3000:]
    results = json.loads(sorted(out.rglob("results_*.json"))[-1].read_text())["results"]
    reference = setup["reference"]
    for task, values in results.items():
        for key, value in values.items():
            if "," in key and "_stderr" not in key:
                assert value == pytest.approx(reference["results"][task][key], abs=1e-4), (task, key)
    files = sorted(out.rglob("samples_*.jsonl"))
    assert len(files) == 2, files  # one per subtask of the group
    for path in files:
        task = path.name.removeprefix("samples_").rsplit("_", 1)[0]
        theirs = {s["doc_id"]: _lls(s["resps"]) for s in reference["samples"][task]}
        for line in path.read_text().splitlines():
            row = json.loads(line)
            assert _lls(row["resps"]) == pytest.approx(theirs[row["doc_id"]], abs=1e-4)
