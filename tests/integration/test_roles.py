"""Named model roles: a scorer that calls a `judge` (mock backend) through its own engine and cache."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest

from evalkit.cli import main
from evalkit.families.open_ended import OpenEndedTask
from evalkit.log.records import SampleRecord
from evalkit.results import TaskResults
from evalkit.task import Built, DataSource, ScoreContext, TaskData, register_task
from evalkit.types import (
    GENERATE,
    GenerateRequest,
    GenerationParams,
    MetricValue,
    Response,
    Sample,
    Score,
)
from tests.helpers import log_records

QUESTIONS = ("What is 2+2?", "Name a colour.", "Say hello.")


class JudgedTask(OpenEndedTask):
    """Each answer is shown to the judge, which replies; the score is 1 when it says 'A'."""

    name = "judged_test"
    description = "test task whose scorer calls a judge role"
    prompt_format = "plain question"
    roles = {"judge": frozenset({GENERATE})}
    headline_metric = "judged"

    def load(self, source: DataSource) -> TaskData:
        return TaskData(tuple(Sample(f"q{i}", q) for i, q in enumerate(QUESTIONS)), {}, "invented")

    def build(self, sample: Sample, shots: Sequence[Sample]) -> Built:
        return Built(str(sample.input), (GenerateRequest(str(sample.input), GenerationParams(max_tokens=8)),))

    async def ascore(self, sample: Sample, responses: Sequence[Response], ctx: ScoreContext) -> Score:
        # the very request the model answered: only the judge's own cache namespace keeps the
        # two apart (the mock judge has the model's fingerprint)
        (verdict,) = await ctx.execute("judge", [GenerateRequest(str(sample.input), GenerationParams(max_tokens=8))])
        return Score(value=float("A" in (verdict.text or "")), extracted=verdict.text)

    def aggregate(self, records: Sequence[SampleRecord], seed: int = 0) -> TaskResults:
        scored = [r for r in records if r.score]
        value = sum(r.score.value for r in scored if r.score) / max(1, len(scored))
        return TaskResults({"judged": MetricValue("judged", value, len(scored))})


register_task("judged_test", JudgedTask)


def _run(tmp_path: Path, *extra: str, judge: str = "mock") -> int:
    return main(["run", "--model", f"mock:calls_file={tmp_path / 'model_calls'}", "--tasks", "judged_test",
                 "--role", f"judge={judge}", "--output-dir", str(tmp_path / "runs"), "--no-progress",
                 "--cache-dir", str(tmp_path / "cache"), *extra])


def _calls(path: Path) -> int:
    return len(path.read_text().splitlines()) if path.exists() else 0


def test_judge_role_runs_with_its_own_cache_and_fingerprint(tmp_path: Path) -> None:
    judge_calls = tmp_path / "judge_calls"
    judge = f"mock:calls_file={judge_calls}"
    assert _run(tmp_path, judge=judge) == 0
    assert _calls(tmp_path / "model_calls") == 3
    assert _calls(judge_calls) == 3  # not served from the model's cache entries
    (log,) = sorted((tmp_path / "runs").rglob("judged_test-*.jsonl"))
    records = log_records(log)
    header, summary = records[0], records[-1]
    assert header["roles"]["judge"]["spec"] == judge
    assert header["roles"]["judge"]["fingerprint"] == {"backend": "mock", "seed": 0, "answers": []}
    assert summary["roles"]["judge"]["requests"] == 3 and summary["roles"]["judge"]["sent"] == 3
    assert all(r["score"]["extracted"] for r in records if r["type"] == "sample")
    # a rerun that redoes every sample: the model and the judge answer from the cache
    assert _run(tmp_path, "--overwrite", judge=judge) == 0
    assert _calls(tmp_path / "model_calls") == 3 and _calls(judge_calls) == 3
    summary = log_records(log)[-1]
    assert summary["roles"]["judge"]["cache_hits"] == 3


def test_changing_the_judge_starts_a_new_log(tmp_path: Path) -> None:
    assert _run(tmp_path, judge="mock") == 0
    assert _run(tmp_path, judge="mock:seed=7") == 0
    logs = sorted((tmp_path / "runs").rglob("judged_test-*.jsonl"))
    assert len(logs) == 2
    assert {log_records(p)[0]["roles"]["judge"]["spec"] for p in logs} == {"mock", "mock:seed=7"}


def test_judge_without_the_needed_capability_fails_before_any_model_loads(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # the model spec names a folder that does not exist: loading it would fail with another error
    code = main(["run", "--model", f"hf:{tmp_path / 'missing-model'}", "--tasks", "judged_test",
                 "--role", "judge=mock:capabilities=loglikelihood|embed", "--output-dir", str(tmp_path / "runs")])
    err = capsys.readouterr().err
    assert code == 2
    assert "needs generate, which role 'judge' model 'mock:capabilities=loglikelihood|embed' does not support" in err
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize(("args", "words"), [
    ((), "task 'judged_test' needs a 'judge' model: give it with --role judge=SPEC"),
    (("--role", "judge"), "expected NAME=SPEC"),
    (("--role", "judge=nosuch:x"), "--role judge: --model 'nosuch:x'"),
    (("--role", "judge=mock", "--role", "judge=mock"), "given twice"),
    (("--role", "judge=mock", "--role-args", "grader:seed=1"), "for a --role NAME (roles: judge)"),
])
def test_role_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str], args: tuple[str, ...], words: str) -> None:
    code = main(["run", "--model", "mock", "--tasks", "judged_test", "--output-dir", str(tmp_path), *args])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and words in err, err


def test_role_args_reach_the_role_backend(tmp_path: Path) -> None:
    assert main(["run", "--model", "mock", "--tasks", "judged_test", "--role", "judge=mock",
                 "--role-args", "judge:seed=3", "--output-dir", str(tmp_path / "runs"), "--no-progress",
                 "--cache-dir", str(tmp_path / "cache")]) == 0
    header = log_records(next((tmp_path / "runs").rglob("judged_test-*.jsonl")))[0]
    assert header["roles"]["judge"]["options"] == {"seed": "3"}
    assert header["roles"]["judge"]["fingerprint"]["seed"] == 3
