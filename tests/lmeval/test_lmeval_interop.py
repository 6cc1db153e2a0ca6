"""lm-eval interoperability on the mock backend (fast): `lmeval:` tasks keep lm-eval's groups
and numbers, resume after kill -9 without a repeated model call, fail on bad names and
unreachable datasets in one line; `show --format lmeval` and `import-lmeval` speak lm-eval's
output layout (checked with lm-eval's own `make_table` on lm-eval's own results)."""

from __future__ import annotations

import collections
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("lm_eval", reason="the lmeval extra is not installed (pip install 'evalkit[lmeval]')")

from evalkit.backends.mock import request_digest  # noqa: E402
from evalkit.log.records import requests_from_json  # noqa: E402
from tests.helpers import evalkit, kill_evalkit_when, log_records, single_log  # noqa: E402
from tests.lmeval.support import SUBJECTS, write_tasks  # noqa: E402

OFFLINE = {"HF_DATASETS_OFFLINE": "1", "HF_HUB_OFFLINE": "1"}


@pytest.fixture(scope="module")
def task_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tests.conftest import SHARED_DATA

    return write_tasks(tmp_path_factory.mktemp("lmeval_tasks"), SHARED_DATA, per_subject=8)


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return evalkit(*args, env=OFFLINE)


def lmeval_cli(*args: str) -> subprocess.CompletedProcess[str]:
    """lm-eval's own CLI through the wrapper that registers `--model evalkit`."""
    return subprocess.run([sys.executable, "-m", "evalkit.lmeval", *args], capture_output=True, text=True,
                          timeout=600, env={**os.environ, **OFFLINE})


def newest_results(folder: Path) -> dict[str, Any]:
    return json.loads(sorted(folder.rglob("results_*.json"))[-1].read_text())  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def runs(task_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The same group run both ways on the same (deterministic) mock model: by evalkit as
    `lmeval:tiny_mmlu`, and by lm-eval's own evaluator with `--model evalkit`."""
    root = tmp_path_factory.mktemp("runs")
    ours = run_cli("run", "--model", "mock", "--tasks", "lmeval:tiny_mmlu", "-T", f"include_path={task_dir}",
                   "--output-dir", str(root / "evalkit"), "--no-progress", "--no-cache")
    assert ours.returncode == 0, ours.stderr
    theirs = lmeval_cli("run", "--model", "evalkit", "--model_args", "spec=mock,cache_dir=none", "--tasks", "tiny_mmlu",
                        "--include_path", str(task_dir), "--output_path", str(root / "lmeval"), "--log_samples")
    assert theirs.returncode == 0, theirs.stderr[-3000:]
    return {"evalkit": root / "evalkit", "lmeval": root / "lmeval"}


def test_a_group_keeps_its_subtasks_and_lmevals_numbers(runs: dict[str, Path]) -> None:
    log = single_log(runs["evalkit"])
    summary = log_records(log)[-1]["results"]
    reference = newest_results(runs["lmeval"])["results"]
    assert sorted(summary["subtasks"]) == [f"tiny_mmlu_{s}" for s in SUBJECTS]
    for subject in SUBJECTS:
        leaf = f"tiny_mmlu_{subject}"
        acc = summary["subtasks"][leaf]["acc"]
        assert acc["value"] == pytest.approx(reference[leaf]["acc,none"], abs=1e-12)
        assert acc["n"] == 8 and acc["ci_method"] == "wilson" and acc["ci"][0] <= acc["value"] <= acc["ci"][1]
    overall = summary["overall"]["acc"]
    assert overall["value"] == pytest.approx(reference["tiny_mmlu"]["acc,none"], abs=1e-12)
    assert overall["n"] == 16


def test_show_format_lmeval_renders_like_lmevals_own_results(runs: dict[str, Path], tmp_path: Path) -> None:
    from lm_eval.utils import make_table

    shown = run_cli("show", str(runs["evalkit"]), "--format", "lmeval", "-o", str(tmp_path))
    assert shown.returncode == 0, shown.stderr
    ours, theirs = newest_results(tmp_path), newest_results(runs["lmeval"])
    assert make_table(ours) == make_table(theirs)
    assert make_table(ours, "groups") == make_table(theirs, "groups")
    samples = sorted(tmp_path.rglob("samples_tiny_mmlu_anatomy_*.jsonl"))
    reference = sorted(runs["lmeval"].rglob("samples_tiny_mmlu_anatomy_*.jsonl"))
    rows = [json.loads(line) for line in samples[0].read_text().splitlines()]
    want = [json.loads(line) for line in reference[-1].read_text().splitlines()]
    for key in ("doc_id", "doc", "target", "filtered_resps", "filter", "metrics", "acc", "doc_hash", "target_hash"):
        assert [r[key] for r in rows] == [w[key] for w in want], key
    assert [[resp[0][0] for resp in r["resps"]] for r in rows] == [[resp[0][0] for resp in w["resps"]] for w in want]


def test_import_lmeval_round_trips_the_aggregates(runs: dict[str, Path], tmp_path: Path) -> None:
    from lm_eval.utils import make_table

    imported = run_cli("import-lmeval", str(runs["lmeval"]), "--output-dir", str(tmp_path / "logs"))
    assert imported.returncode == 0, imported.stderr
    log = single_log(tmp_path / "logs")
    reference = newest_results(runs["lmeval"])
    summary = log_records(log)[-1]["results"]
    assert summary["overall"]["acc"]["value"] == reference["results"]["tiny_mmlu"]["acc,none"]
    assert summary["overall"]["acc"]["n"] == 16 and summary["overall"]["acc"]["ci_method"] == "wilson"
    for subject in SUBJECTS:
        assert summary["subtasks"][f"tiny_mmlu_{subject}"]["acc"]["value"] == \
            reference["results"][f"tiny_mmlu_{subject}"]["acc,none"]
    shown = run_cli("show", str(log), "--format", "lmeval", "-o", str(tmp_path / "back"))
    assert shown.returncode == 0, shown.stderr
    back = newest_results(tmp_path / "back")
    assert back["results"] == reference["results"] and make_table(back) == make_table(reference)


def test_native_evalkit_run_in_lmevals_layout(tmp_path: Path) -> None:
    from lm_eval.utils import make_table

    out = tmp_path / "runs"
    ran = run_cli("run", "--model", "mock", "--tasks", "mmlu_anatomy", "--limit", "6", "--output-dir", str(out),
                  "--no-progress", "--no-cache")
    assert ran.returncode == 0, ran.stderr
    shown = run_cli("show", str(out), "--format", "lmeval", "-o", str(tmp_path / "lm"))
    assert shown.returncode == 0, shown.stderr
    results = newest_results(tmp_path / "lm")
    acc = log_records(single_log(out))[-1]["results"]["overall"]["acc"]["value"]
    assert results["results"]["mmlu_anatomy"]["acc,none"] == acc
    p = acc  # lm-eval's stderr of a mean of 0/1 items: the sample std (ddof=1) over sqrt(n)
    assert results["results"]["mmlu_anatomy"]["acc_stderr,none"] == pytest.approx((p * (1 - p) / 5) ** 0.5)
    assert "mmlu_anatomy" in make_table(results)


def test_unknown_task_is_one_line_with_suggestions(task_dir: Path) -> None:
    result = run_cli("run", "--model", "mock", "--tasks", "lmeval:tiny_mmlu_anatomi", "-T",
                     f"include_path={task_dir}", "--no-progress")
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert "unknown lm-eval task 'tiny_mmlu_anatomi'" in result.stderr and "tiny_mmlu_anatomy" in result.stderr


def test_unreachable_dataset_says_which_and_how_to_provide_it(tmp_path: Path) -> None:
    (tmp_path / "hub.yaml").write_text(
        "task: needs_the_hub\ndataset_path: nobody/no_such_dataset_offline\ntest_split: test\n"
        "output_type: multiple_choice\ndoc_to_text: '{{q}}'\ndoc_to_choice: ['a', 'b']\ndoc_to_target: 0\n"
        "metric_list:\n  - metric: acc\n", encoding="utf-8")
    result = run_cli("run", "--model", "mock", "--tasks", "lmeval:needs_the_hub", "-T", f"include_path={tmp_path}",
                     "--no-progress", "--output-dir", str(tmp_path / "runs"))
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert "nobody/no_such_dataset_offline" in result.stderr
    assert "dataset_path: json" in result.stderr and "include_path" in result.stderr
    assert not (tmp_path / "runs").exists() or not list((tmp_path / "runs").rglob("*.jsonl"))


def test_kill_9_mid_run_resumes_without_repeating_a_model_call(task_dir: Path, tmp_path: Path) -> None:
    from tests.conftest import SHARED_DATA

    tasks = write_tasks(tmp_path / "tasks", SHARED_DATA, per_subject=60)
    out, calls = tmp_path / "runs", tmp_path / "calls.txt"
    args = ["run", "--model", f"mock:delay=0.05,chunk=4,calls_file={calls}", "--tasks", "lmeval:tiny_mmlu",
            "-T", f"include_path={tasks}", "--output-dir", str(out), "--no-progress"]
    env = {**os.environ, **OFFLINE}
    kill_evalkit_when(args, lambda: len(_finished(out)) >= 20, env)
    before = _finished(out)
    assert 20 <= len(before) < 120, "the kill must land mid-run"

    resumed = subprocess.run([sys.executable, "-m", "evalkit.cli", *args], env=env, capture_output=True, text=True,
                             timeout=600)
    assert resumed.returncode == 0, resumed.stderr
    records = log_records(single_log(out))
    ids = collections.Counter(r["id"] for r in records if r["type"] == "sample")
    assert len(ids) == 120 and set(ids.values()) == {1}, "every sample exactly once"
    answered = collections.Counter(calls.read_text().splitlines())
    for sample in before:
        for request in requests_from_json(sample):
            assert answered[request_digest(request)] == 1, f"{sample['id']} was sent again"


def _finished(out: Path) -> list[dict[str, Any]]:
    logs = list(out.rglob("*.jsonl"))
    if not logs:
        return []
    lines = logs[0].read_bytes().split(b"\n")[:-1]
    return [r for r in map(json.loads, lines) if r["type"] == "sample"]
