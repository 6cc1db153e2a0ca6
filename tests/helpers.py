"""Helpers shared by tests: run the CLI as a user would, read logs, build small data dirs."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.conftest import SHARED_DATA


def evalkit(*args: str, env: dict[str, str] | None = None, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    """Run `python -m evalkit.cli ARGS` in a subprocess and capture its output."""
    return subprocess.run(
        [sys.executable, "-m", "evalkit.cli", *args],
        capture_output=True, text=True, timeout=timeout, env={**os.environ, **(env or {})},
    )


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
