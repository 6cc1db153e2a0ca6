"""The annotation app through Streamlit's AppTest: access refused without the right token,
voting stores by model index and resumes, the admin page shows results."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from evalkit.human.study import admin_token
from tests.conftest import REPO
from tests.human.conftest import make_store

APP = REPO / "human" / "app.py"


def page(monkeypatch: pytest.MonkeyPatch, store: Path, **params: str) -> AppTest:
    import streamlit as st

    st.cache_resource.clear()
    monkeypatch.setenv("EVALKIT_HUMAN_STORE", str(store))
    at = AppTest.from_file(str(APP), default_timeout=60)
    for k, v in params.items():
        at.query_params[k] = v
    at.run()
    assert not at.exception, [e.message for e in at.exception]
    return at


def text(at: AppTest) -> str:
    return " ".join(str(e.value) for kind in ("markdown", "error", "caption", "success", "subheader", "title")
                    for e in getattr(at, kind))


@pytest.fixture
def study(tmp_path: Path, replay_logs: tuple[Path, ...]) -> tuple[Path, dict[str, str], str]:
    store = make_store(tmp_path / "s.db", replay_logs[:2], per_item=2)
    return tmp_path / "s.db", store.annotators(), admin_token(store)


def test_access_is_refused_without_the_right_token(monkeypatch: pytest.MonkeyPatch,
                                                   study: tuple[Path, dict[str, str], str]) -> None:
    db, tokens, admin = study
    for params, why in (({}, "needs your token"), ({"token": "wrong"}, "unknown token"),
                        ({"token": "wrong", "page": "admin"}, "unknown token"),
                        ({"token": tokens["ann1"], "page": "admin"}, "needs the admin token")):
        at = page(monkeypatch, db, **params)
        assert "Access refused" in text(at) and why in text(at), params
        assert not at.button and not at.table and "Response A" not in text(at)
    assert "Human evaluation: results" in text(page(monkeypatch, db, token=admin, page="admin"))


def test_a_vote_is_stored_by_model_and_the_queue_resumes(monkeypatch: pytest.MonkeyPatch,
                                                         study: tuple[Path, dict[str, str], str]) -> None:
    from evalkit.human.store import VoteStore

    db, tokens, admin = study
    at = page(monkeypatch, db, token=tokens["ann1"])
    assert "Response A" in text(at) and "Item 1 of 10" in text(at)
    first = VoteStore(db).next_assignment("ann1")
    assert first is not None
    at.button[0].click().run()  # "A is better": the left response, i.e. model first.shown[0]
    votes = VoteStore(db).votes()
    assert [(v.slot, v.answer["choice"]) for v in votes] == [(first.slot, str(first.shown[0]))]
    resumed = page(monkeypatch, db, token=tokens["ann1"])  # a new session: the next slot, not the voted one
    assert f"Item {first.slot + 2} of" in text(resumed)
    report = page(monkeypatch, db, token=admin, page="admin")
    assert "win/tie/loss" in text(report) and report.table
