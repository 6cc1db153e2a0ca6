"""A non-editable `pip install .` into a fresh virtualenv works from outside the repository,
and installs no generic top-level `tasks`, `judges` or `reports` package."""

from __future__ import annotations

import shutil
import subprocess
import sys
import venv
from pathlib import Path

import pytest

from tests.conftest import REPO, SHARED_DATA


def source_copy(dest: Path) -> Path:
    """The files git would ship (tracked, plus new ones not ignored): no .venv, no build dirs."""
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=REPO, check=True,
                           capture_output=True, text=True).stdout.splitlines()
    for name in files:
        src = REPO / name
        if src.is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / name)
    return dest


@pytest.mark.slow
def test_non_editable_install_from_outside_the_repo(tmp_path: Path) -> None:
    src = source_copy(tmp_path / "src")
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    py = env_dir / "bin" / "python"
    subprocess.run([str(py), "-m", "pip", "install", "-q", str(src)], check=True, timeout=600)
    shutil.rmtree(src)  # the installed package must not need the source tree

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(args, cwd="/tmp", capture_output=True, text=True, timeout=300)

    listed = run(str(env_dir / "bin" / "evalkit"), "list", "tasks")
    assert listed.returncode == 0, listed.stderr
    assert "mmlu" in listed.stdout and "ceval" in listed.stdout and "race" in listed.stdout
    for generic in ("tasks", "judges", "reports"):
        probe = run(str(py), "-c", f"import {generic}")
        assert probe.returncode != 0 and "ModuleNotFoundError" in probe.stderr, generic
    assert run(str(py), "-c", "import evalkit.tasks.mmlu, evalkit.reports, evalkit.judges").returncode == 0
    out = tmp_path / "runs"
    ran = run(str(env_dir / "bin" / "evalkit"), "run", "--model", "mock", "--tasks", "mmlu_anatomy,ceval_accountant",
              "--limit", "3", "--data-dir", str(SHARED_DATA), "--output-dir", str(out), "--no-progress")
    assert ran.returncode == 0, ran.stderr
    assert len(list(out.rglob("*.jsonl"))) == 2
    assert sys.version_info >= (3, 10)
