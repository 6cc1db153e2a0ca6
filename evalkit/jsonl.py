"""JSON lines, fast: orjson on the hot path, the standard library where orjson would differ.

Run logs and the response cache encode tens of thousands of small records per run; orjson
does that several times faster than `json`. orjson writes NaN and ±Infinity as null and
rejects some inputs (non-string keys, huge integers, numpy scalars), so a record is checked
by decoding it again: when the round trip does not give back an equal record, the standard
library writes it (NaN stays NaN, as Python's json reads it back).
"""

from __future__ import annotations

import json
from typing import Any

import orjson

#: str.splitlines() splits on these, so one record must never contain them raw
_LINE_BREAKERS = ((b"\xe2\x80\xa8", b"\\u2028"), (b"\xe2\x80\xa9", b"\\u2029"), (b"\xc2\x85", b"\\u0085"))


def dumps(value: Any) -> bytes:
    """Compact UTF-8 JSON, equal in meaning to `json.dumps(value, ensure_ascii=False)`."""
    try:
        encoded = orjson.dumps(value)
        if orjson.loads(encoded) == value:
            return encoded
    except (TypeError, orjson.JSONEncodeError):
        pass
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def dumps_line(record: Any) -> bytes:
    """One record as one line (newline included) that no line splitter breaks apart."""
    encoded = dumps(record)
    if not encoded.isascii():
        for raw, escaped in _LINE_BREAKERS:
            if raw in encoded:
                encoded = encoded.replace(raw, escaped)
    return encoded + b"\n"


def loads(data: bytes | str) -> Any:
    """Parse JSON; NaN and Infinity (written by the fallback above) are accepted.

    Raises json.JSONDecodeError or UnicodeDecodeError, as `json.loads` does."""
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        return json.loads(data)
