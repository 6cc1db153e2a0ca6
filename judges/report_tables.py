"""The seed papers' report tables and rankings, from judgment logs (formulas in judges/README.md).

- rankings: Bradley–Terry and online Elo with bootstrap CIs (evalkit/metrics/ranking.py) over
  the battles of every pairwise and reference judgment, and the win-rate matrix;
- HuatuoGPT's win / tie / lose table: model × baseline, per question set;
- Vicuna's relative score and Phoenix's performance ratio (Σ model rating / Σ baseline rating),
  with Phoenix's beat rate, from single grading, per category;
- AlpacaEval's length-controlled win rate per (model, baseline) of the reference protocol;
- agreement and Cohen's κ between two judgment logs on the same pairs.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from evalkit.errors import ConfigError, RunLogError
from evalkit.judges.aggregate import PairOutcome, _ae_outcome, pair_outcomes
from evalkit.judges.judgments import (
    Judgment,
    PairJudgment,
    ReferenceJudgment,
    SingleJudgment,
    judgments_from_records,
)
from evalkit.log.io import read_log
from evalkit.metrics.agreement import agreement, cohen_kappa
from evalkit.metrics.length_controlled import length_controlled_win_rate
from evalkit.metrics.ranking import Battle, RatedModel, rank_with_ci, win_rate_matrix
from evalkit.metrics.winrate import WinTieLoss, cluster_bootstrap_mean, cluster_bootstrap_ratio

ALL = "all"


@dataclass(frozen=True)
class JudgmentSource:
    """One judgment log: its path, its judge (spec) and its judgments."""

    path: str
    judge: str
    judgments: list[Judgment]


def load_judgment_log(path: Path) -> JudgmentSource:
    try:
        log = read_log(path)
    except RunLogError as exc:
        raise ConfigError(str(exc)) from None
    if log.header.kind != "stage" or log.header.task.get("name") != "judge":
        raise ConfigError(f"{path}: not a judgment log (made by `evalkit judge`)")
    judge = str((log.header.roles.get("judge") or {}).get("spec") or "judge")
    return JudgmentSource(str(path), judge, judgments_from_records(log.samples.values()))


# ---------------------------------------------------------------------------------------------
# battles and rankings


def battles_of(*judgment_sets: Sequence[Judgment]) -> list[Battle]:
    """One battle per pairwise (model pair, question, turn) whose two orders were read
    (FastChat's rule), and one per reference judgment with a win, loss or draw (weighted ones
    are left out). Each set is one judgment log: orders are paired within a log only."""
    return [battle for judgments in judgment_sets for battle, _ in _battles_with_groups(judgments)]


def parsed_outcomes(judgments: Sequence[Judgment]) -> list[PairOutcome]:
    """Both orders combined, per model pair (a log may hold several pairs)."""
    by_pair: dict[tuple[str, str], list[PairJudgment]] = defaultdict(list)
    for j in judgments:
        if isinstance(j, PairJudgment):
            by_pair[(j.model_1, j.model_2)].append(j)
    return [o for _, items in sorted(by_pair.items()) for o in pair_outcomes(items)[0] if o.parsed]


@dataclass(frozen=True)
class Rankings:
    bt: list[RatedModel]
    elo: list[RatedModel]
    win_rates: dict[str, dict[str, float]]
    battles: int


def rankings(battles: Sequence[Battle], *, resamples: int, seed: int, anchor: str | None) -> Rankings | None:
    if len({m for b in battles for m in (b.model_a, b.model_b)}) < 2:
        return None
    return Rankings(rank_with_ci(battles, method="bt", resamples=resamples, seed=seed, anchor=anchor),
                    rank_with_ci(battles, method="elo", resamples=resamples, seed=seed, anchor=anchor),
                    win_rate_matrix(battles), len(battles))


# ---------------------------------------------------------------------------------------------
# HuatuoGPT: win / tie / lose


@dataclass(frozen=True)
class WinTieLoseRow:
    model: str
    baseline: str
    question_set: str
    wins: int
    ties: int
    losses: int

    @property
    def n(self) -> int:
        return self.wins + self.ties + self.losses


def win_tie_lose(*judgment_sets: Sequence[Judgment]) -> list[WinTieLoseRow]:
    """Per (model, baseline) and question set (all, each category, each turn): W/T/L counts of
    the model, pairwise by FastChat's rule (model_1 is the model) and reference verdicts."""
    cells: dict[tuple[str, str, str], list[float]] = defaultdict(list)
    for battle, groups in (x for judgments in judgment_sets for x in _battles_with_groups(judgments)):
        for group in (ALL, *groups):
            cells[(battle.model_a, battle.model_b, group)].append(battle.outcome)
    rows = []
    for (model, baseline, group), outcomes in sorted(cells.items(), key=lambda kv: (kv[0][0], kv[0][1],
                                                                                     kv[0][2] != ALL, kv[0][2])):
        counts = WinTieLoss.of(outcomes)
        rows.append(WinTieLoseRow(model, baseline, group, counts.wins, counts.ties, counts.losses))
    return rows


def _battles_with_groups(judgments: Sequence[Judgment]) -> list[tuple[Battle, tuple[str, ...]]]:
    out = [(Battle(o.ab.model_1, o.ab.model_2, o.outcome), _pair_groups(o)) for o in parsed_outcomes(judgments)]
    for j in judgments:
        if isinstance(j, ReferenceJudgment) and (outcome := _ae_outcome(j.preference)) is not None:
            out.append((Battle(j.model, j.baseline, outcome), (j.category,) if j.category else ()))
    return out


def _pair_groups(o: PairOutcome) -> tuple[str, ...]:
    return tuple(g for g in (o.category, f"turn{o.turn}") if g)


# ---------------------------------------------------------------------------------------------
# Vicuna relative score, Phoenix performance ratio and beat rate


@dataclass(frozen=True)
class ScoreRatioRow:
    model: str
    baseline: str
    category: str
    #: Σ model rating / Σ baseline rating × 100 (Vicuna's relative score, Phoenix's performance ratio)
    ratio: float
    ci_low: float
    ci_high: float
    model_total: float
    baseline_total: float
    #: share of items where the model's rating is higher (Phoenix's beat rate), and its CI
    beat_rate: float
    beat_ci_low: float
    beat_ci_high: float
    tie_rate: float
    n: int


def score_ratios(judgments: Sequence[Judgment], baselines: Sequence[str] | None = None, *, resamples: int = 1000,
                 seed: int = 0) -> list[ScoreRatioRow]:
    """For each model and baseline graded on the same (question, turn): overall and per category."""
    ratings: dict[tuple[str, int], dict[str, tuple[float, str]]] = defaultdict(dict)
    for j in judgments:
        if isinstance(j, SingleJudgment) and j.rating is not None:
            ratings[(j.question, j.turn)][j.model] = (float(j.rating), j.category)
    models = sorted({m for per in ratings.values() for m in per})
    rows = []
    for baseline in baselines if baselines is not None else models:
        for model in (m for m in models if m != baseline):
            both = [(q, per[model][0], per[baseline][0], per[model][1])
                    for (q, _), per in sorted(ratings.items()) if model in per and baseline in per]
            groups: dict[str, list[tuple[str, float, float, str]]] = {ALL: both}
            for item in both:
                groups.setdefault(item[3], []).append(item)
            rows += [_ratio_row(model, baseline, group, items, resamples, seed)
                     for group, items in groups.items() if items]
    return rows


def _ratio_row(model: str, baseline: str, category: str, items: Sequence[tuple[str, float, float, str]],
               resamples: int, seed: int) -> ScoreRatioRow:
    questions = [q for q, *_ in items]
    mine = np.array([m for _, m, _, _ in items])
    theirs = np.array([b for _, _, b, _ in items])
    ratio = 100 * mine.sum() / theirs.sum() if theirs.sum() else math.nan
    low, high = cluster_bootstrap_ratio(mine, theirs, questions, resamples=resamples, seed=seed)
    beat = (mine > theirs).astype(float)
    beat_low, beat_high = cluster_bootstrap_mean(beat, questions, resamples=resamples, seed=seed)
    return ScoreRatioRow(model, baseline, category, float(ratio), 100 * low, 100 * high, float(mine.sum()),
                         float(theirs.sum()), float(beat.mean()), beat_low, beat_high,
                         float((mine == theirs).mean()), len(items))


# ---------------------------------------------------------------------------------------------
# AlpacaEval length-controlled win rate


@dataclass(frozen=True)
class LengthControlledRow:
    model: str
    baseline: str
    lc_win_rate: float
    standard_error: float
    ci_low: float
    ci_high: float
    win_rate: float
    n: int
    variant: str
    weights: dict[str, float] = field(default_factory=dict)


def length_controlled(judgments: Sequence[Judgment], difficulty: Mapping[str, float] | None = None, *,
                      resamples: int = 1000, seed: int = 0) -> list[LengthControlledRow]:
    """Per (model, baseline) of reference judgments with both lengths known (draws 0 read as 1.5)."""
    by_pair: dict[tuple[str, str], list[ReferenceJudgment]] = defaultdict(list)
    for j in judgments:
        if (isinstance(j, ReferenceJudgment) and j.preference is not None and 1 <= _ae_pref(j.preference) <= 2
                and j.chars_model is not None and j.chars_baseline is not None):
            by_pair[(j.model, j.baseline)].append(j)
    rows = []
    for (model, baseline), items in sorted(by_pair.items()):
        if len(items) < 2:
            continue
        if difficulty is not None:
            missing = [j.question for j in items if j.question not in difficulty]
            if missing:
                raise ConfigError(f"the difficulty file has no value for question {missing[0]!r}")
        lc = length_controlled_win_rate(
            [_ae_pref(j.preference) - 1 for j in items if j.preference is not None],
            [float(j.chars_baseline or 0) - float(j.chars_model or 0) for j in items],
            None if difficulty is None else [difficulty[j.question] for j in items], resamples=resamples, seed=seed)
        rows.append(LengthControlledRow(model, baseline, lc.lc_win_rate, lc.standard_error, lc.ci_low, lc.ci_high,
                                        lc.win_rate, lc.n, lc.variant, lc.weights))
    return rows


def _ae_pref(preference: float) -> float:
    return 1.5 if preference == 0 else preference


# ---------------------------------------------------------------------------------------------
# agreement between two judgment logs


@dataclass(frozen=True)
class AgreementRow:
    first: str
    second: str
    n: int
    agreement_with_ties: float
    agreement_without_ties: float
    n_without_ties: int
    cohen_kappa: float


def pair_labels(judgments: Sequence[Judgment]) -> dict[tuple[str, int, str, str], str]:
    """(question, turn, model, model) sorted by name → the winner's name or "tie" (both orders combined)."""
    out = {}
    for o in parsed_outcomes(judgments):
        a, b = o.ab.model_1, o.ab.model_2
        label = "tie" if o.outcome == 0.5 else (a if o.outcome == 1.0 else b)
        first, second = sorted((a, b))
        out[(o.question, o.turn, first, second)] = label
    return out


def agreements(sources: Sequence[JudgmentSource]) -> list[AgreementRow]:
    labels = [pair_labels(s.judgments) for s in sources]
    rows = []
    for i in range(len(sources)):
        for k in range(i + 1, len(sources)):
            shared = sorted(set(labels[i]) & set(labels[k]))
            if not shared:
                continue
            a, b = [labels[i][key] for key in shared], [labels[k][key] for key in shared]
            kept = sum(1 for x, y in zip(a, b, strict=True) if x != "tie" and y != "tie")
            rows.append(AgreementRow(f"{sources[i].path} ({sources[i].judge})", f"{sources[k].path} ({sources[k].judge})",
                                     len(shared), agreement(a, b), agreement(a, b, include_ties=False), kept,
                                     cohen_kappa(a, b)))
    return rows
