"""MT-Bench replay logs of shipped answers, and stores made from them."""

from __future__ import annotations

from pathlib import Path

import pytest

from evalkit.human.store import VoteStore
from evalkit.human.study import StudyConfig, create_study
from tests.judges.conftest import contestant_log

MODELS = ("vicuna-13b-v1.3", "alpaca-13b", "llama-13b")


@pytest.fixture(scope="session")
def replay_logs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, ...]:
    out = tmp_path_factory.mktemp("human_runs")
    return tuple(contestant_log(out, model, 10) for model in MODELS)


def make_store(path: Path, runs: tuple[Path, ...], annotators: tuple[str, ...] = ("ann1", "ann2"),
               **config: object) -> VoteStore:
    return create_study(path, runs, annotators, StudyConfig(**config))  # type: ignore[arg-type]
