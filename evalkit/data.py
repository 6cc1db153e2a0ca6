"""Dataset sources: local files under EVALKIT_DATA_DIR (or --data-dir), else Hugging Face.

Local files are read in place. Every problem is a DataError naming the file, line and
field, so a user can fix their copy of the data.
"""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from evalkit.errors import DataError
from evalkit.task import DataSource

DATA_DIR_ENV = "EVALKIT_DATA_DIR"


def resolve_data_dir(flag: str | None) -> Path | None:
    """--data-dir wins over EVALKIT_DATA_DIR; a directory that does not exist is an error."""
    raw = flag if flag is not None else os.environ.get(DATA_DIR_ENV)
    if not raw:
        return None
    path = Path(raw).expanduser()
    if not path.is_dir():
        origin = "--data-dir" if flag is not None else DATA_DIR_ENV
        raise DataError(f"{origin}: data directory {path} does not exist")
    return path


def local_dir(source: DataSource, benchmark: str) -> Path | None:
    """The benchmark's folder under the data directory, if there is one."""
    if source.data_dir is None:
        return None
    folder = source.data_dir / benchmark
    return folder if folder.is_dir() else None


def local_file(source: DataSource, benchmark: str, name: str, origin: str) -> Path:
    """A benchmark that is read only from a local file: that file, or an error saying where it goes."""
    folder = local_dir(source, benchmark)
    path = folder / name if folder is not None else None
    if path is None or not path.is_file():
        where = f"{source.data_dir}/{benchmark}" if source.data_dir else f"$EVALKIT_DATA_DIR/{benchmark}"
        raise DataError(f"no data for {benchmark}: put {name} ({origin}) in {where}")
    return path


def no_data_error(benchmark: str, hub_id: str, source: DataSource, reason: str = "") -> DataError:
    where = f"{source.data_dir}/{benchmark}" if source.data_dir else f"$EVALKIT_DATA_DIR/{benchmark}"
    why = f" ({reason})" if reason else ""
    return DataError(
        f"no data for {benchmark}: put the files in {where} (set EVALKIT_DATA_DIR or --data-dir), "
        f"or go online so evalkit can load Hugging Face {hub_id!r}{why}"
    )


def read_text(path: Path) -> str:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise DataError(f"{path}: cannot read ({exc.strerror})") from None
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise DataError(f"{path}:{line}: not valid UTF-8 (byte 0x{raw[exc.start]:02x} at offset {exc.start})") from None


def read_csv(path: Path) -> list[list[str]]:
    text = read_text(path)
    if not text.strip():
        raise DataError(f"{path}: file is empty")
    try:
        return [row for row in csv.reader(io.StringIO(text, newline="")) if row]
    except csv.Error as exc:
        raise DataError(f"{path}: malformed CSV ({exc})") from None


def csv_records(path: Path, columns: Sequence[str], *, header: bool | None = None) -> Iterator[tuple[int, dict[str, str]]]:
    """Yield (line number, record) with exactly `columns`.

    header=None detects a header row by its first cell matching the first column name.
    Without a header the columns are taken positionally.
    """
    rows = read_csv(path)
    has_header = rows[0][0].strip().lower() == columns[0].lower() if header is None else header
    if has_header:
        names = [c.strip() for c in rows[0]]
        missing = [c for c in columns if c not in names]
        if missing:
            raise DataError(f"{path}:1: missing column {missing[0]!r} (header has {', '.join(names)})")
        index = [names.index(c) for c in columns]
        body = rows[1:]
        first_line = 2
    else:
        index = list(range(len(columns)))
        body = rows
        first_line = 1
    if not body:
        raise DataError(f"{path}: no data rows")
    for offset, row in enumerate(body):
        line = first_line + offset
        if len(row) <= max(index):
            field = columns[min(len(columns) - 1, len(row))] if has_header else f"column {len(row) + 1}"
            raise DataError(f"{path}:{line}: row has {len(row)} fields, missing {field!r}")
        yield line, {c: row[i] for c, i in zip(columns, index, strict=True)}


def read_jsonl(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    text = read_text(path) if path.suffix != ".gz" else _read_gz(path)
    return jsonl_objects(path, text)


def jsonl_objects(path: Path, text: str) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, object) for each non-blank line; errors name the file and line."""
    for line_no, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataError(f"{path}:{line_no}: malformed JSON ({exc.msg})") from None
        if not isinstance(record, dict):
            raise DataError(f"{path}:{line_no}: expected a JSON object")
        yield line_no, record


def _read_gz(path: Path) -> str:
    import gzip
    import zlib

    try:
        raw = gzip.decompress(path.read_bytes())
    except (OSError, EOFError, zlib.error) as exc:
        raise DataError(f"{path}: corrupt or truncated gzip ({exc})") from None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: not valid UTF-8 after decompression (offset {exc.start})") from None


HUB_HOST = "huggingface.co"


def hub_reachable(timeout: float = 3.0) -> bool:
    """A quick connect test, so that offline users get the error at once instead of after
    the `datasets` library's minute of retries. HF_ENDPOINT (a mirror) is respected."""
    import socket
    from urllib.parse import urlparse

    if os.environ.get("HF_DATASETS_OFFLINE") == "1" or os.environ.get("HF_HUB_OFFLINE") == "1":
        return True  # the user wants the local datasets cache: let `datasets` handle it
    endpoint = urlparse(os.environ.get("HF_ENDPOINT", f"https://{HUB_HOST}"))
    try:
        with socket.create_connection((endpoint.hostname or HUB_HOST, endpoint.port or 443), timeout=timeout):
            return True
    except OSError:
        return False


def load_hub(benchmark: str, hub_id: str, source: DataSource, config: str | None, split: str) -> list[dict[str, Any]]:
    """Rows of a Hugging Face dataset split; any failure becomes the 'no data' error."""
    if not source.allow_hub:
        raise no_data_error(benchmark, hub_id, source, "hub loading is disabled")
    try:
        import datasets  # heavy: only when no local data
    except ImportError:
        raise no_data_error(benchmark, hub_id, source, "the `datasets` package is not installed") from None
    if not hub_reachable():
        raise no_data_error(benchmark, hub_id, source, f"{HUB_HOST} is not reachable")
    try:
        ds = datasets.load_dataset(hub_id, config, split=split)
    except Exception as exc:  # offline, unknown config, auth...
        reason = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
        raise no_data_error(benchmark, hub_id, source, f"hub load failed: {reason}") from None
    return [dict(row) for row in ds]


def parse_answer_index(value: Any, n_choices: int, where: str) -> int:
    """Accept a letter ('A'..) or a 0-based index (0.. or '0'..); anything else names `where`."""
    letters = "ABCDEFGHIJ"[:n_choices]
    text = str(value).strip()
    if text.upper() in letters and len(text) == 1:
        return letters.index(text.upper())
    if text.isdigit() and int(text) < n_choices:
        return int(text)
    raise DataError(f"{where}: answer {text!r} is outside {letters[0]}–{letters[-1]} (or 0–{n_choices - 1})")
