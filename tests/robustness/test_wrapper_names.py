"""`task@wrapper(k=v)` names: parsing, and bad ones as one-line errors (exit 2) before any
model loads; a perturbed log re-scores and resumes like any other."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest

from evalkit import registry, runner
from evalkit.cli import main
from evalkit.errors import ConfigError
from evalkit.log.records import SampleRecord
from evalkit.perturb.spec import parse_task_name, split_task_list
from evalkit.task import Built, DataSource, Task, TaskData, TaskEntry, TaskResults, get_task
from evalkit.types import Sample
from tests.helpers import log_records


def test_task_lists_split_outside_parentheses() -> None:
    assert split_task_list("mmlu, mmlu@typos(rate=0.1,seed=1),mmlu@option_shuffle") == (
        "mmlu", "mmlu@typos(rate=0.1,seed=1)", "mmlu@option_shuffle")
    base, calls = parse_task_name("mmlu@typos(rate=0.1, seed=1)@circular")
    assert base == "mmlu" and [c.label() for c in calls] == ["typos(rate=0.1,seed=1)", "circular"]


def test_wrapped_task_is_named_and_identified_by_its_wrappers() -> None:
    task = get_task("mmlu@typos(rate=0.1)", {"subjects": ["anatomy"]})
    assert task.name == "mmlu@typos(rate=0.1)"
    config = task.config()
    assert config["wrappers"] == [{"perturbation": "typos", "kind": "invariance",
                                   "params": {"seed": 0, "rate": 0.1, "choices": False}}]
    assert config["parameters"] == {"subjects": ["anatomy"]}
    assert get_task("mmlu@typos(rate=0.2)").config() != get_task("mmlu@typos(rate=0.1)").config()


class _Numbers(Task):
    """A task whose samples have no text and no options."""

    name = "robust_numbers"

    def load(self, source: DataSource) -> TaskData:
        return TaskData(tuple(Sample(id=str(i), input="", target=i) for i in range(3)))

    def build(self, sample: Sample, shots: Sequence[Sample]) -> Built:
        return Built("", ())

    def aggregate(self, records: Sequence[SampleRecord], seed: int = 0) -> TaskResults:
        return TaskResults({})


registry.tasks.register("robust_numbers", TaskEntry(_Numbers), replace=True)


@pytest.mark.parametrize(("tasks", "expected"), [
    ("mmlu@typoz", "unknown perturbation 'typoz'; did you mean 'typos'?"),
    ("mmlu@typos(rat=0.1)", "task 'mmlu@typos(rat=0.1)': @typos has no parameter 'rat' (it takes: choices, rate, seed"),
    ("mmlu@typos(rate=2)", "task 'mmlu@typos(rate=2)': rate='2' must be at most 1"),
    ("mmlu@typos(rate=lots)", "task 'mmlu@typos(rate=lots)': rate='lots' is not a number"),
    ("mmlu@case(mode=sideways)", ": mode='sideways' is not a known value; expected one of upper, lower"),
    ("mmlu@typos(rate=0.1", "--tasks 'mmlu@typos(rate=0.1': unclosed '('"),
    ("mmlu@typos(rate)", "@typos: 'rate' is not key=value"),
    ("@typos", "nothing before '@'"),
    ("mmlu@format(name=odd)", ": name='odd' is not a known value"),
    ("humaneval@format", "@format needs a log-likelihood multiple-choice task"),
    ("robust_numbers@typos", "perturbation 'typos' needs samples with input text, and task 'robust_numbers' has none"),
    ("robust_numbers@option_shuffle", "needs samples with multiple-choice options"),
])
def test_bad_wrappers_fail_in_one_line_before_any_model_loads(
        capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
        tasks: str, expected: str) -> None:
    def no_model(*args: object) -> None:
        raise AssertionError("a model was created")

    monkeypatch.setattr(runner, "create_backend", no_model)
    code = main(["run", "--model", "smollm2", "--tasks", tasks, "--output-dir", str(tmp_path), "--no-progress"])
    err = capsys.readouterr().err.strip()
    assert code == 2, err
    assert len(err.splitlines()) == 1 and err.startswith("evalkit: error: "), err
    assert expected in err
    assert not list(tmp_path.rglob("*.jsonl"))


def test_unknown_perturbation_in_get_task() -> None:
    with pytest.raises(ConfigError, match="unknown perturbation"):
        get_task("mmlu@nope")


def test_perturbed_log_rescores_and_resumes(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    args = ["run", "--model", "mock", "--tasks", "mmlu@circular", "-T", "subjects=anatomy", "--limit", "3",
            "--output-dir", str(tmp_path), "--no-progress"]
    assert main(args) == 0
    (log,) = tmp_path.rglob("*.jsonl")
    before = [r for r in log_records(log) if r["type"] == "sample"]
    assert len(before) == 12  # --limit counts questions: 3 questions, 4 rotations each
    assert main(["score", str(log)]) == 0
    after = [r for r in log_records(log) if r["type"] == "sample"]
    assert [r["score"] for r in after] == [r["score"] for r in before]
    assert main(args) == 0  # a rerun resumes: nothing left to do
    assert [r for r in log_records(log) if r["type"] == "sample"] == after
    capsys.readouterr()
