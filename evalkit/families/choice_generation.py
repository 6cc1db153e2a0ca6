"""Multiple choice answered by generation: for chat and API models without log-likelihoods.

A generative variant wraps a log-likelihood multiple-choice task: same data, same few-shot
shots, same categories. The prompt is sent as a chat message that asks for the letter; the
letter is extracted from the reply. When the backend can return first-token logprobs
(`choice_logprobs`), a second request gets the option probabilities, so calibration metrics
work on API models too.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import numpy as np

from evalkit.families.multiple_choice import MultipleChoiceTask, aggregate_multiple_choice
from evalkit.log.records import SampleRecord
from evalkit.metrics.calibration import softmax
from evalkit.metrics.stats import wilson_interval
from evalkit.task import Built, DataSource, TaskData, TaskResults
from evalkit.types import (
    CHOICE_LOGPROBS,
    GENERATE,
    ChoiceLogprobsRequest,
    GenerateRequest,
    GenerationParams,
    Message,
    MetricValue,
    Request,
    Response,
    Sample,
    Score,
)

LETTERS = "ABCDEFGHIJ"
ANSWER_PATTERNS = (
    re.compile(r"(?:answer|答案)\s*(?:is|是|为|:|：)?\s*\(?([A-J])\b", re.IGNORECASE),
    re.compile(r"^\s*\(?([A-J])[\).:：,，\s]"),
    re.compile(r"^\s*\(?([A-J])\)?\s*$"),
    re.compile(r"\b([A-J])\b"),
)


def extract_letter(text: str, n_choices: int) -> str | None:
    """The first answer letter the reply commits to, or None when there is none."""
    valid = LETTERS[:n_choices]
    for pattern in ANSWER_PATTERNS:
        for match in pattern.finditer(text.strip()):
            letter = match.group(1).upper()
            if letter in valid:
                return letter
    return None


class GenerativeChoiceTask(MultipleChoiceTask):
    requires = frozenset({GENERATE})

    def __init__(self, name: str, base: MultipleChoiceTask, instruction: str, max_tokens: int = 16,
                 *, use_choice_logprobs: bool = False) -> None:
        self.name = name
        self.base = base
        self.instruction = instruction
        self.max_tokens = max_tokens
        self.description = base.description + " (generative letter answer)"
        self.prompt_format = f"evalkit chat letter answer over [{base.prompt_format}]"
        self.categories = base.categories
        self.limit_per_subtask = base.limit_per_subtask
        #: ask first-token logprobs for the option probabilities (calibration) too
        self.use_choice_logprobs = use_choice_logprobs

    def with_capabilities(self, capabilities: frozenset[str]) -> GenerativeChoiceTask:
        wanted = CHOICE_LOGPROBS in capabilities
        if wanted == self.use_choice_logprobs:
            return self
        copy = GenerativeChoiceTask(self.name, self.base, self.instruction, self.max_tokens,
                                    use_choice_logprobs=wanted)
        copy.parameters = self.parameters
        return copy

    def load(self, source: DataSource) -> TaskData:
        return self.base.load(source)

    def render_prompt(self, sample: Sample, shots: Sequence[Sample]) -> str:
        # The base prompt ends with its answer cue ("Answer:", "答案："); ask for a letter instead.
        body = self.base.render_prompt(sample, shots).rsplit("\n", 1)[0]
        return f"{body}\n\n{self.instruction}"

    def build(self, sample: Sample, shots: Sequence[Sample]) -> Built:
        prompt = self.render_prompt(sample, shots)
        messages = (Message("user", prompt),)
        params = GenerationParams(max_tokens=self.max_tokens, temperature=0.0)
        requests: list[Request] = [GenerateRequest(messages, params)]
        if self.use_choice_logprobs:
            requests.append(ChoiceLogprobsRequest(messages, tuple(LETTERS[: len(sample.choices)])))
        return Built(prompt, tuple(requests))

    def score(self, sample: Sample, responses: Sequence[Response]) -> Score:
        reply = responses[0].text or ""
        letter = extract_letter(reply, len(sample.choices))
        gold = int(sample.target)
        pred = LETTERS.index(letter) if letter else None
        extras: dict[str, Any] = {"gold": gold, "valid": letter is not None}
        if len(responses) > 1 and responses[1].choice_logprobs is not None:
            extras["probs"] = [round(float(p), 8) for p in softmax(np.asarray(responses[1].choice_logprobs))]
        return Score(value=float(pred == gold), extracted=letter, extras=extras)

    def aggregate(self, records: Sequence[SampleRecord], seed: int = 0) -> TaskResults:
        results = aggregate_multiple_choice(records, self.categories, seed=seed)
        scored = [r for r in records if r.score is not None]
        if not scored:
            return results
        invalid = sum(1 for r in scored if r.score and not r.score.extras.get("valid"))
        low, high = wilson_interval(invalid, len(scored))
        return results.with_overall({"invalid_answer_rate": MetricValue(
            "invalid_answer_rate", invalid / len(scored), len(scored), low, high, "wilson",
            higher_is_better=False, note="replies with no answer letter (scored wrong)")})
