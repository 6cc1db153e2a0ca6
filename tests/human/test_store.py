"""The vote store: idempotent votes, resume, and ≥ 20 concurrent writer processes."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from evalkit.errors import ConfigError
from evalkit.human.store import ANNOTATOR, Assignment, Vote, VoteStore
from tests.conftest import REPO

WRITERS = 20
SLOTS_PER_WRITER = 100  # 2,000 votes


def small_store(path: Path, annotators: int, slots: int) -> None:
    store = VoteStore(path, create=True)
    store.set_meta({"config": {"design": "pairwise"}})
    store.add_items({f"q{i}": {"question": f"q{i}", "turn": 1, "models": ["x", "y"]} for i in range(slots)})
    for a in range(annotators):
        store.add_annotator(f"tok{a}", f"ann{a}", ANNOTATOR)
        store.add_assignments([Assignment(f"ann{a}", s, f"q{s}", (s % 2, 1 - s % 2)) for s in range(slots)])
    store.close()


def vote(annotator: str, slot: int, vote_id: str) -> Vote:
    return Vote(vote_id, annotator, slot, f"q{slot}", (slot % 2, 1 - slot % 2), {"choice": str(slot % 2)})


def writer(path: str, annotator: str, slots: int) -> int:
    """What the page does per vote, twice (a double click) and once more with a new id (a
    reload's new page): only the first call may store."""
    store = VoteStore(Path(path))
    stored = 0
    for slot in range(slots):
        stored += store.submit(vote(annotator, slot, f"{annotator}-{slot}"))
        stored += store.submit(vote(annotator, slot, f"{annotator}-{slot}"))
        stored += store.submit(vote(annotator, slot, f"{annotator}-{slot}-reloaded"))
    store.close()
    return stored


def test_concurrent_writers_lose_and_duplicate_nothing(tmp_path: Path) -> None:
    db = tmp_path / "votes.db"
    small_store(db, WRITERS, SLOTS_PER_WRITER)
    code = "import sys; from tests.human.test_store import writer; print(writer(sys.argv[1], sys.argv[2], int(sys.argv[3])))"
    procs = [subprocess.Popen([sys.executable, "-c", code, str(db), f"ann{a}", str(SLOTS_PER_WRITER)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO)
             for a in range(WRITERS)]
    outs = [p.communicate(timeout=600) for p in procs]  # a bound, not a timed assertion
    assert [p.returncode for p in procs] == [0] * WRITERS, [err[-500:] for _, err in outs]
    assert [int(out) for out, _ in outs] == [SLOTS_PER_WRITER] * WRITERS
    raw = sqlite3.connect(db)
    assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    rows = raw.execute("SELECT annotator, slot, vote_id FROM votes").fetchall()
    assert len(rows) == WRITERS * SLOTS_PER_WRITER  # 2,000: none lost
    assert len({(a, s) for a, s, _ in rows}) == len(rows)  # none duplicated
    assert {v for _, _, v in rows} == {f"ann{a}-{s}" for a in range(WRITERS) for s in range(SLOTS_PER_WRITER)}
    store = VoteStore(db)
    assert all(store.next_assignment(f"ann{a}") is None for a in range(WRITERS))
    assert store.progress("ann0") == (SLOTS_PER_WRITER, SLOTS_PER_WRITER)


def test_resume_starts_at_the_first_slot_without_a_vote(tmp_path: Path) -> None:
    db = tmp_path / "votes.db"
    small_store(db, 1, 5)
    store = VoteStore(db)
    for slot in (0, 1, 3):
        assert store.submit(vote("ann0", slot, f"v{slot}"))
    nxt = store.next_assignment("ann0")
    assert nxt is not None and nxt.slot == 2
    assert store.progress("ann0") == (3, 5)
    store.close()
    reopened = VoteStore(db)  # durable: another connection sees every committed vote
    assert [v.slot for v in reopened.votes()] == [0, 1, 3]


def test_a_vote_for_a_slot_not_assigned_or_shown_otherwise_is_refused(tmp_path: Path) -> None:
    db = tmp_path / "votes.db"
    small_store(db, 1, 2)
    store = VoteStore(db)
    with pytest.raises(ValueError, match="no slot 7"):
        store.submit(Vote("x", "ann0", 7, "q7", (0, 1), {"choice": "0"}))
    with pytest.raises(ValueError, match="no slot 0"):
        store.submit(Vote("x", "ann0", 0, "q0", (1, 0), {"choice": "0"}))  # slot 0 shows (0, 1)
    assert store.votes() == []


def test_a_missing_or_foreign_file_is_one_line_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such vote store"):
        VoteStore(tmp_path / "nope.db")
    junk = tmp_path / "junk.db"
    junk.write_text("not a database at all, just text " * 100)
    with pytest.raises(ConfigError, match="junk.db: not a vote store"):
        VoteStore(junk)
