"""The study's results from its votes: the judges' statistics, applied to human votes.

Pairwise: win/tie/loss per model pair (HuatuoGPT-style table), win rates with a bootstrap CI
over questions (`evalkit.metrics.winrate`), Bradley–Terry and Elo with bootstrap CIs
(`evalkit.metrics.ranking`), Fleiss' κ and Krippendorff's α (nominal) among annotators.
Likert: mean per model and criterion with a bootstrap CI over questions, α (ordinal and
interval) per criterion. Ranking: mean rank per system with CIs, and BT over the pairs each
ranking implies. Attention checks: per annotator, the share of repeats answered as the first
time (a swapped repeat counts as the same answer when it picks the same model).
Attention repeats never count in the statistics above.
"""

from __future__ import annotations

import itertools
import math
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from evalkit.human.store import Vote, VoteStore
from evalkit.human.study import StudyConfig, study_config
from evalkit.metrics.interrater import fleiss_kappa, krippendorff_alpha
from evalkit.metrics.ranking import Battle, rank_with_ci
from evalkit.metrics.winrate import WinTieLoss, cluster_bootstrap_mean

TIE, BOTH_BAD = "tie", "tie (bothbad)"
Table = list[dict[str, Any]]


@dataclass
class Results:
    design: str
    n_votes: int
    tables: dict[str, Table] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"design": self.design, "n_votes": self.n_votes, "tables": self.tables, "notes": self.notes}


def pair_label(item: Mapping[str, Any], answer: Mapping[str, Any]) -> str:
    """A pairwise vote as a label: the winner's model name, "tie" or "tie (bothbad)"."""
    choice = str(answer["choice"])
    if choice == "tie":
        return TIE
    if choice == "bothbad":
        return BOTH_BAD
    return str(item["models"][int(choice)])


def outcome_of(item: Mapping[str, Any], label: str) -> float:
    """For the item's first model: 1 win, 0.5 tie (either kind), 0 loss."""
    if label in (TIE, BOTH_BAD):
        return 0.5
    return 1.0 if label == item["models"][0] else 0.0


def _ci(values: Sequence[float], clusters: Sequence[str], seed: int) -> tuple[float, float]:
    return cluster_bootstrap_mean(values, clusters, seed=seed) if values else (math.nan, math.nan)


def _ratings(votes: Sequence[Vote], items: Mapping[str, Any], config: StudyConfig, seed: int,
             resamples: int) -> dict[str, Table]:
    battles = []
    for v in votes:
        item = items[v.item_id]
        if config.design == "pairwise":
            m1, m2 = item["models"]
            battles.append(Battle(m1, m2, outcome_of(item, pair_label(item, v.answer))))
        elif config.design == "ranking":
            ranks = v.answer["ranks"]
            for i, j in itertools.combinations(range(len(ranks)), 2):
                battles.append(Battle(item["models"][i], item["models"][j], 1.0 if ranks[i] < ranks[j] else 0.0))
    if not battles:
        return {}
    return {f"{method} ratings": [
        {"model": r.name, "rating": r.rating, "ci_low": r.ci_low, "ci_high": r.ci_high, "rank": r.rank,
         "rank_low": r.rank_low, "rank_high": r.rank_high, "battles": r.battles}
        for r in rank_with_ci(battles, method=method, resamples=resamples, seed=seed)]
        for method in ("bt", "elo")}


def pairwise_tables(votes: Sequence[Vote], items: Mapping[str, Any], seed: int) -> dict[str, Table]:
    by_pair: dict[tuple[str, str], list[tuple[float, str]]] = defaultdict(list)
    for v in votes:
        item = items[v.item_id]
        by_pair[tuple(item["models"])].append((outcome_of(item, pair_label(item, v.answer)), item["question"]))
    rows = []
    for (m1, m2), pairs in sorted(by_pair.items()):
        outcomes, clusters = [o for o, _ in pairs], [q for _, q in pairs]
        wtl = WinTieLoss.of(outcomes)
        wins = [1.0 if o == 1.0 else 0.0 for o in outcomes]
        rows.append({"model_1": m1, "model_2": m2, "wins": wtl.wins, "ties": wtl.ties, "losses": wtl.losses,
                     "n": wtl.n, "win_rate": wtl.win_rate, "win_rate_ci": _ci(wins, clusters, seed),
                     "win_rate_ties_half": wtl.win_rate_ties_half,
                     "win_rate_ties_half_ci": _ci(outcomes, clusters, seed)})
    return {"win/tie/loss": rows}


def _units(votes: Sequence[Vote], key: Any) -> list[list[Any]]:
    """Reliability data (one row per annotator, one column per unit) for Krippendorff's α."""
    cells: dict[tuple[str, Any], Any] = {}
    for v in votes:
        for unit, value in key(v):
            cells[(v.annotator, unit)] = value
    annotators = sorted({a for a, _ in cells})
    units = sorted({u for _, u in cells}, key=str)
    return [[cells.get((a, u)) for u in units] for a in annotators]


def agreement_tables(votes: Sequence[Vote], items: Mapping[str, Any], config: StudyConfig) -> dict[str, Table]:
    rows: Table = []
    if config.design == "pairwise":
        label = {v.vote_id: pair_label(items[v.item_id], v.answer) for v in votes}
        data = _units(votes, lambda v: [(v.item_id, label[v.vote_id])])
        rows.append({"statistic": "Krippendorff's alpha (nominal)", "value": krippendorff_alpha(data, "nominal")})
        rows.append(_fleiss(votes, label, config.per_item))
    elif config.design == "likert":
        for criterion in config.criteria:
            data = _units(votes, lambda v, c=criterion: [(v.item_id, v.answer["ratings"][c])])
            for level in ("ordinal", "interval"):
                rows.append({"statistic": f"Krippendorff's alpha ({level}), {criterion}",
                             "value": krippendorff_alpha(data, level)})
    else:
        data = _units(votes, lambda v: [((v.item_id, m), r) for m, r in zip(items[v.item_id]["models"],
                                                                           v.answer["ranks"], strict=True)])
        rows.append({"statistic": "Krippendorff's alpha (ordinal), ranks", "value": krippendorff_alpha(data, "ordinal")})
    return {"inter-annotator agreement": rows}


def _fleiss(votes: Sequence[Vote], label: Mapping[str, str], per_item: int) -> dict[str, Any]:
    by_item: dict[str, list[str]] = defaultdict(list)
    for v in votes:
        by_item[v.item_id].append(label[v.vote_id])
    full = [labels for labels in by_item.values() if len(labels) == per_item]
    name = f"Fleiss' kappa (items with {per_item} votes: {len(full)})"
    if per_item < 2 or not full:
        return {"statistic": name, "value": math.nan}
    categories = sorted({x for labels in full for x in labels})
    table = [[Counter(labels)[c] for c in categories] for labels in full]
    return {"statistic": name, "value": fleiss_kappa(table)}


def likert_tables(votes: Sequence[Vote], items: Mapping[str, Any], config: StudyConfig, seed: int) -> dict[str, Table]:
    rows = []
    for criterion in config.criteria:
        per_model: dict[str, list[tuple[float, str]]] = defaultdict(list)
        for v in votes:
            item = items[v.item_id]
            per_model[item["models"][0]].append((float(v.answer["ratings"][criterion]), item["question"]))
        for model, pairs in sorted(per_model.items()):
            values = [x for x, _ in pairs]
            rows.append({"criterion": criterion, "model": model, "mean": float(np.mean(values)),
                         "ci": _ci(values, [q for _, q in pairs], seed), "n": len(values)})
    return {f"likert means (1-{config.scale})": rows}


def ranking_tables(votes: Sequence[Vote], items: Mapping[str, Any], seed: int) -> dict[str, Table]:
    per_model: dict[str, list[tuple[float, str]]] = defaultdict(list)
    for v in votes:
        item = items[v.item_id]
        for model, rank in zip(item["models"], v.answer["ranks"], strict=True):
            per_model[model].append((float(rank), item["question"]))
    rows = [{"model": m, "mean_rank": float(np.mean([r for r, _ in p])), "ci": _ci([r for r, _ in p],
             [q for _, q in p], seed), "n": len(p)} for m, p in per_model.items()]
    return {"mean rank (1 = best)": sorted(rows, key=lambda r: (r["mean_rank"], r["model"]))}


def _same_answer(first: Vote, repeat: Vote) -> bool:
    """Answers are stored by model index, so a swapped repeat compares as is."""
    return dict(first.answer) == dict(repeat.answer)


def attention_table(votes: Sequence[Vote], checks: Mapping[tuple[str, int], str]) -> Table:
    """Per annotator: attention repeats answered, and how many matched the first answer."""
    first: dict[tuple[str, str], Vote] = {(v.annotator, v.item_id): v for v in votes if (v.annotator, v.slot) not in checks}
    passed: dict[str, list[bool]] = defaultdict(list)
    for v in votes:
        if (v.annotator, v.slot) in checks and (v.annotator, v.item_id) in first:
            passed[v.annotator].append(_same_answer(first[(v.annotator, v.item_id)], v))
    return [{"annotator": a, "checks": len(p), "consistent": sum(p), "kind": "duplicate/swapped repeats"}
            for a, p in sorted(passed.items())]


def progress_table(store: VoteStore) -> Table:
    rows = []
    for name in store.annotators():
        done, total = store.progress(name)
        rows.append({"annotator": name, "votes": done, "assigned": total})
    return rows


def compute_results(store: VoteStore, *, seed: int = 0, resamples: int = 1000) -> Results:
    config = study_config(store)
    items = store.items()
    checks = {(a.annotator, a.slot): a.attention for a in store.assignments() if a.attention}
    every = store.votes()
    votes = [v for v in every if (v.annotator, v.slot) not in checks]
    out = Results(config.design, len(votes))
    out.tables["progress"] = progress_table(store)
    if not votes:
        out.notes.append("no votes yet")
        return out
    if config.design == "pairwise":
        out.tables.update(pairwise_tables(votes, items, seed))
    elif config.design == "likert":
        out.tables.update(likert_tables(votes, items, config, seed))
    else:
        out.tables.update(ranking_tables(votes, items, seed))
    out.tables.update(_ratings(votes, items, config, seed, resamples))
    out.tables.update(agreement_tables(votes, items, config))
    if checks:
        out.tables["attention checks"] = attention_table(every, checks)
    out.notes.append(f"{len(checks)} attention repeats are left out of every statistic above")
    return out
