"""MMLU (Hendrycks et al., 2021): 57 subjects, 4 choices, scored by log-likelihood.

Two prompt formats, each named in the run log:
- `mmlu` and friends: lm-eval's default MMLU format, scored on the answer letters.
- `mmlu_text`: lm-eval's `mmlu_continuation` format, scored on the full option text.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial
from pathlib import Path

from evalkit.data import csv_records, load_hub, local_dir, parse_answer_index
from evalkit.errors import DataError
from evalkit.families.choice_generation import GenerativeChoiceTask
from evalkit.families.multiple_choice import MultipleChoiceTask
from evalkit.params import Param
from evalkit.task import DataSource, TaskData, register_task
from evalkit.tasks.mmlu.subjects import CATEGORIES, SUBJECT_CATEGORY
from evalkit.types import Sample

HUB_ID = "cais/mmlu"
LETTERS = "ABCD"


class MMLU(MultipleChoiceTask):
    description = "MMLU: 57-subject multiple choice, 4 options"
    prompt_format = "lm-eval mmlu (letters)"
    default_num_fewshot = 0
    limit_per_subtask = True

    def __init__(self, name: str, subjects: Sequence[str]) -> None:
        self.name = name
        self.subjects = tuple(subjects)
        self.categories = {s: SUBJECT_CATEGORY[s] for s in self.subjects}

    def config(self) -> dict[str, object]:
        return {**super().config(), "subjects": len(self.subjects)}

    def load(self, source: DataSource) -> TaskData:
        folder = local_dir(source, "mmlu")
        samples: list[Sample] = []
        fewshot: dict[str, tuple[Sample, ...]] = {}
        for subject in self.subjects:
            if folder is not None:
                test = _read_local(folder / "test" / f"{subject}_test.csv", subject)
                dev = _read_local(folder / "dev" / f"{subject}_dev.csv", subject)
            else:
                test = _read_hub(source, subject, "test")
                dev = _read_hub(source, subject, "dev")
            samples.extend(test)
            fewshot[subject] = tuple(dev)
        origin = str(folder) if folder is not None else f"hf:{HUB_ID}"
        return TaskData(tuple(samples), fewshot, origin)

    def describe_subject(self, subject: str) -> str:
        return f"The following are multiple choice questions (with answers) about {subject.replace('_', ' ')}.\n\n"

    def question_text(self, sample: Sample) -> str:
        options = "".join(f"\n{LETTERS[i]}. {c}" for i, c in enumerate(sample.choices))
        return f"{str(sample.input).strip()}{options}\nAnswer:"

    def answer_text(self, sample: Sample) -> str:
        return " " + LETTERS[int(sample.target)]

    def render_prompt(self, sample: Sample, shots: Sequence[Sample]) -> str:
        parts = [self.question_text(s) + self.answer_text(s) for s in shots]
        parts.append(self.question_text(sample))
        return self.describe_subject(sample.subtask) + "\n\n".join(parts)


class MMLUText(MMLU):
    """Scored on the full option text (multi-token continuations)."""

    report_acc_norm = True

    prompt_format = "lm-eval mmlu_continuation (full option text)"

    def describe_subject(self, subject: str) -> str:
        return f"The following are questions (with answers) about {subject.replace('_', ' ')}.\n\n"

    def question_text(self, sample: Sample) -> str:
        return f"Question: {str(sample.input).strip()}\nAnswer:"

    def answer_text(self, sample: Sample) -> str:
        return " " + sample.choices[int(sample.target)]

    def continuations(self, sample: Sample) -> tuple[str, ...]:
        return tuple(" " + c for c in sample.choices)


def _read_local(path: Path, subject: str) -> list[Sample]:
    """Hendrycks' headerless CSVs or the header-row export; letter or index answers."""
    if not path.is_file():
        raise DataError(f"{path}: MMLU file for subject {subject!r} is missing")
    columns = ["question", "choice0", "choice1", "choice2", "choice3", "answer"]
    first = path.read_bytes()[:64].lower()
    header = first.startswith(b"question,") or first.startswith(b"\xef\xbb\xbfquestion,")
    if header and b"choice0" not in path.read_bytes()[:200].lower():
        columns = ["question", "A", "B", "C", "D", "answer"]
    out = []
    for index, (line, row) in enumerate(csv_records(path, columns, header=header)):
        where = f"{path}:{line}"
        if not row["question"].strip():
            raise DataError(f"{where}: empty 'question'")
        out.append(
            Sample(
                id=f"{subject}/{index}",
                input=row["question"],
                choices=tuple(row[c] for c in columns[1:5]),
                target=parse_answer_index(row["answer"], 4, where),
                subtask=subject,
            )
        )
    return out


def _read_hub(source: DataSource, subject: str, split: str) -> list[Sample]:
    rows = load_hub("mmlu", HUB_ID, source, subject, split)
    return [
        Sample(id=f"{subject}/{i}", input=r["question"], choices=tuple(r["choices"]),
               target=parse_answer_index(r["answer"], 4, f"{HUB_ID}/{subject}/{split}[{i}]"), subtask=subject)
        for i, r in enumerate(rows)
    ]


def _subjects_param() -> Param:
    return Param("subjects", str, (), "only these subjects (a list: -T subjects=anatomy|virology); "
                 "default: all 57", choices=tuple(sorted(SUBJECT_CATEGORY)), multiple=True)


def _mmlu(subjects: Sequence[str] = ()) -> MMLU:
    return MMLU("mmlu", sorted(set(subjects)) if subjects else sorted(SUBJECT_CATEGORY))


def _register() -> None:
    subjects = sorted(SUBJECT_CATEGORY)
    register_task("mmlu", _mmlu, (_subjects_param(),), group="mmlu")
    register_task("mmlu_text", partial(MMLUText, "mmlu_text", subjects), group="mmlu")
    register_task("mmlu_gen", lambda: GenerativeChoiceTask(
        "mmlu_gen", MMLU("mmlu", subjects), "Answer with the letter (A, B, C or D) of the correct option only."),
        group="mmlu")
    for category in CATEGORIES:
        members = [s for s in subjects if SUBJECT_CATEGORY[s] == category]
        register_task(f"mmlu_{category}", partial(MMLU, f"mmlu_{category}", members), group="mmlu")
    for subject in subjects:
        register_task(f"mmlu_{subject}", partial(MMLU, f"mmlu_{subject}", [subject]), group="mmlu")


_register()
