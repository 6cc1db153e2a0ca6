"""Circular evaluation (OpenCompass's CircularEval): a question counts as correct only if it
is answered correctly under every rotation of its options. Also the model's answer
position bias: how often it picks each position whatever the content (ideal: 1/n each)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from evalkit.log.records import SampleRecord
from evalkit.metrics.stats import wilson_interval
from evalkit.types import MetricValue

LETTERS = "ABCDEFGHIJ"


def picked_position(extracted: Any) -> int | None:
    """The option position an answer picked: an index, or a letter (generative tasks)."""
    if isinstance(extracted, bool):
        return None
    if isinstance(extracted, int):
        return extracted
    if isinstance(extracted, str) and len(extracted.strip()) == 1 and extracted.strip().upper() in LETTERS:
        return LETTERS.index(extracted.strip().upper())
    return None


def proportion(name: str, hits: float, n: int, note: str = "", ideal: float | None = None) -> MetricValue:
    low, high = wilson_interval(hits, n) if n else (None, None)
    return MetricValue(name, hits / n if n else float("nan"), n, low, high, "wilson", note=note, ideal=ideal)


def circular_metrics(records: Sequence[SampleRecord]) -> dict[str, MetricValue]:
    scored = [r for r in records if r.score is not None and r.error is None]
    by_question: dict[str, list[SampleRecord]] = defaultdict(list)
    for r in records:
        by_question[r.join_key].append(r)
    complete = {k: rs for k, rs in by_question.items() if all(r.score is not None and r.error is None for r in rs)}
    circular = sum(1 for rs in complete.values() if all(r.score and r.score.value == 1 for r in rs))
    first = [r for r in scored if r.derivation.get("rotation") == 0]
    out = {
        "circular_acc": proportion("circular_acc", circular, len(complete),
                                   "correct under every rotation of the options (questions with no failed rotation)"),
        "acc_rot0": proportion("acc_rot0", sum(r.score.value for r in first if r.score), len(first),
                               "accuracy on the original option order"),
    }
    picks = [picked_position(r.score.extracted if r.score else None) for r in scored]
    counted = [p for p in picks if p is not None]
    width = max((len(r.choices) for r in scored), default=0)
    for pos in range(min(width, len(LETTERS))):
        name = f"pick_{LETTERS[pos]}"
        out[name] = proportion(name, sum(1 for p in counted if p == pos), len(counted),
                               "share of answers at this position over all rotations", ideal=1 / width)
    return out
