"""Bad input: each case gives a one-line error naming the file, field or flag, a non-zero
exit, and leaves an existing run log byte-for-byte intact."""

from __future__ import annotations

from pathlib import Path

import pytest

from evalkit.cli import main
from tests.helpers import mini_mmlu


@pytest.fixture
def existing_log(tmp_path: Path) -> Path:
    """A finished run whose log must survive every failing command below."""
    out = tmp_path / "runs"
    assert main(["run", "--model", "mock", "--tasks", "mmlu_anatomy", "--output-dir", str(out),
                 "--no-progress", "--limit", "5"]) == 0
    return next(out.rglob("*.jsonl"))


def run_failing(capsys: pytest.CaptureFixture[str], existing: Path, *args: str) -> str:
    before = existing.read_bytes()
    capsys.readouterr()
    code = main(["run", "--output-dir", str(existing.parent.parent), "--no-progress", "--limit", "5", *args])
    err = capsys.readouterr().err.strip()
    assert code == 2, err
    error_lines = [line for line in err.splitlines() if line.startswith("evalkit: error:")]
    assert len(error_lines) == 1 and err.splitlines()[-1] == error_lines[0], err
    assert existing.read_bytes() == before, "an existing log was modified"
    return error_lines[0]


def test_unknown_task_suggests(capsys: pytest.CaptureFixture[str], existing_log: Path) -> None:
    msg = run_failing(capsys, existing_log, "--model", "mock", "--tasks", "mmlu_anatomyy")
    assert "unknown task 'mmlu_anatomyy'" in msg and "did you mean 'mmlu_anatomy'" in msg


def test_unknown_model_spec_suggests(capsys: pytest.CaptureFixture[str], existing_log: Path) -> None:
    msg = run_failing(capsys, existing_log, "--model", "hff:some/model", "--tasks", "mmlu_anatomy")
    assert "--model 'hff:some/model'" in msg and "did you mean 'hf'" in msg


def test_unknown_embedded_name(capsys: pytest.CaptureFixture[str], existing_log: Path) -> None:
    msg = run_failing(capsys, existing_log, "--model", "smollm", "--tasks", "mmlu_anatomy")
    assert "did you mean 'smollm2'" in msg


def test_missing_data_directory(capsys: pytest.CaptureFixture[str], existing_log: Path, tmp_path: Path) -> None:
    missing = tmp_path / "no-such-dir"
    msg = run_failing(capsys, existing_log, "--model", "mock", "--tasks", "mmlu_anatomy", "--data-dir", str(missing))
    assert "--data-dir" in msg and str(missing) in msg


def test_csv_missing_a_column(capsys: pytest.CaptureFixture[str], existing_log: Path, tmp_path: Path) -> None:
    data = mini_mmlu(tmp_path)
    path = data / "mmlu" / "test" / "anatomy_test.csv"
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    path.write_text("question,choice0,choice1,choice2,choice3\n" + "".join(lines[1:]), encoding="utf-8")
    msg = run_failing(capsys, existing_log, "--model", "mock", "--tasks", "mmlu_anatomy", "--data-dir", str(data))
    assert str(path) in msg and "missing column 'answer'" in msg


def test_answer_outside_a_to_d(capsys: pytest.CaptureFixture[str], existing_log: Path, tmp_path: Path) -> None:
    data = mini_mmlu(tmp_path)
    path = data / "mmlu" / "test" / "anatomy_test.csv"
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    lines[3] = lines[3].rstrip("\n").rsplit(",", 1)[0] + ",E\n"
    path.write_text("".join(lines), encoding="utf-8")
    msg = run_failing(capsys, existing_log, "--model", "mock", "--tasks", "mmlu_anatomy", "--data-dir", str(data))
    assert f"{path}:4" in msg and "answer 'E' is outside A–D" in msg


def test_empty_subject_file(capsys: pytest.CaptureFixture[str], existing_log: Path, tmp_path: Path) -> None:
    data = mini_mmlu(tmp_path)
    path = data / "mmlu" / "dev" / "anatomy_dev.csv"
    path.write_bytes(b"")
    msg = run_failing(capsys, existing_log, "--model", "mock", "--tasks", "mmlu_anatomy", "--data-dir", str(data))
    assert str(path) in msg and "empty" in msg


def test_non_utf8_bytes(capsys: pytest.CaptureFixture[str], existing_log: Path, tmp_path: Path) -> None:
    data = mini_mmlu(tmp_path)
    path = data / "mmlu" / "test" / "anatomy_test.csv"
    raw = path.read_bytes().split(b"\n")
    raw[6] = raw[6].replace(b"a", b"\xff\xfe", 1)
    path.write_bytes(b"\n".join(raw))
    msg = run_failing(capsys, existing_log, "--model", "mock", "--tasks", "mmlu_anatomy", "--data-dir", str(data))
    assert f"{path}:7" in msg and "not valid UTF-8" in msg


def test_truncated_log_on_resume(capsys: pytest.CaptureFixture[str], existing_log: Path) -> None:
    data = existing_log.read_bytes()
    existing_log.write_bytes(data[: len(data) - 40])  # cut inside the summary record
    msg = run_failing(capsys, existing_log, "--model", "mock", "--tasks", "mmlu_anatomy")
    assert str(existing_log) in msg and "truncated" in msg and "--repair" in msg


def test_repair_then_resume_finishes(capsys: pytest.CaptureFixture[str], existing_log: Path) -> None:
    data = existing_log.read_bytes()
    existing_log.write_bytes(data[: len(data) - 40])
    assert main(["run", "--model", "mock", "--tasks", "mmlu_anatomy", "--output-dir",
                 str(existing_log.parent.parent), "--no-progress", "--limit", "5", "--repair"]) == 0
    assert existing_log.read_bytes().startswith(data[: data.rfind(b"\n", 0, len(data) - 1) + 1])


def test_log_from_another_model_is_not_resumed(capsys: pytest.CaptureFixture[str], existing_log: Path) -> None:
    header = existing_log.read_text(encoding="utf-8").split("\n", 1)
    existing_log.write_text(header[0].replace('"seed":0', '"seed":7', 1) + "\n" + header[1], encoding="utf-8")
    msg = run_failing(capsys, existing_log, "--model", "mock", "--tasks", "mmlu_anatomy")
    assert str(existing_log) in msg and "--overwrite" in msg


@pytest.mark.parametrize(("flag", "value", "expected"), [
    ("--limit", "0", "--limit"), ("--num-fewshot", "-1", "--num-fewshot"), ("--model-args", "oops", "--model-args"),
])
def test_bad_flags(capsys: pytest.CaptureFixture[str], existing_log: Path, flag: str, value: str, expected: str) -> None:
    msg = run_failing(capsys, existing_log, "--model", "mock", "--tasks", "mmlu_anatomy", flag, value)
    assert expected in msg


def test_too_many_fewshot_examples(capsys: pytest.CaptureFixture[str], existing_log: Path) -> None:
    msg = run_failing(capsys, existing_log, "--model", "mock", "--tasks", "mmlu_anatomy", "--num-fewshot", "6")
    assert "--num-fewshot 6" in msg and "only 5" in msg
    assert len(list(existing_log.parent.glob("*.jsonl"))) == 1, "no log is started for a run that cannot run"


def test_no_data_anywhere_names_both_ways(capsys: pytest.CaptureFixture[str], existing_log: Path, tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    msg = run_failing(capsys, existing_log, "--model", "mock", "--tasks", "mmlu_anatomy", "--data-dir", str(empty),
                      "--offline")
    assert "EVALKIT_DATA_DIR" in msg and "Hugging Face 'cais/mmlu'" in msg


def test_overwrite_keeps_the_old_log_when_the_run_cannot_start(capsys: pytest.CaptureFixture[str],
                                                                existing_log: Path) -> None:
    msg = run_failing(capsys, existing_log, "--model", "mock:seed=x", "--tasks", "mmlu_anatomy", "--overwrite")
    assert "--model mock" in msg
