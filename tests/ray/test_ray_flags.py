"""`--executor ray` flags are checked before any model loads, with or without Ray installed
(these tests start no cluster)."""

from __future__ import annotations

from pathlib import Path

import pytest

from evalkit.cli import main
from tests.conftest import SHARED_DATA


def run_args(tmp: Path, *extra: str) -> list[str]:
    calls = tmp / "calls.txt"
    return ["run", "--model", f"mock:calls_file={calls}", "--tasks", "mmlu_anatomy", "--limit", "2",
            "--output-dir", str(tmp / "runs"), "--data-dir", str(SHARED_DATA), "--no-progress", *extra]


def test_without_ray_the_error_names_the_extra(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    import importlib.util

    import evalkit.executors.config as config

    real = importlib.util.find_spec
    monkeypatch.setattr(config.importlib.util, "find_spec", lambda name, *a: None if name == "ray" else real(name, *a))
    assert main(run_args(tmp_path, "--executor", "ray")) == 2
    err = capsys.readouterr().err.strip()
    assert err == "evalkit: error: --executor ray needs Ray: pip install 'evalkit[ray]'"
    assert not (tmp_path / "calls.txt").exists() and not (tmp_path / "runs").exists(), "nothing ran"


@pytest.mark.parametrize("extra, message", [
    (("--executor", "ray", "--workers", "0"), "--workers must be >= 1"),
    (("--executor", "ray", "--chunk-size", "0"), "--chunk-size must be >= 1"),
    (("--workers", "2"), "--workers only apply with --executor ray"),
    (("--ray-address", "auto"), "--ray-address only apply with --executor ray"),
])
def test_bad_executor_flags(tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: tuple[str, ...],
                            message: str) -> None:
    assert main(run_args(tmp_path, *extra)) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "runs").exists()
