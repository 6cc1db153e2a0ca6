"""Reading verdicts from judge outputs: pairwise tags, ratings, and first-token probabilities.

Text verdicts follow FastChat's format (`[[A]]`, `[[B]]`, `[[C]]`; `Rating: [[7]]`) and accept
the variants real judges write (case, spaces, `[[Tie]]`, `[[Assistant A]]`, single brackets,
"Final verdict: B", a bare letter, ratings as words). Several different verdicts in one
output are ambiguous: a parse failure (re-asked), never a guess. A failure is `None`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

from evalkit.types import Message

PAIR_VERDICTS = ("A", "B", "tie")
REASK_PAIR = "Answer with [[A]], [[B]] or [[C]] only."
REASK_RATING = "Answer with the rating only, in the form Rating: [[n]]."

_TAG = r"(?:assistant\s*)?(a|b|c|tie)"
_DOUBLE = re.compile(r"\[\[\s*" + _TAG + r"\s*\]\]", re.IGNORECASE)
_SINGLE = re.compile(r"\[\s*" + _TAG + r"\s*\]", re.IGNORECASE)
_FINAL = re.compile(r"(?:final\s+)?verdict\s*(?:is)?\s*[:\-]?\s*\**\s*(?:a\s+)?(?:assistant\s*)?(tie|a|b|c)\b",
                    re.IGNORECASE)
_BARE = re.compile(r"^\W*(?:assistant\s*)?(a|b|c|tie)\W*$", re.IGNORECASE)

WORDS = {"one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8,
         "nine": 9, "ten": 10}
_NUMBER = r"(\d+(?:\.\d+)?|" + "|".join(WORDS) + r")"
_RATING_PATTERNS = (
    re.compile(r"\[\[\s*" + _NUMBER + r"\s*(?:/\s*10|/\s*5)?\s*\]\]", re.IGNORECASE),  # [[7]] (FastChat)
    re.compile(r"rating\s*[:=]?\s*\[?\s*" + _NUMBER + r"\b", re.IGNORECASE),  # Rating: 7 / Rating: [7
    re.compile(r"\[\s*" + _NUMBER + r"\s*\]", re.IGNORECASE),  # [7] (FastChat's fallback)
    re.compile(r"\b" + _NUMBER + r"\s*(?:/|out of)\s*(?:10|5)\b", re.IGNORECASE),  # 7/10
    re.compile(r"^\W*" + _NUMBER + r"\W*$", re.IGNORECASE),  # a bare number
)


def _normal(letter: str) -> str:
    letter = letter.lower()
    return "tie" if letter in ("c", "tie") else letter.upper()


def parse_pair(text: str) -> str | None:
    """"A", "B", "tie", or None (no verdict, or several different ones)."""
    for pattern in (_DOUBLE, _SINGLE, _FINAL, _BARE):
        found = {_normal(m) for m in pattern.findall(text)}
        if len(found) == 1:
            return found.pop()
        if len(found) > 1:
            return None  # ambiguous: asking again beats guessing
    return None


def parse_rating(text: str, scale: tuple[int, int] = (1, 10)) -> float | None:
    """The rating, or None (none found, several different, or outside the scale)."""
    for pattern in _RATING_PATTERNS:
        values = {_number(m) for m in pattern.findall(text)}
        if len(values) > 1:
            return None
        if values:
            value = values.pop()
            return value if scale[0] <= value <= scale[1] else None
    return None


def _number(raw: str) -> float:
    return float(WORDS[raw.lower()]) if raw.lower() in WORDS else float(raw)


def reask_prompt(prompt: Sequence[Message], output: str, kind: str) -> tuple[Message, ...]:
    """The judge's conversation with its own unparseable answer and a request for the verdict only."""
    follow_up = REASK_PAIR if kind == "pair" else REASK_RATING
    return (*prompt, Message("assistant", output), Message("user", follow_up))


@dataclass(frozen=True)
class ProbVerdict:
    """A verdict read from the first token's probabilities of "A", "B" and "C" (tie)."""

    p_a: float
    p_b: float
    p_tie: float
    #: probability on the three verdict tokens (before normalising); below MIN_MASS: a failure
    mass: float
    #: choices absent from the server's top list (their probability counted as 0)
    not_in_top: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return self.mass >= MIN_MASS

    @property
    def verdict(self) -> str:
        """The most likely of the three (ties broken towards "tie")."""
        best = max(self.p_a, self.p_b, self.p_tie)
        return "tie" if self.p_tie == best else ("A" if self.p_a == best else "B")

    @property
    def score_first(self) -> float:
        """Expected outcome for the answer in position A: P(A) + P(tie)/2 (normalised)."""
        return self.p_a + 0.5 * self.p_tie


MIN_MASS = 0.5
PAIR_TOKENS = ("A", "B", "C")


def prob_verdict(logprobs: Sequence[float], not_in_top: Sequence[str] = ()) -> ProbVerdict:
    """From the log-probabilities of "A", "B", "C" as the first token (choices not in the
    server's top list carry no probability: their floor value is only an upper bound)."""
    probs = [0.0 if token in not_in_top else math.exp(lp) for token, lp in zip(PAIR_TOKENS, logprobs, strict=True)]
    mass = sum(probs)
    if mass <= 0:
        return ProbVerdict(0.0, 0.0, 0.0, 0.0, tuple(not_in_top))
    p_a, p_b, p_tie = (p / mass for p in probs)
    return ProbVerdict(p_a, p_b, p_tie, mass, tuple(not_in_top))
