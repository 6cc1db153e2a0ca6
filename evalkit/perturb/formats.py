"""`task@format(name=...)`: a multiple-choice task rendered in another harness's prompt format,
for prompt-format spread (the same questions, scored K ways). Log-likelihood tasks only: each
format gives the prompt and the scored continuation of every option.

Formats (MMLU's wording; the subject comes from the sample's subtask):
- `lm_eval`: lm-eval's `mmlu` ("...\\nA. x\\nAnswer:", continuations " A").
- `helm`: HELM's MMLU adapter ("Question: ...\\nA. x\\nAnswer:", " A").
- `opencompass`: OpenCompass's MMLU prompt ("There is a single choice question about ...
  Answer the question by replying A, B, C or D.\\nQuestion: ...\\nAnswer: ", "A").
- `brackets`: options as "(A) x", ending "The correct answer is (", continuation "A".
- `continuation`: lm-eval's `mmlu_continuation` (no options shown; scored on the option text).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from evalkit.errors import ConfigError
from evalkit.params import Param
from evalkit.perturb.base import WrapperEntry, register_wrapper, text_of
from evalkit.perturb.wrap import WrappedTask
from evalkit.task import Built, DataSource, Task, TaskData
from evalkit.types import LOGLIKELIHOOD, LoglikelihoodRequest, Sample

LETTERS = "ABCDEFGHIJ"


@dataclass(frozen=True)
class PromptFormat:
    description: str
    header: Callable[[str], str]
    question: Callable[[Sample], str]
    #: option i's scored continuation
    continuation: Callable[[Sample, int], str]


def _subject(subtask: str) -> str:
    return subtask.replace("_", " ") or "general knowledge"


def _lettered(sample: Sample, pattern: str) -> str:
    return "".join(pattern.format(letter=LETTERS[i], text=c) for i, c in enumerate(sample.choices))


def _letters(sample: Sample) -> str:
    shown = LETTERS[: len(sample.choices)]
    return ", ".join(shown[:-1]) + f" or {shown[-1]}"


FORMATS: dict[str, PromptFormat] = {
    "lm_eval": PromptFormat(
        "lm-eval mmlu (letters)",
        lambda s: f"The following are multiple choice questions (with answers) about {_subject(s)}.\n\n",
        lambda x: f"{text_of(x.input).strip()}{_lettered(x, chr(10) + '{letter}. {text}')}\nAnswer:",
        lambda x, i: f" {LETTERS[i]}"),
    "helm": PromptFormat(
        "HELM mmlu (Question:/letters)",
        lambda s: f"The following are multiple choice questions (with answers) about {_subject(s)}.\n\n",
        lambda x: f"Question: {text_of(x.input).strip()}{_lettered(x, chr(10) + '{letter}. {text}')}\nAnswer:",
        lambda x, i: f" {LETTERS[i]}"),
    "opencompass": PromptFormat(
        "OpenCompass mmlu (single choice, reply with the letter)",
        lambda s: f"There is a single choice question about {_subject(s)}. ",
        lambda x: (f"Answer the question by replying {_letters(x)}.\nQuestion: {text_of(x.input).strip()}"
                   f"{_lettered(x, chr(10) + '{letter}. {text}')}\nAnswer: "),
        lambda x, i: LETTERS[i]),
    "brackets": PromptFormat(
        "bracketed options, 'The correct answer is ('",
        lambda s: f"Questions about {_subject(s)}.\n\n",
        lambda x: (f"Question: {text_of(x.input).strip()}\nOptions:{_lettered(x, chr(10) + '({letter}) {text}')}"
                   "\nThe correct answer is ("),
        lambda x, i: LETTERS[i]),
    "continuation": PromptFormat(
        "lm-eval mmlu_continuation (full option text)",
        lambda s: f"The following are questions (with answers) about {_subject(s)}.\n\n",
        lambda x: f"Question: {text_of(x.input).strip()}\nAnswer:",
        lambda x, i: f" {x.choices[i]}"),
}


class FormatTask(WrappedTask):
    def __init__(self, inner: Task, fmt: str, label: str) -> None:
        if LOGLIKELIHOOD not in inner.requires:
            raise ConfigError(f"task {inner.name + label!r}: @format needs a log-likelihood multiple-choice "
                              f"task; {inner.name!r} requires {', '.join(sorted(inner.requires)) or 'nothing'}")
        super().__init__(inner, label, {"format": fmt})
        self.format = FORMATS[fmt]
        self.prompt_format = self.format.description

    def load(self, source: DataSource) -> TaskData:
        data = self.inner.load(source)
        bad = next((s for s in data.samples if not s.choices or not isinstance(s.target, int)), None)
        if bad is not None:
            raise ConfigError(f"task {self.name!r}: @format needs multiple-choice samples with an answer "
                              f"index; sample {bad.id!r} of {self.inner.name!r} has none")
        return data

    def build(self, sample: Sample, shots: Sequence[Sample]) -> Built:
        fmt = self.format
        parts = [fmt.question(s) + fmt.continuation(s, int(s.target)) for s in shots]
        prompt = fmt.header(sample.subtask) + "\n\n".join([*parts, fmt.question(sample)])
        return Built(prompt, tuple(LoglikelihoodRequest(prompt, fmt.continuation(sample, i))
                                   for i in range(len(sample.choices))))


def _format_task(inner: Task, values: Mapping[str, Any], label: str) -> Task:
    return FormatTask(inner, str(values["name"]), label)


register_wrapper("format", WrapperEntry(
    _format_task, (Param("name", str, "lm_eval", "the prompt format", choices=tuple(FORMATS)),), "format",
    "the task's multiple-choice questions in another prompt format: " + ", ".join(FORMATS),
    ("Q?\nA. x\nB. y\nAnswer: (lm_eval)", "Question: Q?\nA. x\nB. y\nAnswer: (helm)"),
))
