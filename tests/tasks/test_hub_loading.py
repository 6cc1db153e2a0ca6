"""The Hugging Face path, offline: a stand-in `datasets` module serves rows in the hub's
real formats (cais/mmlu, ceval/ceval-exam, ehovy/race), so the row mapping is exercised."""

from __future__ import annotations

import sys
import types
from pathlib import Path
from typing import Any

import pytest

from evalkit import data as data_module
from evalkit.errors import DataError
from evalkit.task import DataSource, get_task

ROWS: dict[tuple[str, str | None, str], list[dict[str, Any]]] = {
    ("cais/mmlu", "anatomy", "test"): [
        {"question": "Q1?", "subject": "anatomy", "choices": ["a", "b", "c", "d"], "answer": 2}],
    ("cais/mmlu", "anatomy", "dev"): [
        {"question": "D1?", "subject": "anatomy", "choices": ["w", "x", "y", "z"], "answer": 0}],
    ("ceval/ceval-exam", "accountant", "val"): [
        {"id": 0, "question": "问题？", "A": "甲", "B": "乙", "C": "丙", "D": "丁", "answer": "B", "explanation": ""}],
    ("ceval/ceval-exam", "accountant", "dev"): [
        {"id": 0, "question": "例？", "A": "1", "B": "2", "C": "3", "D": "4", "answer": "D", "explanation": "…"}],
    ("ehovy/race", "high", "test"): [
        {"example_id": "high9.txt", "article": "Art.", "answer": "C", "question": "Q?", "options": ["1", "2", "3", "4"]},
        {"example_id": "high9.txt", "article": "Art.", "answer": "A", "question": "Q2?", "options": ["5", "6", "7", "8"]}],
}


@pytest.fixture
def fake_hub(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str | None, str]]:
    calls: list[tuple[str, str | None, str]] = []

    def load_dataset(path: str, name: str | None = None, split: str = "test") -> list[dict[str, Any]]:
        calls.append((path, name, split))
        if (path, name, split) not in ROWS:
            raise FileNotFoundError(f"Couldn't find {path}/{name}")
        return ROWS[(path, name, split)]

    monkeypatch.setitem(sys.modules, "datasets", types.SimpleNamespace(load_dataset=load_dataset))
    monkeypatch.setattr(data_module, "hub_reachable", lambda timeout=3.0: True)
    return calls


def test_mmlu_from_hub_rows(fake_hub: list, tmp_path: Path) -> None:
    data = get_task("mmlu_anatomy").load(DataSource(None))
    assert [(s.id, s.target, s.choices) for s in data.samples] == [("anatomy/0", 2, ("a", "b", "c", "d"))]
    assert data.fewshot["anatomy"][0].target == 0 and data.origin == "hf:cais/mmlu"


def test_ceval_and_race_from_hub_rows(fake_hub: list) -> None:
    ceval = get_task("ceval_accountant").load(DataSource(None))
    assert [(s.id, s.target) for s in ceval.samples] == [("accountant/0", 1)]
    race = get_task("race_high").load(DataSource(None))
    assert [(s.id, s.target) for s in race.samples] == [("high/high9.txt/0", 2), ("high/high9.txt/1", 0)]


def test_hub_failure_is_the_no_data_error(fake_hub: list) -> None:
    with pytest.raises(DataError, match=r"no data for race.*ehovy/race.*hub load failed"):
        get_task("race_middle").load(DataSource(None))


def test_unreachable_hub_fails_fast_naming_both_ways(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(data_module, "hub_reachable", lambda timeout=3.0: False)
    with pytest.raises(DataError, match=r"EVALKIT_DATA_DIR.*'cais/mmlu'.*not reachable"):
        get_task("mmlu_anatomy").load(DataSource(None))
