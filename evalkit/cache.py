"""Content-addressed response cache, safe under concurrent writers (SQLite in WAL mode).

Keys are the sha256 digest (32 bytes) of (model fingerprint, request, decoding parameters, sample repeat index),
so two models never share entries (the trap of lm-eval's CachingLM). Only successful
responses are stored: a failed request is retried on the next run. Values are the
responses' JSON (orjson: tens of thousands are written per run).
"""

from __future__ import annotations

import atexit
import hashlib
import os
import queue
import sqlite3
import threading
from collections.abc import Iterable, Sequence
from pathlib import Path

from evalkit import jsonl
from evalkit.types import LoglikelihoodRequest, Request, Response, canonical_json

_BATCH = 500  # SQLite's default limit on host parameters is 999
_TABLE = "responses_v2"


def default_cache_dir() -> Path:
    env = os.environ.get("EVALKIT_CACHE_DIR")
    if env:
        return Path(env)
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "evalkit"


def request_key(fingerprint_hash: str, request: Request) -> bytes:
    return request_keys(fingerprint_hash, [request])[0]


def request_keys(fingerprint_hash: str, requests: Sequence[Request]) -> list[bytes]:
    """The cache key of each request. Log-likelihood requests (the hot path: 4 per MMLU
    question, sharing one context) hash their context once, then (digest, continuation)."""
    ll_prefix = f"{fingerprint_hash}\x00ll\x00".encode()
    context_digests: dict[str, bytes] = {}
    keys = []
    for request in requests:
        if isinstance(request, LoglikelihoodRequest):
            digest = context_digests.get(request.context)
            if digest is None:
                digest = context_digests[request.context] = hashlib.sha256(request.context.encode("utf-8")).digest()
            keys.append(hashlib.sha256(ll_prefix + digest + request.continuation.encode("utf-8")).digest())
        else:
            material = fingerprint_hash + "\x00" + canonical_json(request.to_dict())
            keys.append(hashlib.sha256(material.encode("utf-8")).digest())
    return keys


class ResponseCache:
    """get_many / put_many by request key. Writes go to SQLite on a writer thread (SQLite
    releases the GIL, so inserting overlaps the run's own work); until committed they are
    answered from memory. `close()` (also called at exit) waits for every write."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._db = _connect(path)
        # v2: binary keys and values (v1 stored hex keys and JSON text)
        self._db.execute(f"CREATE TABLE IF NOT EXISTS {_TABLE} (key BLOB PRIMARY KEY, value BLOB NOT NULL)")
        self._pending: dict[bytes, bytes] = {}
        self._lock = threading.Lock()
        self._queue: queue.SimpleQueue[list[tuple[bytes, bytes]] | None] = queue.SimpleQueue()
        self._writer: threading.Thread | None = None
        self._write_error: BaseException | None = None

    def get_many(self, keys: Sequence[bytes]) -> dict[bytes, Response]:
        found: dict[bytes, Response] = {}
        with self._lock:
            pending = {k: self._pending[k] for k in keys if k in self._pending} if self._pending else {}
        for key, value in pending.items():
            found[key] = Response.from_dict(jsonl.loads(value))
        rest = [k for k in keys if k not in pending] if pending else keys
        for start in range(0, len(rest), _BATCH):
            part = rest[start : start + _BATCH]
            marks = ",".join("?" * len(part))
            rows = self._db.execute(f"SELECT key, value FROM {_TABLE} WHERE key IN ({marks})", part)
            for key, value in rows:
                found[key] = Response.from_dict(jsonl.loads(value))
        return found

    def put_many(self, items: Iterable[tuple[bytes, Response]]) -> None:
        rows = [(k, jsonl.dumps(r.to_dict())) for k, r in items if r.ok]
        if not rows:
            return
        self._raise_write_error()
        with self._lock:
            self._pending.update(rows)
        if self._writer is None:
            self._writer = threading.Thread(target=self._write_loop, name="evalkit-cache-writer", daemon=True)
            self._writer.start()
            atexit.register(self.close)
        self._queue.put(rows)

    def _write_loop(self) -> None:
        db = _connect(self.path)
        try:
            while (rows := self._queue.get()) is not None:
                try:
                    _insert(db, rows)
                except BaseException as exc:  # reported to the run by the next put_many or close
                    self._write_error = exc
                with self._lock:
                    for key, _ in rows:
                        self._pending.pop(key, None)
        finally:
            db.close()

    def flush(self) -> None:
        """Wait until every response handed to put_many is committed."""
        if self._writer is not None:
            self._queue.put(None)
            self._writer.join()
            self._writer = None
            atexit.unregister(self.close)
        self._raise_write_error()

    def _raise_write_error(self) -> None:
        if self._write_error is not None:
            error, self._write_error = self._write_error, None
            raise error

    def __len__(self) -> int:
        self.flush()
        return int(self._db.execute(f"SELECT COUNT(*) FROM {_TABLE}").fetchone()[0])

    def close(self) -> None:
        try:
            self.flush()
        finally:
            self._db.close()


def _connect(path: Path) -> sqlite3.Connection:
    # autocommit mode; explicit BEGIN for batches. timeout waits on other writers' locks.
    db = sqlite3.connect(str(path), timeout=60, isolation_level=None, check_same_thread=False)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    db.execute("PRAGMA busy_timeout=60000")
    return db


def _insert(db: sqlite3.Connection, rows: list[tuple[bytes, bytes]]) -> None:
    db.execute("BEGIN IMMEDIATE")
    try:
        db.executemany(f"INSERT OR IGNORE INTO {_TABLE} (key, value) VALUES (?, ?)", rows)
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise
