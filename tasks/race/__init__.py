"""RACE (Lai et al., 2017): reading comprehension from Chinese English exams, high and middle.

Two local formats are read from `$EVALKIT_DATA_DIR/race/`:
- the original release: `{split}/{high,middle}/*.txt`, one JSON object per article with
  `article`, `questions`, `options`, `answers`, `id` (split names train/dev/test);
- Hugging Face `ehovy/race` rows (`example_id`, `article`, `question`, `options`, `answer`):
  `{high,middle}/{split}.jsonl` or `{high,middle}/{split}-*.parquet` (split names
  train/validation/test).
Both give the same sample ids: `{level}/{article id}/{question index}`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from functools import partial
from pathlib import Path
from typing import Any

from evalkit.data import load_hub, local_dir, parse_answer_index, read_jsonl, read_text
from evalkit.errors import DataError
from evalkit.families.multiple_choice import MultipleChoiceTask
from evalkit.task import DataSource, TaskData, register_task
from evalkit.types import Sample

HUB_ID = "ehovy/race"
LEVELS = ("high", "middle")
LETTERS = "ABCD"
ORIGINAL_SPLIT = {"test": "test", "validation": "dev", "train": "train"}


class Race(MultipleChoiceTask):
    description = "RACE reading comprehension, 4 options"
    prompt_format = "evalkit race (article, question, lettered options; letters)"
    limit_per_subtask = True
    split = "test"

    def __init__(self, name: str, levels: Sequence[str]) -> None:
        self.name = name
        self.levels = tuple(levels)
        self.categories = {level: level for level in self.levels}

    def load(self, source: DataSource) -> TaskData:
        folder = local_dir(source, "race")
        samples: list[Sample] = []
        for level in self.levels:
            if folder is not None:
                samples.extend(read_local_level(folder, level, self.split))
            else:
                samples.extend(rows_to_samples(load_hub("race", HUB_ID, source, level, self.split), level, HUB_ID))
        return TaskData(tuple(samples), {}, str(folder) if folder else f"hf:{HUB_ID}")

    def question_text(self, sample: Sample) -> str:
        options = "".join(f"\n{LETTERS[i]}. {c}" for i, c in enumerate(sample.choices))
        return f"Article: {sample.metadata['article'].strip()}\n\nQuestion: {str(sample.input).strip()}{options}\nAnswer:"

    def render_prompt(self, sample: Sample, shots: Sequence[Sample]) -> str:
        parts = [self.question_text(s) + " " + LETTERS[int(s.target)] for s in shots]
        return "\n\n".join([*parts, self.question_text(sample)])


class RaceText(Race):
    """Scored on the full option text: multi-token continuations sharing one long context."""

    report_acc_norm = True

    prompt_format = "evalkit race_text (article, question; full option text)"

    def question_text(self, sample: Sample) -> str:
        return f"Article: {sample.metadata['article'].strip()}\n\nQuestion: {str(sample.input).strip()}\nAnswer:"

    def continuations(self, sample: Sample) -> tuple[str, ...]:
        return tuple(" " + c for c in sample.choices)

    def render_prompt(self, sample: Sample, shots: Sequence[Sample]) -> str:
        parts = [self.question_text(s) + " " + s.choices[int(s.target)] for s in shots]
        return "\n\n".join([*parts, self.question_text(sample)])


def read_local_level(folder: Path, level: str, split: str) -> list[Sample]:
    original = folder / ORIGINAL_SPLIT[split] / level
    if original.is_dir():
        files = sorted(p for p in original.iterdir() if p.suffix in (".txt", ".json"))
        if not files:
            raise DataError(f"{original}: no article files (*.txt)")
        return [s for path in files for s in article_to_samples(path, level)]
    jsonl = folder / level / f"{split}.jsonl"
    if jsonl.is_file():
        return rows_to_samples((row for _, row in read_jsonl(jsonl)), level, str(jsonl))
    parquet = sorted((folder / level).glob(f"{split}-*.parquet"))
    if parquet:
        return rows_to_samples(_read_parquet(parquet), level, str(parquet[0]))
    raise DataError(
        f"{folder}: no RACE {level}/{split} data (looked for {original}/*.txt, {jsonl}, "
        f"{folder / level}/{split}-*.parquet)"
    )


def article_to_samples(path: Path, level: str) -> list[Sample]:
    """One original-format article file: parallel lists of questions, options, answers."""
    try:
        data = json.loads(read_text(path))
    except json.JSONDecodeError as exc:
        raise DataError(f"{path}:{exc.lineno}: malformed JSON ({exc.msg})") from None
    for key in ("article", "questions", "options", "answers"):
        if key not in data:
            raise DataError(f"{path}: missing field {key!r}")
    questions, options, answers = data["questions"], data["options"], data["answers"]
    if not len(questions) == len(options) == len(answers):
        raise DataError(f"{path}: 'questions', 'options' and 'answers' differ in length")
    article_id = str(data.get("id") or path.name)
    return [
        _sample(level, article_id, i, data["article"], q, opts, ans, f"{path}: question {i}")
        for i, (q, opts, ans) in enumerate(zip(questions, options, answers, strict=True))
    ]


def rows_to_samples(rows: Iterable[dict[str, Any]], level: str, origin: str) -> list[Sample]:
    """Hugging Face rows: one question per row; rows of one article share `example_id`."""
    seen: dict[str, int] = {}
    out = []
    for n, row in enumerate(rows):
        for key in ("example_id", "article", "question", "options", "answer"):
            if key not in row:
                raise DataError(f"{origin}: row {n} is missing field {key!r}")
        article_id = str(row["example_id"])
        index = seen.get(article_id, 0)
        seen[article_id] = index + 1
        out.append(_sample(level, article_id, index, row["article"], row["question"], row["options"],
                           row["answer"], f"{origin}: row {n}"))
    return out


def _sample(level: str, article_id: str, index: int, article: str, question: str,
            options: Sequence[str], answer: Any, where: str) -> Sample:
    if len(options) != 4:
        raise DataError(f"{where}: expected 4 options, got {len(options)}")
    return Sample(
        id=f"{level}/{article_id}/{index}",
        input=question,
        choices=tuple(options),
        target=parse_answer_index(answer, 4, where),
        subtask=level,
        metadata={"article": article},
    )


def _read_parquet(paths: Sequence[Path]) -> list[dict[str, Any]]:
    try:
        import pandas as pd
    except ImportError:
        raise DataError(f"{paths[0]}: reading parquet needs pandas and pyarrow (pip install 'evalkit[data]')") from None
    rows: list[dict[str, Any]] = []
    for path in paths:
        frame = pd.read_parquet(path)
        rows.extend({k: (list(v) if k == "options" else v) for k, v in rec.items()}
                    for rec in frame.to_dict("records"))
    return rows


register_task("race", partial(Race, "race", LEVELS), group="race")
register_task("race_text", partial(RaceText, "race_text", LEVELS), group="race")
for _level in LEVELS:
    register_task(f"race_{_level}", partial(Race, f"race_{_level}", (_level,)), group="race")
