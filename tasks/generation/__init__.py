"""Generic reference-based generation over a user JSONL file (`generation`, `summarization`).

Each line is an object with a string `input` (the prompt) and a string `reference`; an
optional `id` names the sample (else its line number). `-T path=FILE` is required; a missing
file, a bad line or a missing field is one error naming the file, line and field.
`summarization` is the same task with ROUGE as its default metrics.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from evalkit.data import read_jsonl
from evalkit.errors import ConfigError, DataError
from evalkit.families.text_generation import TextGenerationTask, metrics_param
from evalkit.params import Param
from evalkit.task import Built, DataSource, TaskData, register_task
from evalkit.types import GenerateRequest, GenerationParams, Message, Sample

GENERATION_METRICS = ("bleu", "chrf", "rouge", "length")
SUMMARIZATION_METRICS = ("rouge", "length")


class Generation(TextGenerationTask):
    name = "generation"
    version = "1"
    description = "reference-based generation over a user JSONL file (input, reference)"
    limit_per_subtask = False

    def __init__(self, path: str = "", metrics: Sequence[str] = (), format: str = "chat",
                 max_tokens: int = 256, name: str = "generation") -> None:
        super().__init__(metrics or GENERATION_METRICS)
        self.name = name
        self.given_path = path  # checked when the data loads (before any model does): `list tasks` needs no file
        self.path = Path(path).expanduser()
        self.format = format
        self.max_tokens = max_tokens
        self.prompt_format = ("the input as the only user message" if format == "chat"
                              else "the input verbatim as a completion prompt") + "; greedy"

    def load(self, source: DataSource) -> TaskData:
        if not self.given_path:
            raise ConfigError(f"task {self.name!r}: give the data file with -T path=FILE.jsonl (fields input, reference)")
        if not self.path.is_file():
            raise DataError(f"-T path={self.path}: no such file")
        samples: list[Sample] = []
        seen: set[str] = set()
        for line, row in read_jsonl(self.path):
            where = f"{self.path}:{line}"
            for field in ("input", "reference"):
                if not isinstance(row.get(field), str) or not row[field].strip():
                    raise DataError(f"{where}: field {field!r} is missing or not a non-empty string")
            sample_id = str(row.get("id", line))
            if sample_id in seen:
                raise DataError(f"{where}: duplicate id {sample_id!r}")
            seen.add(sample_id)
            samples.append(Sample(id=sample_id, input=row["input"], target=row["reference"],
                                  metadata={"line": line, "target_language": str(row.get("language", ""))}))
        if not samples:
            raise DataError(f"{self.path}: no samples")
        return TaskData(tuple(samples), {}, str(self.path))

    def build(self, sample: Sample, shots: Sequence[Sample]) -> Built:
        params = GenerationParams(max_tokens=self.max_tokens, temperature=0.0)
        text = str(sample.input)
        prompt = (Message("user", text),) if self.format == "chat" else text
        return Built(text, (GenerateRequest(prompt, params),))


def _params(default_metrics: Sequence[str]) -> tuple[Param, ...]:
    return (
        Param("path", str, "", "the JSONL file: one {input, reference[, id, language]} object per line"),
        metrics_param(default_metrics),
        Param("format", str, "chat", "chat (the input as a user message) or completion", choices=("chat", "completion")),
        Param("max_tokens", int, 256, "longest output in tokens", minimum=1),
    )


def _summarization(path: str = "", metrics: Sequence[str] = (), format: str = "chat",
                   max_tokens: int = 256) -> Generation:
    return Generation(path, metrics or SUMMARIZATION_METRICS, format, max_tokens, name="summarization")


register_task("generation", Generation, params=_params(GENERATION_METRICS))
register_task("summarization", _summarization, params=_params(SUMMARIZATION_METRICS))
