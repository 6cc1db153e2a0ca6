"""Judgments as plain records, whatever made them: evalkit's judge stage, AlpacaEval's
annotations or FastChat's judgment files. Aggregation (judges/aggregate.py) reads only these.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from evalkit.log.records import SampleRecord

#: FastChat's rule, named in every pairwise result
FASTCHAT_RULE = "fastchat: a pair is a tie when the two orders disagree or either says tie"


@dataclass(frozen=True)
class PairJudgment:
    """One pairwise verdict in one answer order. `order` "ab": model_1's answer shown as A."""

    question: str
    turn: int
    category: str
    model_1: str
    model_2: str
    order: str
    #: "A", "B", "tie"; None: the verdict could not be read (a parse failure or judge error)
    verdict: str | None
    chars_1: int | None = None
    chars_2: int | None = None
    #: probability-weighted outcome for model_1 (P(model_1 better) + P(tie)/2), when known
    weighted: float | None = None
    #: probability on the verdict tokens, when read from logprobs
    mass: float | None = None

    @property
    def winner(self) -> str | None:
        """"model_1", "model_2", "tie" or None."""
        if self.verdict is None or self.verdict == "tie":
            return self.verdict
        first_is_1 = self.order == "ab"
        return "model_1" if (self.verdict == "A") == first_is_1 else "model_2"


@dataclass(frozen=True)
class SingleJudgment:
    question: str
    turn: int
    category: str
    model: str
    #: None: no rating could be read
    rating: float | None
    scale: tuple[int, int] = (1, 10)


@dataclass(frozen=True)
class ReferenceJudgment:
    """A contestant against fixed reference outputs, as AlpacaEval encodes it: preference 1 =
    the reference (baseline) is better, 2 = the model is better, 1.5 (or 0) = a draw; values in
    between for weighted verdicts; None = no verdict."""

    question: str
    category: str
    model: str
    baseline: str
    preference: float | None
    chars_model: int | None = None
    chars_baseline: int | None = None


Judgment = PairJudgment | SingleJudgment | ReferenceJudgment


def judgments_from_records(records: Iterable[SampleRecord]) -> list[Judgment]:
    """The judgments a judgment log holds (a record with an error is a failed verdict)."""
    out: list[Judgment] = []
    for record in records:
        extras = dict(record.derivation)
        if not extras:
            continue
        out.append(_from_record(record, extras))
    return out


def _from_record(record: SampleRecord, d: dict[str, object]) -> Judgment:
    extras = record.score.extras if record.score else {}
    failed = record.error is not None or record.score is None
    question, category = record.source_id or record.id, record.subtask
    protocol = d.get("protocol")
    if protocol == "pairwise":
        return PairJudgment(question, int(str(d["turn"])), category, str(d["model_1"]), str(d["model_2"]),
                            str(d["order"]), None if failed else extras.get("verdict"),
                            _int(d.get("chars_1")), _int(d.get("chars_2")),
                            extras.get("weighted"), extras.get("mass"))
    if protocol == "single":
        scale = d.get("scale") or (1, 10)
        assert isinstance(scale, Sequence)
        rating = None if failed else extras.get("rating")
        return SingleJudgment(question, int(str(d["turn"])), category, str(d["model"]), rating,
                              (int(scale[0]), int(scale[1])))
    preference = None if failed else extras.get("preference")
    return ReferenceJudgment(question, category, str(d["model"]), str(d["baseline"]), preference,
                             _int(d.get("chars_model")), _int(d.get("chars_baseline")))


def _int(value: object) -> int | None:
    return int(str(value)) if value is not None else None
