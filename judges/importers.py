"""Judgments made elsewhere, read into evalkit's judgment records so they aggregate like its own.

- AlpacaEval `annotations.json` (a JSON array, optionally .gz): `instruction`, `dataset`,
  `generator_1` (the reference), `generator_2` (the model), `output_1`, `output_2`,
  `preference` (1 = output_1 better, 2 = output_2 better, 0 or 1.5 = draw; a string or number;
  null = no verdict). Questions are keyed like evalkit's alpaca_eval task: a hash of the instruction.
- FastChat `model_judgment/*_pair.jsonl` (gen_judgment.py, `play_a_match_pair`): `question_id`,
  `model_1`, `model_2`, `g1_winner` (model_1 shown as A) and `g2_winner` (the swapped order),
  each "model_1" | "model_2" | "tie" | "error", `judge` [model, prompt name], `turn`.
- FastChat `*_single.jsonl` (`play_a_match_single`): `question_id`, `model`, `score` (-1 =
  no rating), `judge`, `turn`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from evalkit.backends.replay_formats import read_json_array
from evalkit.data import read_jsonl
from evalkit.errors import DataError
from evalkit.judges.judgments import Judgment, PairJudgment, ReferenceJudgment, SingleJudgment
from evalkit.types import stable_hash

FORMATS = ("alpaca_eval", "fastchat_pair", "fastchat_single")


def detect_format(path: Path) -> str:
    name = path.name
    if name.endswith("_pair.jsonl"):
        return "fastchat_pair"
    if name.endswith("_single.jsonl"):
        return "fastchat_single"
    if ".json" in name and not name.endswith(".jsonl"):
        return "alpaca_eval"
    raise DataError(f"{path}: cannot tell the judgment format from the name; give --format "
                    f"({', '.join(FORMATS)})")


def import_judgments(path: Path, fmt: str | None = None) -> list[Judgment]:
    if not path.is_file():
        raise DataError(f"{path}: no such judgment file")
    fmt = fmt or detect_format(path)
    if fmt == "alpaca_eval":
        return list(read_alpaca_eval(path))
    if fmt == "fastchat_pair":
        return list(read_fastchat_pair(path))
    if fmt == "fastchat_single":
        return list(read_fastchat_single(path))
    raise DataError(f"unknown judgment format {fmt!r} (known: {', '.join(FORMATS)})")


def read_alpaca_eval(path: Path) -> list[ReferenceJudgment]:
    out = []
    for line, row in read_json_array(path):
        where = f"{path}:{line}"
        for key in ("instruction", "generator_1", "generator_2", "preference"):
            if key not in row:
                raise DataError(f"{where}: missing field {key!r}")
        out.append(ReferenceJudgment(
            question=stable_hash(row["instruction"], 12), category=str(row.get("dataset") or ""),
            model=str(row["generator_2"]), baseline=str(row["generator_1"]),
            preference=_preference(row["preference"], where),
            chars_model=_chars(row.get("output_2")), chars_baseline=_chars(row.get("output_1"))))
    return out


def _preference(raw: Any, where: str) -> float | None:
    if raw is None or raw == "":
        return None
    try:
        value = float(raw)
    except (TypeError, ValueError):
        raise DataError(f"{where}: field 'preference' must be a number, got {raw!r}") from None
    return None if math.isnan(value) else value


def _chars(text: Any) -> int | None:
    return len(text) if isinstance(text, str) else None


def _fastchat_common(path: Path, line: int, row: Mapping[str, Any], keys: tuple[str, ...]) -> tuple[str, int]:
    for key in ("question_id", "turn", *keys):
        if key not in row:
            raise DataError(f"{path}:{line}: missing field {key!r}")
    try:
        return str(row["question_id"]), int(row["turn"])
    except (TypeError, ValueError):
        raise DataError(f"{path}:{line}: field 'turn' must be an integer") from None


#: FastChat's per-order winner -> the verdict letter in that order
_G1 = {"model_1": "A", "model_2": "B", "tie": "tie", "error": None}
_G2 = {"model_2": "A", "model_1": "B", "tie": "tie", "error": None}


def read_fastchat_pair(path: Path) -> list[PairJudgment]:
    out = []
    for line, row in read_jsonl(path):
        question, turn = _fastchat_common(path, line, row, ("model_1", "model_2", "g1_winner", "g2_winner"))
        category = str(row.get("category") or "")
        for order, field, table in (("ab", "g1_winner", _G1), ("ba", "g2_winner", _G2)):
            if row[field] not in table:
                raise DataError(f"{path}:{line}: field {field!r} must be one of {', '.join(table)}, got {row[field]!r}")
            out.append(PairJudgment(question, turn, category, str(row["model_1"]), str(row["model_2"]),
                                    order, table[row[field]]))
    return out


def read_fastchat_single(path: Path) -> list[SingleJudgment]:
    out = []
    for line, row in read_jsonl(path):
        question, turn = _fastchat_common(path, line, row, ("model", "score"))
        try:
            score = float(row["score"])
        except (TypeError, ValueError):
            raise DataError(f"{path}:{line}: field 'score' must be a number") from None
        out.append(SingleJudgment(question, turn, str(row.get("category") or ""), str(row["model"]),
                                  None if score == -1 else score))
    return out
