"""Every command, every class of bad input: one line on stderr, `evalkit: error: ...` naming the
file or flag, exit 2, and no change to logs already written. Run as a user runs the CLI."""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from evalkit.backends.embedded import gguf_path
from tests.helpers import evalkit

BAD_JSON = b'{"id": 1'

#: (case id, argv builder given the workspace, words the error must contain)
Case = tuple[str, Callable[[Path], list[str]], str]


def _mock_run(ws: Path, *extra: str, limit: str = "2", output_dir: Path | str | None = None) -> list[str]:
    return ["run", "--model", "mock", "--tasks", "humaneval", "--limit", limit, "--output-dir",
            str(output_dir or ws / "runs"), "--no-progress", *extra]


def _log(ws: Path) -> Path:
    return next((ws / "runs").rglob("humaneval-*.jsonl"))


def _damaged(ws: Path, name: str, content: bytes) -> Path:
    path = ws / "damaged" / name
    path.parent.mkdir(exist_ok=True)
    path.write_bytes(content)
    return path


CASES: list[Case] = [
    # run: flags
    ("run-unknown-model", lambda ws: ["run", "--model", "nosuch:x", "--tasks", "humaneval"], "--model 'nosuch:x'"),
    ("run-unknown-task", lambda ws: ["run", "--model", "mock", "--tasks", "humaneval_x"], "unknown task 'humaneval_x'"),
    ("run-empty-tasks", lambda ws: ["run", "--model", "mock", "--tasks", ","], "--tasks is empty"),
    ("run-limit-zero", lambda ws: _mock_run(ws, limit="0"), "--limit must be a positive number"),
    ("run-limit-text", lambda ws: ["run", "--model", "mock", "--tasks", "humaneval", "--limit", "abc"], "--limit"),
    ("run-seed-text", lambda ws: ["run", "--model", "mock", "--tasks", "humaneval", "--seed", "x"], "--seed"),
    ("run-fewshot-negative", lambda ws: _mock_run(ws, "--num-fewshot", "-1"), "--num-fewshot must be >= 0"),
    ("run-param-type", lambda ws: _mock_run(ws, "-T", "n=abc"), "-T n='abc' is not an integer"),
    ("run-param-unknown", lambda ws: _mock_run(ws, "-T", "nope=1"), "unknown parameter 'nope'"),
    ("run-model-args-form", lambda ws: _mock_run(ws, "--model-args", "seed"), "--model-args: 'seed' is not key=value"),
    ("run-model-args-unknown", lambda ws: _mock_run(ws, "--model-args", "nope=1"), "unknown option(s) nope"),
    ("run-role-form", lambda ws: _mock_run(ws, "--role", "judge"), "--role 'judge': expected NAME=SPEC"),
    ("run-data-dir-missing", lambda ws: _mock_run(ws, "--data-dir", str(ws / "nowhere")), "--data-dir"),
    # run: output directory
    ("run-output-dir-is-file", lambda ws: _mock_run(ws, output_dir=_log(ws)), "exists and is not a directory"),
    ("run-output-dir-under-file", lambda ws: _mock_run(ws, output_dir=_log(ws) / "x"), "cannot create it"),
    ("run-output-dir-device", lambda ws: _mock_run(ws, output_dir="/dev/full"), "--output-dir /dev/full"),
    # run: model files
    ("gguf-plain-text", lambda ws: ["run", "--model", f"gguf:{_damaged(ws, 'text.gguf', b'not a model')}",
                                    "--tasks", "humaneval"], "is not a GGUF file"),
    ("gguf-truncated", lambda ws: ["run", "--model",
                                   f"gguf:{_damaged(ws, 'cut.gguf', gguf_path('smollm2').read_bytes()[:4096])}",
                                   "--tasks", "humaneval"], "truncated or damaged GGUF"),
    ("gguf-missing", lambda ws: ["run", "--model", f"gguf:{ws / 'no.gguf'}", "--tasks", "humaneval"], "does not exist"),
    ("gguf-directory", lambda ws: ["run", "--model", f"gguf:{ws}", "--tasks", "humaneval"], "is not a file"),
    ("replay-missing", lambda ws: ["run", "--model", f"replay:{ws / 'no.jsonl'}", "--tasks", "humaneval"], "no such file"),
    ("replay-malformed", lambda ws: ["run", "--model", "replay:" + str(_damaged(ws, "bad.jsonl", BAD_JSON)),
                                     "--tasks", "humaneval"], "bad.jsonl:1: malformed JSON"),
    ("replay-empty", lambda ws: ["run", "--model", f"replay:{_damaged(ws, 'empty.jsonl', b'')}",
                                 "--tasks", "humaneval"], "empty.jsonl: file is empty"),
    # run: resuming a damaged log
    ("run-resume-truncated", lambda ws: _mock_run(_truncated_copy(ws)), "truncated at line"),
    # show
    ("show-missing", lambda ws: ["show", str(ws / "nothing")], "no such run log"),
    ("show-empty", lambda ws: ["show", str(_damaged(ws, "empty-log.jsonl", b""))], "run log is empty"),
    ("show-corrupt", lambda ws: ["show", str(_damaged(ws, "corrupt.jsonl", b'{"type": "header", \n'))],
     "not a JSON record"),
    ("show-version", lambda ws: ["show", str(_versioned(ws, 99))], "schema_version 99 is not supported"),
    ("show-malformed-summary", lambda ws: ["show", str(_bad_summary(ws))], "malformed summary record"),
    # score
    ("score-missing", lambda ws: ["score", str(ws / "nothing.jsonl")], "no such run log"),
    ("score-truncated", lambda ws: ["score", str(_damaged(ws, "trunc.jsonl", _log(ws).read_bytes()[:-20]))],
     "truncated at line"),
    ("score-unknown-task", lambda ws: ["score", str(_renamed_task(ws))], "unknown task 'gone_task'"),
    # leaderboard, list, ui
    ("leaderboard-missing", lambda ws: ["leaderboard", str(ws / "nowhere")], "no such run log or directory"),
    ("leaderboard-resamples", lambda ws: ["leaderboard", str(ws / "runs"), "--resamples", "1"], "--resamples"),
    ("list-unknown", lambda ws: ["list", "things"], "invalid choice: 'things'"),
    ("ui-missing", lambda ws: ["ui", str(ws / "nowhere")], "no such run log or directory"),
    ("ui-port-text", lambda ws: ["ui", str(ws / "runs"), "--port", "abc"], "--port"),
]


def _truncated_copy(ws: Path) -> Path:
    """A second workspace whose log lost the end of its last line (a crash mid-write)."""
    other = ws / "crashed"
    if not other.exists():
        shutil.copytree(ws / "runs", other / "runs")
        log = _log(other)
        log.write_bytes(log.read_bytes()[:-15])
    return other


def _versioned(ws: Path, version: int) -> Path:
    lines = _log(ws).read_text().splitlines(keepends=True)
    header = json.loads(lines[0])
    header["schema_version"] = version
    return _damaged(ws, "version.jsonl", (json.dumps(header) + "\n" + "".join(lines[1:])).encode())


def _bad_summary(ws: Path) -> Path:
    lines = _log(ws).read_text().splitlines(keepends=True)
    return _damaged(ws, "summary.jsonl", ("".join(lines[:-1]) + '{"type": "summary", "results": 3}\n').encode())


def _renamed_task(ws: Path) -> Path:
    text = _log(ws).read_text().replace('"name":"humaneval"', '"name":"gone_task"', 1)
    return _damaged(ws, "renamed.jsonl", text.encode())


def _digest(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file() and "damaged" not in p.parts}


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    ws = tmp_path_factory.mktemp("bad-input")
    result = evalkit(*_mock_run(ws))
    assert result.returncode == 0, result.stderr
    return ws


def test_the_sweep_covers_every_command() -> None:
    commands = {case.split("-")[0] for case, _, _ in CASES}
    assert {"run", "show", "score", "leaderboard", "list", "ui"} <= commands
    assert len(CASES) >= 25


@pytest.mark.parametrize(("case", "build", "words"), CASES, ids=[c[0] for c in CASES])
def test_bad_input_is_one_line_exit_2_and_changes_nothing(workspace: Path, case: str,
                                                           build: Callable[[Path], list[str]], words: str) -> None:
    argv = build(workspace)
    before = _digest(workspace)
    result = evalkit(*argv)
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2, (case, result.returncode, result.stderr[-2000:])
    assert len(lines) == 1 and lines[0].startswith("evalkit: error: "), (case, result.stderr[-2000:])
    assert words in lines[0], (case, lines[0])
    assert "Traceback" not in result.stderr
    after = _digest(workspace)
    assert {k: v for k, v in after.items() if k in before} == before, f"{case} changed a log"


def test_unexpected_errors_are_one_line_and_the_traceback_is_on_v(monkeypatch: pytest.MonkeyPatch,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    from evalkit import report_text
    from evalkit.cli import main

    def boom() -> str:
        raise RuntimeError("something broke\nsecond line")

    monkeypatch.setattr(report_text, "list_models", lambda **_: boom())
    assert main(["list", "models"]) == 1
    err = capsys.readouterr().err
    assert err == "evalkit: error: RuntimeError: something broke (run with -v for the traceback)\n"
    assert main(["-v", "list", "models"]) == 1
    err = capsys.readouterr().err
    assert "Traceback (most recent call last)" in err and err.rstrip().endswith("something broke")


def test_broken_pipes_end_quietly(workspace: Path) -> None:
    import subprocess
    import sys

    for args in (["list", "tasks"], ["show", str(workspace / "runs"), "--json"], ["list", "tasks", "--subtasks"]):
        cmd = f"{sys.executable} -m evalkit.cli {' '.join(args)} | head -1"
        result = subprocess.run(["bash", "-o", "pipefail", "-c", cmd], capture_output=True, text=True, timeout=120)
        assert "Traceback" not in result.stderr and "BrokenPipe" not in result.stderr, result.stderr
        assert result.stdout.strip(), args
