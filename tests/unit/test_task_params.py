"""Task parameters (-T): typed, checked before any model loads, in the log header and identity."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from evalkit.cli import main
from evalkit.errors import ConfigError
from evalkit.params import Param, split_assignments
from evalkit.task import get_task
from tests.conftest import SHARED_DATA
from tests.helpers import log_records, mini_mmlu

REPO = Path(__file__).resolve().parents[2]


def _run(tmp_path: Path, *args: str) -> int:
    return main(["run", "--model", "mock", "--output-dir", str(tmp_path / "runs"), "--no-progress",
                 "--offline", *args])


def _headers(tmp_path: Path, pattern: str) -> list[dict]:
    return [log_records(p)[0] for p in sorted((tmp_path / "runs").rglob(pattern))]


def test_humaneval_parameters_reach_header_and_identity(tmp_path: Path) -> None:
    assert _run(tmp_path, "--tasks", "humaneval", "-T", "n=3", "-T", "temperature=0.7", "--limit", "5") == 0
    (header,) = _headers(tmp_path, "humaneval-*.jsonl")
    params = header["task"]["parameters"]
    assert params["n"] == 3 and params["temperature"] == 0.7
    assert header["task"]["params"]["temperature"] == 0.7 and header["task"]["n"] == 3
    samples = [r for r in log_records(next((tmp_path / "runs").rglob("humaneval-*.jsonl"))) if r["type"] == "sample"]
    assert len(samples) == 5 and all(len(s["requests"]) == 3 for s in samples)
    # the defaults are another run: another identity, another log
    assert _run(tmp_path, "--tasks", "humaneval", "--limit", "5") == 0
    identities = {h["identity"] for h in _headers(tmp_path, "humaneval-*.jsonl")}
    assert len(identities) == 2


def test_no_task_reads_settings_from_the_environment() -> None:
    for path in (REPO / "tasks").rglob("*.py"):
        assert not re.search(r"os\.environ|getenv", path.read_text(encoding="utf-8")), path


@pytest.mark.parametrize(("param", "words"), [
    ("n=abc", "-T n='abc' is not an integer"),
    ("nope=1", "unknown parameter 'nope' (accepted: chat, max_tokens, n, temperature, timeout, top_p"),
    ("n=0", "must be at least 1"),
    ("temperature=nan", "must be a finite number"),
    ("chat=maybe", "is not true or false"),
    ("n=2", None),
])
def test_bad_parameters_are_one_line_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                            param: str, words: str | None) -> None:
    code = _run(tmp_path, "--tasks", "humaneval", "-T", param, "--limit", "1", "--dry-run")
    err = capsys.readouterr().err.strip()
    if words is None:
        assert code == 0, err
        return
    assert code == 2
    assert len(err.splitlines()) == 1 and err.startswith("evalkit: error: ") and words in err, err


def test_a_list_parameter_takes_bars_and_repeats(tmp_path: Path) -> None:
    data = mini_mmlu(tmp_path, "anatomy")
    for split in ("test", "dev"):
        shutil.copy(SHARED_DATA / "mmlu" / split / f"astronomy_{split}.csv", data / "mmlu" / split)
    one = get_task("mmlu", {"subjects": ["anatomy|astronomy"]})
    two = get_task("mmlu", {"subjects": ["anatomy", "astronomy"]})
    assert one.config() == two.config() and one.config()["parameters"]["subjects"] == ["anatomy", "astronomy"]
    code = _run(tmp_path, "--tasks", "mmlu", "-T", "subjects=anatomy|astronomy", "--limit", "2",
                "--data-dir", str(data))
    assert code == 0
    records = log_records(next((tmp_path / "runs").rglob("mmlu-*.jsonl")))
    assert sorted({r["subtask"] for r in records if r["type"] == "sample"}) == ["anatomy", "astronomy"]


def test_per_task_parameter_applies_to_that_task_only(tmp_path: Path) -> None:
    assert _run(tmp_path, "--tasks", "humaneval,humaneval_chat", "-T", "humaneval_chat.n=2", "--limit", "1") == 0
    plain = _headers(tmp_path, "humaneval-*.jsonl")[0]["task"]["parameters"]
    chat = _headers(tmp_path, "humaneval_chat-*.jsonl")[0]["task"]["parameters"]
    assert plain["n"] == 1 and chat["n"] == 2


def test_scoped_and_global_keys_are_checked() -> None:
    with pytest.raises(ConfigError, match="'mmlu' is not one of --tasks"):
        split_assignments(["mmlu.n=2"], ["humaneval"])
    with pytest.raises(ConfigError, match="expected key=value"):
        split_assignments(["n"], ["humaneval"])
    assert split_assignments(["n=1", "humaneval.n=2", "k=a", "k=b"], ["humaneval"]) == {
        "": {"n": ("1",), "k": ("a", "b")}, "humaneval": {"n": ("2",)}}
    with pytest.raises(ConfigError, match="given 2 times"):
        Param("n", int, 1).parse(["1", "2"], "t")


def test_a_global_key_no_task_takes_is_an_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = mini_mmlu(tmp_path)
    code = _run(tmp_path, "--tasks", "mmlu_anatomy,race", "-T", "n=2", "--data-dir", str(data))
    err = capsys.readouterr().err
    assert code == 2 and "no task in --tasks (mmlu_anatomy, race) takes parameter 'n'" in err
    code = _run(tmp_path, "--tasks", "mmlu_anatomy", "-T", "n=2", "--data-dir", str(data))
    err = capsys.readouterr().err
    assert code == 2 and "task 'mmlu_anatomy': unknown parameter 'n' (accepted: none" in err


def test_chat_follows_the_model_and_can_be_overridden(tmp_path: Path) -> None:
    out = tmp_path / "runs"
    base = ["run", "--tasks", "humaneval", "--limit", "1", "--output-dir", str(out), "--no-progress", "--offline"]
    assert main([*base, "--model", "mock:chat_template=true"]) == 0
    assert main([*base, "--model", "mock:chat_template=true", "--no-chat"]) == 0
    assert main([*base, "--model", "mock"]) == 0
    headers = {(h["model"]["spec"], h["task"]["parameters"]["chat"]): h for h in
               (log_records(p)[0] for p in out.rglob("humaneval-*.jsonl"))}
    chat = headers[("mock:chat_template=true", True)]
    assert chat["task"]["prompt_format"].startswith("evalkit humaneval_chat")
    assert "chat_template" in chat["notes"]["chat"]
    completion = headers[("mock:chat_template=true", False)]
    assert completion["task"]["prompt_format"] == "human-eval completion (raw prompt)"
    assert completion["identity"] != chat["identity"]
    assert ("mock", False) in headers
    chat_log = next(p for p in out.rglob("humaneval-*.jsonl") if log_records(p)[0]["identity"] == chat["identity"])
    sample = next(r for r in log_records(chat_log) if r["type"] == "sample")
    assert isinstance(sample["requests"][0]["prompt"], list)  # chat messages, not a completion prompt


def test_embedded_instruct_model_defaults_to_chat() -> None:
    from evalkit.backends.facts import local_chat_template

    assert local_chat_template("smollm2")[0] is True
    assert local_chat_template("gemma3-270m")[0] is False


def test_list_tasks_params(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["list", "tasks", "--params"]) == 0
    out = capsys.readouterr().out
    assert "-T n (int, default 1)" in out and "-T subjects (list of str" in out
    assert "humaneval_n5: as humaneval, defaults n=5" in out
