"""`evalkit judge`: judging run logs as a log-to-log stage that writes a judgment log.

Each judgment is one unit of the stage (one record): pairwise, a (question, turn, answer
order); single, a (question, model, turn); reference, a (question, model) against fixed
reference outputs with the reference's side drawn per question from the seed. A record holds
the judge's full prompt, every request and raw output (the re-ask too), and in `derivation`
what was judged; the verdict is in its score, an unreadable one is its error (counted, never a
tie). Records are appended as they finish; a rerun skips finished ones, and the response
cache answers any judge call already made.
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from evalkit.judges.aggregate import pairwise_results, reference_results, single_results
from evalkit.judges.asking import Asked, ask_prob, ask_text
from evalkit.judges.judgments import (
    PairJudgment,
    ReferenceJudgment,
    SingleJudgment,
    judgments_from_records,
)
from evalkit.judges.templates import Template, default_template, get_template
from evalkit.log.records import HeaderRecord, SampleRecord
from evalkit.results import TaskResults
from evalkit.stages.base import Stage, StageInput
from evalkit.task import ScoreContext
from evalkit.types import (
    CHOICE_LOGPROBS,
    GENERATE,
    ChoiceLogprobsRequest,
    GenerateRequest,
    Score,
    stable_hash,
)

PROTOCOLS = ("pairwise", "single", "reference")
VERDICTS = ("text", "prob")
Joined = Mapping[str, tuple[SampleRecord, ...]]
#: a text verdict as the outcome for the answer shown first
OUTCOME = {"A": 1.0, "B": 0.0, "tie": 0.5}


@dataclass(frozen=True)
class Contestant:
    label: str  # the stage input's label: model_1, model_2, ...
    name: str  # the model's name, for results


@dataclass(frozen=True)
class JudgeSettings:
    protocol: str
    contestants: tuple[Contestant, ...]
    verdict: str = "text"
    template: str | None = None
    max_tokens: int = 256
    #: reference protocol: question id -> the reference output, and the reference's name
    reference: Mapping[str, str] = field(default_factory=dict)
    reference_name: str = ""
    reference_hash: str = ""
    #: the contestant that is also the judge (self-preference is flagged), if any
    self_judged: str | None = None
    #: "chat" (system + user messages) or "completion" (one text prompt ending in a verdict cue)
    prompt_form: str = "chat"
    #: the seed of the reference-side draws and the bootstrap (recorded, so re-scoring uses it)
    seed: int = 0


class JudgeStage(Stage):
    name = "judge"
    version = "1"

    def __init__(self, settings: JudgeSettings) -> None:
        self.settings = settings
        self.roles = {"judge": frozenset({CHOICE_LOGPROBS if settings.verdict == "prob" else GENERATE})}
        first = settings.contestants[0].name if settings.contestants else ""
        self.headline_metric = {"pairwise": "win_rate_ties_half", "single": f"mean_score:{first}"}.get(
            settings.protocol, f"alpaca_eval_win_rate:{first}")
        self.skipped: dict[str, str] = {}
        if settings.template:  # fail on a bad name before anything runs
            get_template(settings.template, _template_type(settings.protocol))

    def config(self) -> dict[str, Any]:
        s = self.settings
        template = get_template(s.template).describe() if s.template else "default (FastChat's choice per turn)"
        return {**super().config(), "protocol": s.protocol, "verdict": s.verdict, "template": template,
                "max_tokens": s.max_tokens, "prompt_form": s.prompt_form, "seed": s.seed, "contestants": {c.label: c.name for c in s.contestants},
                "reference": {"name": s.reference_name, "hash": s.reference_hash} if s.reference else None,
                "rule": "fastchat" if s.protocol == "pairwise" else None}

    # -- which judgments --------------------------------------------------------------------

    def units(self, keys: Sequence[str], joined: Mapping[str, Joined]) -> tuple[list[str], dict[str, Joined]]:
        out_keys: list[str] = []
        out: dict[str, Joined] = {}
        for key in keys:
            problem = self._unusable(key, joined[key])
            if problem:
                self.skipped[key] = problem
                continue
            for unit in self._units_of(key, joined[key]):
                out_keys.append(unit)
                out[unit] = joined[key]
        return out_keys, out

    def _unusable(self, key: str, records: Joined) -> str | None:
        for label, (record, *_) in records.items():
            if record.error or not record.responses or any(not r.ok for r in record.responses):
                return f"{label} has no answer for it ({record.error or 'failed request'})"
        if self.settings.protocol == "reference" and key not in self.settings.reference:
            return "the reference outputs have no answer for it"
        return None

    def _units_of(self, key: str, records: Joined) -> list[str]:
        s = self.settings
        turns = min(len(rs[0].responses) for rs in records.values())
        if s.template and not get_template(s.template).multi_turn or s.protocol == "reference":
            turns = 1  # a single-turn template judges the first turn only
        if s.protocol == "pairwise":
            return [f"{key}|t{t}|{o}" for t in range(1, turns + 1) for o in ("ab", "ba")]
        if s.protocol == "single":
            return [f"{key}|{c.label}|t{t}" for c in s.contestants for t in range(1, turns + 1)]
        return [f"{key}|{c.label}" for c in s.contestants]

    def header(self, inputs: Sequence[StageInput], identity: str, roles: Mapping[str, Any]) -> HeaderRecord:
        header = super().header(inputs, identity, roles)
        extra = {"skipped_questions": dict(self.skipped)} if self.skipped else {}
        return dataclasses.replace(header, extra={**header.extra, **extra})

    # -- one judgment -----------------------------------------------------------------------

    async def process(self, key: str, joined: Joined, ctx: ScoreContext) -> SampleRecord:
        question, *rest = key.split("|")
        first = next(iter(joined.values()))[0]
        if self.settings.protocol == "pairwise":
            turn, order = int(rest[0][1:]), rest[1]
            return await self._pairwise(key, question, first, joined, turn, order, ctx)
        if self.settings.protocol == "single":
            return await self._single(key, question, first, joined[rest[0]][0], int(rest[1][1:]), ctx)
        return await self._reference(key, question, first, joined[rest[0]][0], ctx)

    def _template(self, kind: str, turn: int, has_reference: bool) -> Template:
        if self.settings.template:
            return get_template(self.settings.template, kind)
        return default_template(kind, self.settings.verdict, turn, has_reference)

    async def _pairwise(self, key: str, question: str, first: SampleRecord, joined: Joined, turn: int,
                        order: str, ctx: ScoreContext) -> SampleRecord:
        one, two = (joined[c.label][0] for c in self.settings.contestants[:2])
        shown = (one, two) if order == "ab" else (two, one)
        template = self._template("pairwise", turn, _has_reference(first, turn))
        fields = conversation_fields(first, turn, {"a": shown[0], "b": shown[1]})
        names = [c.name for c in self.settings.contestants[:2]]
        derivation = {"protocol": "pairwise", "turn": turn, "order": order, "model_1": names[0],
                      "model_2": names[1], "chars_1": _chars(one, turn), "chars_2": _chars(two, turn),
                      "template": template.name}
        asked = await self._ask(template, fields, ctx)
        return self._record(key, question, first, template, asked, score_of(asked, derivation), derivation)

    async def _single(self, key: str, question: str, first: SampleRecord, answer: SampleRecord, turn: int,
                      ctx: ScoreContext) -> SampleRecord:
        template = self._template("single", turn, _has_reference(first, turn))
        fields = conversation_fields(first, turn, {"": answer})
        label = key.split("|")[1]
        name = next(c.name for c in self.settings.contestants if c.label == label)
        derivation = {"protocol": "single", "turn": turn, "model": name, "scale": list(template.scale),
                      "template": template.name}
        asked = await self._ask(template, fields, ctx)
        return self._record(key, question, first, template, asked, score_of(asked, derivation), derivation)

    async def _reference(self, key: str, question: str, first: SampleRecord, answer: SampleRecord,
                         ctx: ScoreContext) -> SampleRecord:
        s = self.settings
        template = self._template("pairwise", 1, False)
        model_text, ref_text = answer.responses[0].text or "", s.reference[question]
        # the reference's side, drawn per question from the seed (recorded)
        ref_first = random.Random(stable_hash([ctx.seed, question], 16)).random() < 0.5
        a_text, b_text = (ref_text, model_text) if ref_first else (model_text, ref_text)
        fields = {**_questions(first), "answer_a": a_text, "answer_b": b_text, "answer_a_1": a_text,
                  "answer_b_1": b_text}
        name = next(c.name for c in s.contestants if c.label == key.split("|")[1])
        derivation = {"protocol": "reference", "model": name, "baseline": s.reference_name,
                      "reference_side": "A" if ref_first else "B", "chars_model": len(model_text),
                      "chars_baseline": len(ref_text), "template": template.name}
        asked = await self._ask(template, fields, ctx)
        return self._record(key, question, first, template, asked, score_of(asked, derivation), derivation)

    def _record(self, key: str, question: str, first: SampleRecord, template: Template, asked: Asked,
                score: Score | None, derivation: Mapping[str, Any]) -> SampleRecord:
        """No verdict: the record's error, with its raw text in the responses. A failed request is
        retried by the next run; an unreadable verdict is final (`metadata.verdict_error`)."""
        request = asked.requests[0]
        prompt = request.prompt if isinstance(request, GenerateRequest | ChoiceLogprobsRequest) else ()
        text = "\n\n".join(f"[{m.role}]\n{m.content}" for m in prompt) if not isinstance(prompt, str) else prompt
        return SampleRecord(id=key, subtask=first.subtask, input=first.input, target=first.target,
                            metadata=verdict_metadata({"template_hash": template.hash}, asked), prompt=text,
                            requests=tuple(asked.requests), responses=tuple(asked.responses), score=score,
                            error=asked.failure, source_id=question, derivation=dict(derivation))

    def retry(self, record: SampleRecord) -> bool:
        """Failed judge requests are retried by the next run; unreadable verdicts are final (the
        judge is greedy and cached: asking again would read the same text)."""
        return not record.metadata.get("verdict_error")

    async def _ask(self, template: Template, fields: Mapping[str, str], ctx: ScoreContext) -> Asked:
        """Greedy text verdicts re-asked once when unreadable, or first-token probabilities."""
        messages = template.render(fields)
        if self.settings.verdict == "prob":
            completion = self.settings.prompt_form == "completion"
            return await ask_prob(template.render_completion(fields) if completion else messages, ctx)
        return await ask_text(messages, template, self.settings.max_tokens, ctx)

    # -- results ----------------------------------------------------------------------------

    def aggregate(self, records: Sequence[SampleRecord], seed: int) -> TaskResults:
        judgments = judgments_from_records(records)
        if self.settings.protocol == "pairwise":
            return pairwise_results([j for j in judgments if isinstance(j, PairJudgment)], seed,
                                    self.settings.self_judged)
        if self.settings.protocol == "single":
            return single_results([j for j in judgments if isinstance(j, SingleJudgment)], seed)
        return reference_results([j for j in judgments if isinstance(j, ReferenceJudgment)], seed)


def score_of(asked: Asked, derivation: Mapping[str, Any]) -> Score | None:
    """The judgment's score from its verdict (None without one). Pairwise: the outcome for
    model_1 in this order; single: the rating; reference: AlpacaEval's preference (1 the
    reference, 2 the model, 1.5 a draw) and the model's outcome."""
    if asked.verdict is None:
        return None
    protocol = derivation["protocol"]
    if protocol == "single":
        return Score(value=float(asked.verdict), extracted=asked.verdict, extras={**asked.extras, "rating": asked.verdict})
    weighted = asked.extras.get("score_first")
    first_outcome = weighted if weighted is not None else OUTCOME[asked.verdict]
    extras = {**asked.extras, "verdict": asked.verdict}
    if protocol == "pairwise":
        value = first_outcome if derivation["order"] == "ab" else 1 - first_outcome  # for model_1
        return Score(value=value, extracted=asked.verdict,
                     extras={**extras, "weighted": value if weighted is not None else None})
    value = 1 - first_outcome if derivation["reference_side"] == "A" else first_outcome
    return Score(value=value, extracted=asked.verdict, extras={**extras, "preference": 1.0 + value})


def verdict_metadata(metadata: Mapping[str, Any], asked: Asked) -> dict[str, Any]:
    out = {k: v for k, v in metadata.items() if k not in ("verdict_error", "verdict_extras")}
    if asked.failure and not asked.transient:
        out["verdict_error"] = True  # final: `retry` keeps it
        out["verdict_extras"] = dict(asked.extras)  # e.g. the verdict-token mass that was too low
    return out


def _template_type(protocol: str) -> str:
    return "single" if protocol == "single" else "pairwise"


def _chars(record: SampleRecord, turn: int) -> int:
    return len(record.responses[turn - 1].text or "")


def _has_reference(record: SampleRecord, turn: int) -> bool:
    target = record.target
    return isinstance(target, list | tuple) and len(target) >= turn and all(isinstance(t, str) for t in target)


def _questions(record: SampleRecord) -> dict[str, str]:
    turns = record.metadata.get("turns") or [str(record.input)]
    out = {f"question_{i + 1}": str(q) for i, q in enumerate(turns)}
    out["question"] = out["question_1"]
    return out


def conversation_fields(first: SampleRecord, turn: int, answers: Mapping[str, SampleRecord]) -> dict[str, str]:
    """The template fields for judging `turn`: questions, reference answers, and each answer
    ("" for single grading, "a"/"b" for pairwise) per turn, plus turn-less aliases for the
    single-turn templates (`{question}`, `{answer_a}`) that name the judged turn."""
    fields = _questions(first)
    if turn > 1:
        fields["question"] = fields[f"question_{turn}"]
    if _has_reference(first, 1):
        for i, ref in enumerate(first.target):
            fields[f"ref_answer_{i + 1}"] = ref
    for side, record in answers.items():
        prefix = f"answer_{side}_" if side else "answer_"
        for i, response in enumerate(record.responses):
            fields[f"{prefix}{i + 1}"] = response.text or ""
        fields[prefix.rstrip("_")] = record.responses[turn - 1].text or ""
    return fields
