"""Shared test setup: every test gets its own response cache; data comes from ../shared/data."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("EVALKIT_DATA_DIR") or REPO.parent / "shared" / "data")
# module-scoped fixtures and subprocesses see it too (the autouse fixture below is per test)
os.environ["EVALKIT_DATA_DIR"] = str(SHARED_DATA)


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EVALKIT_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))
    monkeypatch.setenv("EVALKIT_DATA_DIR", str(SHARED_DATA))


@pytest.fixture
def data_dir() -> Path:
    if not (SHARED_DATA / "mmlu").is_dir():
        raise RuntimeError(f"benchmark data not found at {SHARED_DATA}; set EVALKIT_DATA_DIR")
    return SHARED_DATA
