"""Reading and writing run logs: one JSONL file per (model, task), the single source of truth.

Line 1 is a header record (schema version, config, model fingerprint, package versions).
Then one record per sample, appended as each finishes (one write per line, so a crash
leaves a valid prefix). A summary record (aggregates, timings) is appended when the run
ends; a resumed run appends more samples and a newer summary. Readers take the last
record for each sample id and the last summary.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from evalkit import jsonl
from evalkit.errors import RunLogError
from evalkit.log.records import (
    READABLE_VERSIONS,
    SCHEMA,
    HeaderRecord,
    SampleRecord,
    SummaryRecord,
)

R = TypeVar("R")


@dataclass
class RunLog:
    """A log as read: its header, the latest record of each sample, the latest summary."""

    path: Path
    header: HeaderRecord
    samples: dict[str, SampleRecord] = field(default_factory=dict)
    summary: SummaryRecord | None = None
    #: sample records in file order, superseded ones included (for auditing)
    record_count: int = 0
    #: byte offset of each sample's latest record
    offsets: dict[str, int] = field(default_factory=dict)

    @property
    def finished_ids(self) -> set[str]:
        """Samples that need no more work: scored without error."""
        return {sid for sid, rec in self.samples.items() if not rec.error}


def read_log(path: Path) -> RunLog:
    """Read and validate a run log; a RunLogError names the file and line of any problem."""
    if not path.is_file():
        raise RunLogError(f"{path}: no such run log")
    with path.open("rb") as fh:
        data = fh.read()
    if not data:
        raise RunLogError(f"{path}: run log is empty (no header record)")
    if not data.endswith(b"\n"):
        line_no = data.count(b"\n") + 1
        raise RunLogError(
            f"{path}: run log is truncated at line {line_no} (incomplete record); "
            "run again with --repair to drop that record and resume, or --overwrite to start over"
        )
    log: RunLog | None = None
    for line_no, offset, record in _records(path, data):
        if log is None:
            log = RunLog(path, _parsed(path, line_no, HeaderRecord.from_json, check_header(path, record)))
            continue
        rtype = record.get("type")
        if rtype == "sample":
            sid = record.get("id")
            if not isinstance(sid, str):
                raise RunLogError(f"{path}:{line_no}: sample record without a string 'id'")
            log.samples[sid] = _parsed(path, line_no, SampleRecord.from_json, record)
            log.offsets[sid] = offset
            log.record_count += 1
        elif rtype == "summary":
            log.summary = _parsed(path, line_no, SummaryRecord.from_json, record)
        else:
            raise RunLogError(f"{path}:{line_no}: unknown record type {rtype!r}")
    assert log is not None
    return log


def _parsed(path: Path, line_no: int, parse: Callable[[Mapping[str, Any]], R], record: Mapping[str, Any]) -> R:
    """A typed record; a RunLogError names the file and line of a malformed one."""
    try:
        return parse(record)
    except (KeyError, TypeError, ValueError, AttributeError, IndexError) as exc:
        kind = record.get("type", "record")
        raise RunLogError(f"{path}:{line_no}: malformed {kind} record ({type(exc).__name__}: {exc})") from None


def repair_log(path: Path) -> int:
    """Drop an incomplete last line (an interrupted write). Returns the bytes removed."""
    data = path.read_bytes()
    if data.endswith(b"\n") or not data:
        return 0
    keep = data.rfind(b"\n") + 1
    if keep == 0:
        raise RunLogError(f"{path}: even the header record is incomplete; use --overwrite")
    with path.open("r+b") as fh:
        fh.truncate(keep)
    return len(data) - keep


def _records(path: Path, data: bytes) -> Iterator[tuple[int, int, dict[str, Any]]]:
    """(line number, byte offset, record) of each non-blank line."""
    offset = 0
    for line_no, raw in enumerate(data.split(b"\n")[:-1], start=1):
        if raw.strip():
            yield line_no, offset, parse_record(path, line_no, raw)
        offset += len(raw) + 1


def parse_record(path: Path, line_no: int, raw: bytes) -> dict[str, Any]:
    """One log line as a record; a RunLogError names the file and line."""
    try:
        record = jsonl.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise RunLogError(f"{path}:{line_no}: not a JSON record ({exc.__class__.__name__})") from None
    if not isinstance(record, dict):
        raise RunLogError(f"{path}:{line_no}: record is not a JSON object")
    return record


def check_header(path: Path, record: Mapping[str, Any]) -> dict[str, Any]:
    if record.get("type") != "header" or record.get("schema") != SCHEMA:
        raise RunLogError(f"{path}:1: not an evalkit run log (no '{SCHEMA}' header record)")
    version = record.get("schema_version")
    if version not in READABLE_VERSIONS:
        readable = ", ".join(map(str, READABLE_VERSIONS))
        raise RunLogError(
            f"{path}:1: run-log schema_version {version!r} is not supported (this evalkit reads {readable})"
        )
    for key in ("task", "model", "identity"):
        if key not in record:
            raise RunLogError(f"{path}:1: header lacks the field {key!r}")
    return dict(record)


@dataclass(frozen=True)
class LogContent:
    """A finished log's content as its writer still holds it, so that readers such as the
    reports index need not parse the file again. `samples` and `offsets` are keyed by
    sample id, in the order the ids first appear in the file; records are as written (JSON)."""

    header: Mapping[str, Any]
    summary: Mapping[str, Any]
    samples: Mapping[str, Mapping[str, Any]]
    offsets: Mapping[str, int]


class LogWriter:
    """Appends records with one os.write per call (O_APPEND); remembers the byte offset of
    each sample record it writes (the log has one writer)."""

    def __init__(self, path: Path) -> None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        except OSError as exc:
            raise RunLogError(f"{path}: cannot write the run log ({exc.strerror or exc})") from None
        self.path = path
        self._end = os.fstat(self._fd).st_size
        self.sample_offsets: dict[str, int] = {}

    def append(self, record: Mapping[str, Any]) -> None:
        """Append one record given as JSON (see `evalkit.log.records` for the typed forms)."""
        self.append_many([record])

    def _write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            written = os.write(self._fd, view)
            view = view[written:]

    def append_many(self, records: Sequence[Mapping[str, Any]]) -> None:
        """One write for a chunk of records (a crash can cut only the last line)."""
        lines = [jsonl.dumps_line(r) for r in records]
        for record, line in zip(records, lines, strict=True):
            if record.get("type") == "sample":
                self.sample_offsets[record["id"]] = self._end
            self._end += len(line)
        self._write(b"".join(lines))

    def close(self) -> None:
        os.fsync(self._fd)
        os.close(self._fd)

    def __enter__(self) -> LogWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def find_logs(path: Path) -> list[Path]:
    """A log file, or every *.jsonl run log under a directory."""
    if path.is_file():
        return [path]
    if path.is_dir():
        return sorted(p for p in path.rglob("*.jsonl") if p.is_file())
    raise RunLogError(f"{path}: no such run log or directory")
