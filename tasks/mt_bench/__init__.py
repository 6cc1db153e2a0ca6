"""MT-Bench (Zheng et al., 2023): 80 two-turn questions in 8 categories, from FastChat.

Reads `$EVALKIT_DATA_DIR/mt_bench/question.jsonl` (`question_id`, `category`, `turns`) and,
when present, `reference_answer/gpt-4.jsonl` (kept as the sample target for a later judge).
Each sample is solved interactively: turn 1 is sent, then turn 2 with the turn-1 answer in
the chat history. Until a judge scores them, the metrics are `answered` and output lengths.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from evalkit.data import local_dir, read_jsonl
from evalkit.errors import DataError
from evalkit.families.open_ended import OpenEndedTask
from evalkit.task import Built, DataSource, Execute, Solved, TaskData, register_task
from evalkit.types import GenerateRequest, GenerationParams, Message, Request, Response, Sample

#: FastChat's llm_judge/common.py temperature_config; other categories use 0.7
TEMPERATURE = {
    "writing": 0.7, "roleplay": 0.7, "extraction": 0.0, "math": 0.0, "coding": 0.0,
    "reasoning": 0.0, "stem": 0.1, "humanities": 0.1,
}
MAX_TOKENS = 1024  # FastChat gen_model_answer.py --max-new-token default
SOURCE_HINT = "FastChat's fastchat/llm_judge/data/mt_bench/question.jsonl"


class MTBench(OpenEndedTask):
    name = "mt_bench"
    version = "1"
    description = "MT-Bench: 80 two-turn open-ended questions (answered rate and lengths until judged)"
    prompt_format = "mt_bench chat: turn 1, then turn 2 after the model's turn-1 answer; no system prompt"
    interactive = True

    def load(self, source: DataSource) -> TaskData:
        folder = local_dir(source, "mt_bench")
        path = folder / "question.jsonl" if folder else None
        if path is None or not path.is_file():
            where = path or f"{source.data_dir or '$EVALKIT_DATA_DIR'}/mt_bench/question.jsonl"
            raise DataError(f"no data for mt_bench: put {SOURCE_HINT} at {where} (it is not on the hub)")
        references = read_references(path.parent / "reference_answer" / "gpt-4.jsonl")
        return TaskData(tuple(read_questions(path, references)), {}, str(path))

    def params(self, sample: Sample) -> GenerationParams:
        return GenerationParams(max_tokens=MAX_TOKENS, temperature=TEMPERATURE.get(sample.subtask, 0.7))

    def turns(self, sample: Sample) -> tuple[str, ...]:
        return tuple(sample.metadata["turns"])

    def build(self, sample: Sample, shots: Sequence[Sample]) -> Built:
        """Only turn 1 can be built up front; `solve` sends the later turns."""
        request = GenerateRequest((Message("user", self.turns(sample)[0]),), self.params(sample))
        return Built(self.render_prompt(sample), (request,))

    async def solve(self, sample: Sample, shots: Sequence[Sample], execute: Execute) -> Solved:
        history: tuple[Message, ...] = ()
        requests: list[Request] = []
        responses: list[Response] = []
        for question in self.turns(sample):
            history = (*history, Message("user", question))
            request = GenerateRequest(history, self.params(sample))
            (response,) = await execute([request])
            requests.append(request)
            responses.append(response)
            if not response.ok:  # the next turn needs this answer; the sample is an error
                break
            history = (*history, Message("assistant", response.text or ""))
        return Solved(self.render_prompt(sample), tuple(requests), tuple(responses))

    def render_prompt(self, sample: Sample) -> str:
        return "\n\n".join(f"[turn {i + 1}] {q}" for i, q in enumerate(self.turns(sample)))


def read_questions(path: Path, references: dict[str, tuple[str, ...]]) -> list[Sample]:
    samples: list[Sample] = []
    seen: dict[str, int] = {}
    for line, row in read_jsonl(path):
        for key in ("question_id", "category", "turns"):
            if key not in row:
                raise DataError(f"{path}:{line}: missing field {key!r}")
        qid = str(row["question_id"])
        if qid in seen:
            raise DataError(f"{path}:{line}: duplicate question_id {qid} (first at line {seen[qid]})")
        seen[qid] = line
        turns = row["turns"]
        if not isinstance(turns, list) or not turns or not all(isinstance(t, str) for t in turns):
            raise DataError(f"{path}:{line}: field 'turns' must be a non-empty list of strings")
        samples.append(Sample(
            id=qid,
            input=turns[0],
            target=references.get(qid),
            subtask=str(row["category"]),
            metadata={"question_id": row["question_id"], "turns": list(turns)},
        ))
    if not samples:
        raise DataError(f"{path}: no questions")
    return samples


def read_references(path: Path) -> dict[str, tuple[str, ...]]:
    """GPT-4 reference answers (math, reasoning, coding) in the MT-Bench answer format."""
    if not path.is_file():
        return {}
    out: dict[str, tuple[str, ...]] = {}
    for line, row in read_jsonl(path):
        try:
            out[str(row["question_id"])] = tuple(row["choices"][0]["turns"])
        except (KeyError, IndexError, TypeError):
            raise DataError(f"{path}:{line}: expected question_id and choices[0].turns") from None
    return out


register_task("mt_bench", MTBench)
