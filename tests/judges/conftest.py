"""Contestant run logs for judge tests: MT-Bench answers replayed from the shipped files."""

from __future__ import annotations

from pathlib import Path

import pytest

from evalkit.cli import main
from tests.conftest import SHARED_DATA

ANSWERS = SHARED_DATA / "mt_bench" / "model_answer"


def contestant_log(out: Path, model: str, limit: int) -> Path:
    spec = f"replay:{ANSWERS / f'{model}.jsonl.gz'}"
    where = out / f"{model}-{limit}"
    assert main(["run", "--model", spec, "--tasks", "mt_bench", "--limit", str(limit), "--output-dir", str(where),
                 "--no-progress"]) == 0
    (log,) = sorted(where.rglob("mt_bench-*.jsonl"))
    return log


@pytest.fixture(scope="module")
def contestants(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    out = tmp_path_factory.mktemp("contestants")
    return contestant_log(out, "vicuna-13b-v1.3", 20), contestant_log(out, "alpaca-13b", 20)
