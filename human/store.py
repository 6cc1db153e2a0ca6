"""The durable vote store: one SQLite file in WAL mode, one row per vote.

Why a vote cannot be duplicated or lost: a vote's primary key is the id the page generated
when it showed the item (a double click sends the same id twice), and (annotator, slot) is
unique too (a reload makes a new page and a new id, but the slot is the same); every write is
one `INSERT ... ON CONFLICT DO NOTHING` in its own immediate transaction, committed with
synchronous=FULL before the page moves on. Any number of processes may write at once: SQLite
serialises the writers and `busy_timeout` makes a writer wait for the lock instead of failing.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from evalkit.errors import ConfigError

SCHEMA_VERSION = 1
BUSY_TIMEOUT_MS = 60_000
ADMIN = "admin"
ANNOTATOR = "annotator"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS annotators (
    token TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE, role TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS items (
    item_id TEXT PRIMARY KEY, payload TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS assignments (
    annotator TEXT NOT NULL, slot INTEGER NOT NULL, item_id TEXT NOT NULL,
    shown TEXT NOT NULL, attention TEXT, PRIMARY KEY (annotator, slot));
CREATE TABLE IF NOT EXISTS votes (
    vote_id TEXT PRIMARY KEY, annotator TEXT NOT NULL, slot INTEGER NOT NULL,
    item_id TEXT NOT NULL, shown TEXT NOT NULL, answer TEXT NOT NULL, reason TEXT NOT NULL,
    shown_at REAL NOT NULL, submitted_at REAL NOT NULL, UNIQUE (annotator, slot));
"""


@dataclass(frozen=True)
class Assignment:
    """One slot of an annotator's queue: which item, in which order its responses are shown
    (`shown`: indices into the item's models, left to right), and what attention check it is."""

    annotator: str
    slot: int
    item_id: str
    shown: tuple[int, ...]
    #: None, or "duplicate:<item>" / "swapped:<item>": repeats that item, shown in an earlier slot
    attention: str | None = None


@dataclass(frozen=True)
class Vote:
    vote_id: str
    annotator: str
    slot: int
    item_id: str
    shown: tuple[int, ...]
    #: the design's answer, by model index (never by side): see human/designs.py
    answer: Mapping[str, Any]
    reason: str = ""
    shown_at: float = 0.0
    submitted_at: float = field(default_factory=time.time)


class VoteStore:
    """One connection to the store; open one per thread or process."""

    def __init__(self, path: Path, *, create: bool = False) -> None:
        if not create and not path.is_file():
            raise ConfigError(f"{path}: no such vote store (create it with `evalkit human serve`)")
        self.path = path
        try:
            self.db = sqlite3.connect(str(path), timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None,
                                      check_same_thread=False)
            self.db.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=FULL")
            if create:
                self.db.executescript(_SCHEMA)  # idempotent (IF NOT EXISTS); runs in its own transaction
            version = self.meta().get("schema_version")
        except sqlite3.DatabaseError as exc:
            raise ConfigError(f"{path}: not a vote store ({exc})") from None
        if version is None and create:
            self.set_meta({"schema_version": SCHEMA_VERSION})
        elif version != SCHEMA_VERSION:
            raise ConfigError(f"{path}: not a vote store of schema {SCHEMA_VERSION} (found {version!r})")

    def close(self) -> None:
        self.db.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield self.db
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    # --- study set-up ------------------------------------------------------------------------
    def meta(self) -> dict[str, Any]:
        try:
            rows = self.db.execute("SELECT key, value FROM meta").fetchall()
        except sqlite3.OperationalError:
            return {}
        return {k: json.loads(v) for k, v in rows}

    def set_meta(self, values: Mapping[str, Any]) -> None:
        with self.transaction() as db:
            db.executemany("INSERT OR REPLACE INTO meta VALUES (?, ?)",
                           [(k, json.dumps(v)) for k, v in values.items()])

    def add_annotator(self, token: str, name: str, role: str) -> None:
        with self.transaction() as db:
            db.execute("INSERT INTO annotators VALUES (?, ?, ?)", (token, name, role))

    def add_items(self, items: Mapping[str, Mapping[str, Any]]) -> None:
        with self.transaction() as db:
            db.executemany("INSERT INTO items VALUES (?, ?)",
                           [(k, json.dumps(v, sort_keys=True)) for k, v in items.items()])

    def add_assignments(self, assignments: Sequence[Assignment]) -> None:
        with self.transaction() as db:
            db.executemany("INSERT INTO assignments VALUES (?, ?, ?, ?, ?)",
                           [(a.annotator, a.slot, a.item_id, json.dumps(list(a.shown)), a.attention)
                            for a in assignments])

    # --- what the pages read -----------------------------------------------------------------
    def who(self, token: str | None) -> tuple[str, str] | None:
        """(name, role) of a token; None for no token or an unknown one."""
        if not token:
            return None
        row = self.db.execute("SELECT name, role FROM annotators WHERE token = ?", (token,)).fetchone()
        return (str(row[0]), str(row[1])) if row else None

    def annotators(self) -> dict[str, str]:
        """name -> token, annotators only (the admin's token is not listed)."""
        rows = self.db.execute("SELECT name, token FROM annotators WHERE role = ? ORDER BY name", (ANNOTATOR,))
        return {str(n): str(t) for n, t in rows}

    def item(self, item_id: str) -> dict[str, Any]:
        row = self.db.execute("SELECT payload FROM items WHERE item_id = ?", (item_id,)).fetchone()
        if row is None:
            raise KeyError(item_id)
        payload: dict[str, Any] = json.loads(row[0])
        return payload

    def items(self) -> dict[str, dict[str, Any]]:
        return {str(k): json.loads(v) for k, v in self.db.execute("SELECT item_id, payload FROM items")}

    def assignments(self, annotator: str | None = None) -> list[Assignment]:
        query = "SELECT annotator, slot, item_id, shown, attention FROM assignments"
        args: tuple[str, ...] = ()
        if annotator is not None:
            query, args = query + " WHERE annotator = ?", (annotator,)
        rows = self.db.execute(query + " ORDER BY annotator, slot", args).fetchall()
        return [Assignment(str(a), int(s), str(i), tuple(json.loads(sh)), at) for a, s, i, sh, at in rows]

    def next_assignment(self, annotator: str) -> Assignment | None:
        """The first slot of the annotator's queue without a vote: where they resume."""
        row = self.db.execute(
            "SELECT a.annotator, a.slot, a.item_id, a.shown, a.attention FROM assignments a "
            "LEFT JOIN votes v ON v.annotator = a.annotator AND v.slot = a.slot "
            "WHERE a.annotator = ? AND v.vote_id IS NULL ORDER BY a.slot LIMIT 1", (annotator,)).fetchone()
        if row is None:
            return None
        return Assignment(str(row[0]), int(row[1]), str(row[2]), tuple(json.loads(row[3])), row[4])

    def progress(self, annotator: str) -> tuple[int, int]:
        """(votes given, slots assigned)."""
        done = self.db.execute("SELECT COUNT(*) FROM votes WHERE annotator = ?", (annotator,)).fetchone()[0]
        total = self.db.execute("SELECT COUNT(*) FROM assignments WHERE annotator = ?", (annotator,)).fetchone()[0]
        return int(done), int(total)

    # --- votes -------------------------------------------------------------------------------
    def submit(self, vote: Vote) -> bool:
        """Store a vote once; True when this call stored it, False when it was already there
        (the same vote id, or another vote for the same annotator and slot)."""
        assigned = self.db.execute("SELECT item_id, shown FROM assignments WHERE annotator = ? AND slot = ?",
                                   (vote.annotator, vote.slot)).fetchone()
        if assigned is None or assigned[0] != vote.item_id or tuple(json.loads(assigned[1])) != vote.shown:
            raise ValueError(f"vote {vote.vote_id}: {vote.annotator} has no slot {vote.slot} showing that item")
        with self.transaction() as db:
            cursor = db.execute(
                "INSERT INTO votes VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                (vote.vote_id, vote.annotator, vote.slot, vote.item_id, json.dumps(list(vote.shown)),
                 json.dumps(dict(vote.answer), sort_keys=True), vote.reason, vote.shown_at, vote.submitted_at))
            return cursor.rowcount == 1

    def votes(self) -> list[Vote]:
        rows = self.db.execute("SELECT vote_id, annotator, slot, item_id, shown, answer, reason, shown_at, "
                               "submitted_at FROM votes ORDER BY annotator, slot").fetchall()
        return [Vote(str(v), str(a), int(s), str(i), tuple(json.loads(sh)), json.loads(ans), str(r), float(t0),
                     float(t1)) for v, a, s, i, sh, ans, r, t0, t1 in rows]
