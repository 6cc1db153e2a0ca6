"""The sandbox's ordinary behaviour: verdicts, reasons, I/O, environment, limits, modes."""

from __future__ import annotations

import ast
import asyncio
import os
import shutil
from pathlib import Path

import pytest

from evalkit.sandbox import (
    MODES,
    RUN_MARKER_ENV,
    ExecResult,
    Limits,
    Sandbox,
    SandboxError,
    detect_mode,
)
from evalkit.sandbox_launch import processes_of_run

FAST = Limits(wall_seconds=5.0, cpu_seconds=3, memory_bytes=512 << 20, max_processes=16,
              file_size_bytes=1 << 20, disk_bytes=8 << 20, max_output_bytes=1 << 20, captured_bytes=4096)


def leftovers(result: ExecResult) -> list[int]:
    """Processes of this run still alive."""
    return processes_of_run(RUN_MARKER_ENV, result.run_id, result.uid)


@pytest.fixture(scope="module")
def sandbox() -> Sandbox:
    return Sandbox(FAST)


def test_passing_program_captures_stdout_and_reads_stdin(sandbox: Sandbox) -> None:
    result = sandbox.run_sync("import sys\nprint('got', sys.stdin.read().upper())\n", stdin="hello")
    assert result.passed and result.reason == "passed"
    assert result.stdout == "got HELLO\n"
    assert result.isolation == sandbox.isolation
    assert leftovers(result) == []


def test_failure_reason_names_the_exception(sandbox: Sandbox) -> None:
    result = sandbox.run_sync("def f():\n    return 1\nassert f() == 2, 'wrong answer'\n")
    assert result.status == "failed"
    assert result.reason == "failed: AssertionError: wrong answer"
    assert "line 3" in result.stderr


@pytest.mark.parametrize("exit_call", ["import sys; sys.exit(0)", "import os; os._exit(0)",
                                       "raise SystemExit(0)", "import atexit, os; atexit.register(os._exit, 0); 1/0"])
def test_exit_code_zero_is_not_a_pass(sandbox: Sandbox, exit_call: str) -> None:
    result = sandbox.run_sync(exit_call + "\n")
    assert result.status == "failed", result
    assert result.reason


def test_environment_is_minimal(sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EVALKIT_TEST_SECRET", "do-not-leak")
    result = sandbox.run_sync("import os\nprint(sorted(os.environ))\n")
    assert result.passed
    names = ast.literal_eval(result.stdout)
    assert set(names) <= {"PATH", "HOME", "TMPDIR", "LANG", "LC_ALL", "OMP_NUM_THREADS", "EVALKIT_SANDBOX_RUN",
                          "PWD"}
    assert "do-not-leak" not in result.stdout


def test_working_directory_is_empty_and_private(sandbox: Sandbox) -> None:
    program = "import os\nprint(os.listdir('.'))\nopen('scratch.txt', 'w').write('x')\nprint(os.getcwd())\n"
    first = sandbox.run_sync(program)
    second = sandbox.run_sync(program)
    assert first.passed and second.passed
    assert first.stdout.splitlines()[0] == "[]" and second.stdout.splitlines()[0] == "[]"
    workdir = first.stdout.splitlines()[1]
    if sandbox.isolation != "bwrap":  # a host directory: it must be gone
        assert not Path(workdir).exists()


def test_output_is_bounded(sandbox: Sandbox) -> None:
    result = sandbox.run_sync("import sys\nfor _ in range(200):\n    sys.stdout.write('y' * 10000)\n")
    assert result.status == "output_limit"
    assert len(result.stdout) <= FAST.captured_bytes


def test_programs_run_in_parallel_up_to_the_cores() -> None:
    sandbox = Sandbox(FAST)
    assert sandbox.workers == len(os.sched_getaffinity(0))

    async def many() -> list[ExecResult]:
        return await asyncio.gather(*(sandbox.run(f"print({i} * {i})") for i in range(6)))

    results = asyncio.run(many())
    assert [r.stdout.strip() for r in results] == [str(i * i) for i in range(6)]


def test_describe_reports_the_isolation(sandbox: Sandbox) -> None:
    info = sandbox.describe()
    assert info["isolation"] in MODES
    assert info["isolation_detail"]
    assert info["limits"]["wall_seconds"] == FAST.wall_seconds


def test_unknown_isolation_is_a_clear_error() -> None:
    with pytest.raises(SandboxError, match="unknown isolation 'chroot'"):
        Sandbox(isolation="chroot")


def test_bubblewrap_is_used_when_installed() -> None:
    # CI installs bubblewrap (.ci/setup.sh); then it must be the isolation chosen
    if shutil.which("bwrap") is None:
        pytest.fail("bubblewrap is not installed: run .ci/setup.sh")
    assert detect_mode("auto").name == "bwrap"


@pytest.mark.parametrize("mode", MODES)
def test_every_isolation_mode_gives_the_same_verdicts(mode: str) -> None:
    if mode != "process" and shutil.which({"bwrap": "bwrap", "unshare": "unshare"}[mode]) is None:
        pytest.skip(f"{mode} is not installed on this machine")
    sandbox = Sandbox(Limits(wall_seconds=3.0, cpu_seconds=2), isolation=mode)
    ok = sandbox.run_sync("print(sum(range(10)))")
    assert ok.passed and ok.stdout == "45\n" and ok.isolation == mode
    assert sandbox.run_sync("assert False").reason == "failed: AssertionError"
    slow = sandbox.run_sync("import time\ntime.sleep(60)")
    assert slow.status == "timeout"
    daemon = sandbox.run_sync(
        "import os, time\nif os.fork() == 0:\n    os.setsid()\n    time.sleep(60)\nelse:\n    print('parent done')\n")
    assert daemon.passed
    assert leftovers(slow) == [] and leftovers(daemon) == []


def test_a_sandbox_that_cannot_start_is_an_error_not_a_fail(monkeypatch: pytest.MonkeyPatch) -> None:
    import evalkit.sandbox as sb

    sandbox = Sandbox(FAST)
    assert sandbox.isolation in MODES  # resolved with the real interpreter first
    monkeypatch.setattr(sb, "sandbox_python", lambda: "/nonexistent/python3")
    with pytest.raises(SandboxError, match="failed to start|cannot start"):
        sandbox.run_sync("print(1)")
