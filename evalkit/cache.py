"""Content-addressed response cache, safe under concurrent writers (SQLite in WAL mode).

Keys are sha256 over (model fingerprint, request, decoding parameters, sample repeat index),
so two models never share entries (the trap of lm-eval's CachingLM). Only successful
responses are stored: a failed request is retried on the next run.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
from collections.abc import Iterable, Sequence
from pathlib import Path

from evalkit.types import LoglikelihoodRequest, Request, Response, canonical_json

_BATCH = 500  # SQLite's default limit on host parameters is 999


def default_cache_dir() -> Path:
    env = os.environ.get("EVALKIT_CACHE_DIR")
    if env:
        return Path(env)
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "evalkit"


def request_key(fingerprint_hash: str, request: Request) -> str:
    if isinstance(request, LoglikelihoodRequest):
        # the hot path (4 per MMLU question): length-prefixed fields, no JSON encoding
        material = f"{fingerprint_hash}\x00ll\x00{len(request.context)}\x00{request.context}{request.continuation}"
    else:
        material = fingerprint_hash + "\x00" + canonical_json(request.to_dict())
    return hashlib.sha256(material.encode("utf-8")).hexdigest()


class ResponseCache:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        # autocommit mode; explicit BEGIN for batches. timeout waits on other writers' locks.
        self._db = sqlite3.connect(str(path), timeout=60, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("PRAGMA busy_timeout=60000")
        self._db.execute("CREATE TABLE IF NOT EXISTS responses (key TEXT PRIMARY KEY, value TEXT NOT NULL)")

    def get_many(self, keys: Sequence[str]) -> dict[str, Response]:
        found: dict[str, Response] = {}
        for start in range(0, len(keys), _BATCH):
            part = keys[start : start + _BATCH]
            marks = ",".join("?" * len(part))
            rows = self._db.execute(f"SELECT key, value FROM responses WHERE key IN ({marks})", part)
            for key, value in rows:
                found[key] = Response.from_dict(json.loads(value))
        return found

    def put_many(self, items: Iterable[tuple[str, Response]]) -> None:
        rows = [(k, json.dumps(r.to_dict(), ensure_ascii=False)) for k, r in items if r.ok]
        if not rows:
            return
        self._db.execute("BEGIN IMMEDIATE")
        try:
            self._db.executemany("INSERT OR IGNORE INTO responses (key, value) VALUES (?, ?)", rows)
            self._db.execute("COMMIT")
        except BaseException:
            self._db.execute("ROLLBACK")
            raise

    def __len__(self) -> int:
        return int(self._db.execute("SELECT COUNT(*) FROM responses").fetchone()[0])

    def close(self) -> None:
        self._db.close()
