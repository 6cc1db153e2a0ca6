"""C-Eval (Huang et al., 2023): 52 Chinese exam subjects, val split, dev for few-shot.

Prompt format: lm-eval's `ceval-valid` (Chinese instruction, letter answers).
Categories (STEM, Social Science, Humanities, Other) come from `subject_mapping.json`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from functools import partial
from pathlib import Path

from evalkit.data import csv_records, load_hub, local_dir, parse_answer_index, read_text
from evalkit.errors import DataError
from evalkit.families.choice_generation import GenerativeChoiceTask
from evalkit.families.multiple_choice import MultipleChoiceTask
from evalkit.task import DataSource, TaskData, register_task
from evalkit.tasks.ceval.subjects import SUBJECTS
from evalkit.types import Sample

HUB_ID = "ceval/ceval-exam"
LETTERS = "ABCD"
COLUMNS = ["id", "question", "A", "B", "C", "D", "answer"]


class CEval(MultipleChoiceTask):
    description = "C-Eval: 52 Chinese exam subjects, 4 options (val split)"
    prompt_format = "lm-eval ceval-valid (letters)"
    limit_per_subtask = True

    def __init__(self, name: str = "ceval", only: str | None = None) -> None:
        self.name = name
        self.only = only
        self.subjects = (only,) if only else tuple(sorted(SUBJECTS))
        self.chinese_names = {s: v[1] for s, v in SUBJECTS.items()}
        self.categories = {s: v[2] for s, v in SUBJECTS.items()}

    def load(self, source: DataSource) -> TaskData:
        folder = local_dir(source, "ceval")
        if folder is not None and (folder / "subject_mapping.json").is_file():
            self._check_mapping(folder / "subject_mapping.json")
        samples: list[Sample] = []
        fewshot: dict[str, tuple[Sample, ...]] = {}
        for subject in self.subjects:
            if folder is not None:
                samples.extend(_read_local(folder / "val" / f"{subject}_val.csv", subject))
                fewshot[subject] = tuple(_read_local(folder / "dev" / f"{subject}_dev.csv", subject))
            else:
                samples.extend(_read_hub(source, subject, "val"))
                fewshot[subject] = tuple(_read_hub(source, subject, "dev"))
        return TaskData(tuple(samples), fewshot, str(folder) if folder else f"hf:{HUB_ID}")

    def _check_mapping(self, path: Path) -> None:
        """The data's own subject table must agree with ours (names in prompts, categories)."""
        mapping = _subject_mapping(path)
        for subject in self.subjects:
            row = mapping.get(subject)
            if row is None or tuple(row[1:3]) != SUBJECTS[subject][1:3]:
                raise DataError(f"{path}: subject {subject!r} is {row!r} there but "
                                f"{list(SUBJECTS[subject])} in C-Eval's table (tasks/ceval/subjects.py)")

    def question_text(self, sample: Sample) -> str:
        options = "".join(f"\n{LETTERS[i]}. {c}" for i, c in enumerate(sample.choices))
        return f"{str(sample.input).strip()}{options}\n答案："

    def render_prompt(self, sample: Sample, shots: Sequence[Sample]) -> str:
        intro = f"以下是中国关于{self.chinese_names[sample.subtask]}的单项选择题，请选出其中的正确答案。\n\n"
        parts = [self.question_text(s) + " " + LETTERS[int(s.target)] for s in shots]
        parts.append(self.question_text(sample))
        return intro + "\n\n".join(parts)


def _subject_mapping(path: Path) -> dict[str, list[str]]:
    try:
        data = json.loads(read_text(path))
    except json.JSONDecodeError as exc:
        raise DataError(f"{path}:{exc.lineno}: malformed JSON ({exc.msg})") from None
    if not isinstance(data, dict) or not all(isinstance(v, list) and len(v) == 3 for v in data.values()):
        raise DataError(f"{path}: expected {{subject: [english name, chinese name, category]}}")
    return data


def _read_local(path: Path, subject: str) -> list[Sample]:
    if not path.is_file():
        raise DataError(f"{path}: C-Eval file for subject {subject!r} is missing")
    out = []
    for line, row in csv_records(path, COLUMNS, header=True):
        where = f"{path}:{line}"
        out.append(
            Sample(
                id=f"{subject}/{row['id'].strip()}",
                input=row["question"],
                choices=tuple(row[c] for c in LETTERS),
                target=parse_answer_index(row["answer"], 4, where),
                subtask=subject,
            )
        )
    return out


def _read_hub(source: DataSource, subject: str, split: str) -> list[Sample]:
    rows = load_hub("ceval", HUB_ID, source, subject, split)
    return [
        Sample(id=f"{subject}/{r['id']}", input=r["question"], choices=tuple(r[c] for c in LETTERS),
               target=parse_answer_index(r["answer"], 4, f"{HUB_ID}/{subject}/{split}[{i}]"), subtask=subject)
        for i, r in enumerate(rows)
    ]


register_task("ceval", partial(CEval), group="ceval")
register_task("ceval_gen", lambda: GenerativeChoiceTask(
    "ceval_gen", CEval(), "请只回答正确选项的字母（A、B、C 或 D）。"), group="ceval")
for _subject in SUBJECTS:
    register_task(f"ceval_{_subject}", partial(CEval, f"ceval_{_subject}", _subject), group="ceval")
