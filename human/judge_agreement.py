"""Human–judge agreement: the study's pairwise votes against a judgment log of the same items.

The judge's verdict on (question, turn) is its two answer orders combined by FastChat's rule
(`evalkit.judges.aggregate.pair_outcomes`): the winning model's name, or "tie". Each human
vote on the same question, turn and model pair is compared with it (MT-Bench's per-vote
comparison, Zheng et al. 2023 §4.2): agreement with ties (a human "both bad" and a judge tie
agree), without ties (a pair where either says tie is dropped), and Cohen's κ (both-bad read as
tie, so the two sides use the same labels).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from evalkit.errors import ConfigError, RunLogError
from evalkit.human.results import BOTH_BAD, TIE, Table, pair_label
from evalkit.human.store import Vote
from evalkit.judges.aggregate import pair_outcomes
from evalkit.judges.judgments import PairJudgment, judgments_from_records
from evalkit.log import read_log
from evalkit.metrics.agreement import agreement, cohen_kappa

JudgeKey = tuple[str, int, frozenset[str]]


def judge_labels(path: Path) -> dict[JudgeKey, str]:
    """(question, turn, {model_1, model_2}) -> the judge's label, from a pairwise judgment log."""
    try:
        log = read_log(path)
    except RunLogError as exc:
        raise ConfigError(str(exc)) from None
    pairs = [j for j in judgments_from_records(log.samples.values()) if isinstance(j, PairJudgment)]
    if not pairs:
        raise ConfigError(f"{path}: not a pairwise judgment log (no pairwise judgments in it)")
    outcomes, _ = pair_outcomes(pairs)
    labels = {}
    for o in outcomes:
        if not o.parsed:
            continue
        m1, m2 = o.ab.model_1, o.ab.model_2
        labels[(o.question, o.turn, frozenset((m1, m2)))] = {1.0: m1, 0.0: m2}.get(o.outcome, TIE)
    return labels


def paired_labels(votes: Sequence[Vote], items: Mapping[str, Any],
                  judged: Mapping[JudgeKey, str]) -> tuple[list[str], list[str]]:
    """(human labels, judge labels), one pair per human vote on a judged item."""
    human, judge = [], []
    for v in votes:
        item = items[v.item_id]
        key = (str(item["question"]), int(item["turn"]), frozenset(item["models"]))
        if key in judged:
            human.append(pair_label(item, v.answer))
            judge.append(judged[key])
    return human, judge


def human_judge_table(votes: Sequence[Vote], items: Mapping[str, Any], judgment_log: Path) -> Table:
    human, judge = paired_labels(votes, items, judge_labels(judgment_log))
    if not human:
        raise ConfigError(f"{judgment_log}: judges none of the study's items (other questions, turns or models)")
    merged = [TIE if x == BOTH_BAD else x for x in human]
    without = sum(1 for x, y in zip(human, judge, strict=True) if x not in (TIE, BOTH_BAD) and y != TIE)
    return [
        {"statistic": "agreement with ties", "value": agreement(human, judge, include_ties=True), "n": len(human)},
        {"statistic": "agreement without ties", "value": agreement(human, judge, include_ties=False), "n": without},
        {"statistic": "Cohen's kappa (both bad = tie)", "value": cohen_kappa(merged, judge), "n": len(human)},
    ]
