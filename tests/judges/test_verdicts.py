"""Verdict parsing, table-driven over the outputs real judges write; the re-ask; and a judge
that always answers "A" (all ties, position consistency 0)."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Sequence

import pytest

from evalkit.judges.asking import ask_text
from evalkit.judges.templates import get_template
from evalkit.judges.verdicts import REASK_PAIR, parse_pair, parse_rating, prob_verdict
from evalkit.task import ScoreContext
from evalkit.types import GenerateRequest, Message, Request, Response

PAIR_CASES = [
    ("[[A]]", "A"),
    ("[[B]]", "B"),
    ("[[C]]", "tie"),
    ("Assistant A is more detailed and accurate.\n\nFinal verdict: [[A]]", "A"),  # extra text
    ("Both are fine, but B explains the steps. [[B]] is my verdict.", "B"),
    ("[[a]]", "A"),  # lower case
    ("my verdict: [[b]]", "B"),
    ("[[Tie]]", "tie"),
    ("[[tie]]", "tie"),
    ("[[ A ]]", "A"),  # spaces
    ("**[[B]]**", "B"),  # markdown
    ("[[Assistant A]]", "A"),
    ("Verdict: [B]", "B"),  # single brackets
    ("Final verdict: Assistant B", "B"),
    ("Final verdict is a tie.", "tie"),
    ("A", "A"),  # a bare letter
    ("B.", "B"),
    ("[[A]] ... on reflection [[A]]", "A"),  # the same tag twice
    ("[[A]] or maybe [[B]]", None),  # both tags: ambiguous
    ("I cannot decide between them.", None),  # no tag
    ("", None),
    ("Output [[A]] if A is better, [[B]] if B is better.", None),  # echoing the instructions
]

RATING_CASES = [
    ("Rating: [[7]]", 7.0),
    ("The answer is good. Rating: [[8.5]]", 8.5),
    ("[[10]]", 10.0),
    ("Rating: [7]", 7.0),
    ("Rating: 6", 6.0),
    ("I would give it 9/10.", 9.0),
    ("Rating: [[seven]]", 7.0),  # a rating as a word
    ("Rating: Four", 4.0),
    ("rating: [[3]]", 3.0),
    ("5", 5.0),
    ("Rating: [[11]]", None),  # outside the scale
    ("Rating: [[0]]", None),
    ("[[3]] and later [[9]]", None),  # two different ratings
    ("No rating here.", None),
]


@pytest.mark.parametrize(("text", "expected"), PAIR_CASES)
def test_pair_verdicts(text: str, expected: str | None) -> None:
    assert parse_pair(text) == expected


@pytest.mark.parametrize(("text", "expected"), RATING_CASES)
def test_ratings(text: str, expected: float | None) -> None:
    assert parse_rating(text) == expected


def test_five_point_scale_bounds() -> None:
    assert parse_rating("Rating: [[5]]", (1, 5)) == 5.0
    assert parse_rating("Rating: [[7]]", (1, 5)) is None


class ScriptedJudge:
    """Answers each request with the next scripted text; records what it was sent."""

    def __init__(self, replies: Sequence[str]) -> None:
        self.replies = list(replies)
        self.sent: list[Request] = []

    async def __call__(self, requests: Sequence[Request]) -> list[Response]:
        self.sent.extend(requests)
        return [Response(text=self.replies.pop(0)) for _ in requests]


def _ask(replies: Sequence[str]) -> tuple[object, list[Request], str | None, list[Response]]:
    judge = ScriptedJudge(replies)
    messages = (Message("system", "judge"), Message("user", "question and answers"))
    asked = asyncio.run(ask_text(messages, get_template("pair-v2"), 64, ScoreContext("q", 0, {"judge": judge})))
    assert not asked.transient
    assert judge.sent == asked.requests  # every request is logged as sent
    return asked.verdict, asked.requests, asked.failure, asked.responses


def test_a_reask_that_succeeds() -> None:
    verdict, requests, error, responses = _ask(["Both answers have merit.", "[[B]]"])
    assert verdict == "B" and error is None and len(requests) == 2
    reask = requests[1]
    assert isinstance(reask, GenerateRequest)
    assert reask.prompt[-2] == Message("assistant", "Both answers have merit.")  # its own output
    assert reask.prompt[-1] == Message("user", REASK_PAIR)


def test_a_failed_reask_is_an_error_with_its_raw_text_never_a_tie() -> None:
    verdict, requests, error, responses = _ask(["hmm", "still thinking"])
    assert verdict is None and len(requests) == 2
    assert error is not None and "still thinking" in error


def test_prob_verdict_mass_and_failure() -> None:
    pv = prob_verdict([math.log(0.6), math.log(0.2), math.log(0.1)])
    assert pv.ok and pv.verdict == "A" and math.isclose(pv.mass, 0.9)
    assert math.isclose(pv.p_a, 0.6 / 0.9) and math.isclose(pv.score_first, (0.6 + 0.05) / 0.9)
    low = prob_verdict([math.log(0.2), math.log(0.1), math.log(0.1)])
    assert not low.ok  # under half the mass on the verdict tokens: a failure
    missing = prob_verdict([math.log(0.5), math.log(0.3), math.log(0.3)], not_in_top=("C",))
    assert math.isclose(missing.mass, 0.8) and missing.p_tie == 0.0
