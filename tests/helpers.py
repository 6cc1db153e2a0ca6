"""Helpers shared by tests: run the CLI as a user would, read logs, build small data dirs."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.conftest import SHARED_DATA


def evalkit(*args: str, env: dict[str, str] | None = None, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    """Run `python -m evalkit.cli ARGS` in a subprocess and capture its output."""
    return subprocess.run(
        [sys.executable, "-m", "evalkit.cli", *args],
        capture_output=True, text=True, timeout=timeout, env={**os.environ, **(env or {})},
    )


def kill_evalkit_when(args: list[str], ready: Callable[[], bool], env: dict[str, str],
                      timeout: float = 180, poll: float = 0.02) -> None:
    """Start `python -m evalkit.cli ARGS` and SIGKILL it as soon as `ready()` holds (or when it
    ends by itself, or after `timeout` seconds): a crash mid-run, for resume tests."""
    proc = subprocess.Popen([sys.executable, "-m", "evalkit.cli", *args], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + timeout
    while not ready() and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(poll)
    proc.send_signal(signal.SIGKILL)
    proc.wait()


def show_json(path: Path) -> dict[str, Any]:
    result = evalkit("show", str(path), "--json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)  # type: ignore[no-any-return]


def log_records(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


def single_log(root: Path, pattern: str = "*.jsonl") -> Path:
    logs = sorted(root.rglob(pattern))
    assert len(logs) == 1, logs
    return logs[0]


def mini_mmlu(tmp: Path, subject: str = "anatomy") -> Path:
    """A data dir holding one real MMLU subject (copied to tmp so tests may damage it)."""
    root = tmp / "data"
    for split in ("test", "dev"):
        (root / "mmlu" / split).mkdir(parents=True)
        shutil.copy(SHARED_DATA / "mmlu" / split / f"{subject}_{split}.csv", root / "mmlu" / split)
    return root
