"""Metrics of a judgment run, each with n and a 95% CI (bootstrap over questions: a question's
turns and answer orders are resampled together), and the judge diagnostics.

Pairwise (model_1 vs model_2, both orders combined by FastChat's rule): wins / ties / losses,
`win_rate` (W/n) and `win_rate_ties_half` ((W + T/2)/n), the probability-weighted win rate
when verdicts came from logprobs; diagnostics: position consistency, first-position
preference, P(longer answer wins), the win rate split by which answer is longer, the
parse-failure rate. Single: the mean rating per model. Reference: AlpacaEval's win rate and
standard error per model, with W/T/L. Overall, per category and per turn.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

import numpy as np

from evalkit.judges.judgments import FASTCHAT_RULE, PairJudgment, ReferenceJudgment, SingleJudgment
from evalkit.metrics.stats import Z95, wilson_interval
from evalkit.metrics.winrate import WinTieLoss, alpaca_eval_winrate, cluster_bootstrap_mean
from evalkit.results import TaskResults
from evalkit.types import MetricValue

Group = dict[str, MetricValue]
T = TypeVar("T")


def _mean_metric(name: str, values: Sequence[float], clusters: Sequence[str], seed: int, note: str = "",
                 higher_is_better: bool = True) -> MetricValue:
    if not values:
        return MetricValue(name, math.nan, 0, note=note)
    low, high = cluster_bootstrap_mean(values, clusters, seed=seed)
    return MetricValue(name, float(np.mean(values)), len(values), _finite(low), _finite(high),
                       "bootstrap over questions", higher_is_better, note)


def _share_metric(name: str, hits: int, n: int, note: str, higher_is_better: bool = True) -> MetricValue:
    if n == 0:
        return MetricValue(name, math.nan, 0, note=note)
    low, high = wilson_interval(hits, n)
    return MetricValue(name, hits / n, n, low, high, "wilson", higher_is_better, note)


def _finite(x: float) -> float | None:
    return None if math.isnan(x) else x


def _groups(items: Sequence[T], category: Callable[[T], str], turn: Callable[[T], int]) -> dict[str, list[T]]:
    """Per category and, when there are several turns, per turn ("turn1", "turn2")."""
    out: dict[str, list[T]] = defaultdict(list)
    for item in items:
        out[category(item)].append(item)
    if len({turn(i) for i in items}) > 1:
        for item in items:
            out[f"turn{turn(item)}"].append(item)
    return dict(sorted(out.items()))


# ---------------------------------------------------------------------------------------------
# Pairwise


@dataclass(frozen=True)
class PairOutcome:
    """Both orders of one (question, turn), combined."""

    question: str
    turn: int
    category: str
    ab: PairJudgment
    ba: PairJudgment

    @property
    def parsed(self) -> bool:
        return self.ab.verdict is not None and self.ba.verdict is not None

    @property
    def consistent(self) -> bool:
        return self.ab.winner == self.ba.winner

    @property
    def outcome(self) -> float:
        """For model_1: 1 win, 0.5 tie, 0 loss (FastChat's rule)."""
        if self.ab.winner == "tie" or not self.consistent:
            return 0.5
        return 1.0 if self.ab.winner == "model_1" else 0.0

    @property
    def weighted(self) -> float | None:
        if self.ab.weighted is None or self.ba.weighted is None:
            return None
        return (self.ab.weighted + self.ba.weighted) / 2

    @property
    def longer(self) -> str | None:
        """"model_1" or "model_2" (the longer answer in characters); None when equal or unknown."""
        c1, c2 = self.ab.chars_1, self.ab.chars_2
        if c1 is None or c2 is None or c1 == c2:
            return None
        return "model_1" if c1 > c2 else "model_2"


def pair_outcomes(judgments: Sequence[PairJudgment]) -> tuple[list[PairOutcome], int]:
    """(outcomes with both orders present, judgments left without their other order)."""
    by_key: dict[tuple[str, int], dict[str, PairJudgment]] = defaultdict(dict)
    for j in judgments:
        by_key[(j.question, j.turn)][j.order] = j
    outcomes = [PairOutcome(q, t, o["ab"].category, o["ab"], o["ba"])
                for (q, t), o in by_key.items() if "ab" in o and "ba" in o]
    return outcomes, sum(1 for o in by_key.values() if len(o) < 2)


def pairwise_results(judgments: Sequence[PairJudgment], seed: int = 0,
                     self_preference: str | None = None) -> TaskResults:
    outcomes, unpaired = pair_outcomes(judgments)
    overall = pair_metrics(outcomes, seed)
    overall.update(pair_diagnostics(judgments, outcomes, seed))
    models = {(j.model_1, j.model_2) for j in judgments}
    details: dict[str, object] = {"rule": FASTCHAT_RULE, "unpaired_judgments": unpaired,
                                  "models": sorted({m for pair in models for m in pair})}
    if models:
        model_1, model_2 = sorted(models)[0]
        details.update(model_1=model_1, model_2=model_2)
    if self_preference:
        details["self_preference"] = (f"the judge is also the contestant {self_preference!r}: its win rate "
                                      "may be inflated by self-preference")
    subtasks = {name: pair_metrics(items, seed) for name, items in
                _groups(outcomes, lambda o: o.category, lambda o: o.turn).items()}
    return TaskResults(overall=overall, subtasks=subtasks, details=details)


def pair_metrics(outcomes: Sequence[PairOutcome], seed: int) -> Group:
    """W/T/L and both win rates of model_1, over the outcomes whose both verdicts were read."""
    used = [o for o in outcomes if o.parsed]
    values = [o.outcome for o in used]
    clusters = [o.question for o in used]
    counts = WinTieLoss.of(values) if values else WinTieLoss(0, 0, 0)
    n = counts.n
    out: Group = {
        "wins": MetricValue("wins", float(counts.wins), n, note="model_1 better in both orders"),
        "ties": MetricValue("ties", float(counts.ties), n, higher_is_better=False, note=FASTCHAT_RULE),
        "losses": MetricValue("losses", float(counts.losses), n, higher_is_better=False),
        "win_rate": _mean_metric("win_rate", [float(v == 1.0) for v in values], clusters, seed,
                                 "model_1's wins / all pairs (ties count as not won)"),
        "win_rate_ties_half": _mean_metric("win_rate_ties_half", values, clusters, seed,
                                           "(wins + ties/2) / all pairs (FastChat's win_rate_adjusted)"),
    }
    weighted = [(o.weighted, o.question) for o in used if o.weighted is not None]
    if weighted:
        out["win_rate_weighted"] = _mean_metric(
            "win_rate_weighted", [w for w, _ in weighted], [q for _, q in weighted], seed,
            "mean over pairs of P(model_1 better) + P(tie)/2 from verdict-token probabilities, both orders averaged")
    return out


def pair_diagnostics(judgments: Sequence[PairJudgment], outcomes: Sequence[PairOutcome], seed: int) -> Group:
    used = [o for o in outcomes if o.parsed]
    clusters = [o.question for o in used]
    out: Group = {
        "position_consistency": _mean_metric(
            "position_consistency", [float(o.consistent) for o in used], clusters, seed,
            "share of pairs whose two orders name the same winner (or both a tie)"),
    }
    decided = [j for j in judgments if j.verdict in ("A", "B")]
    out["first_position_preference"] = _mean_metric(
        "first_position_preference", [float(j.verdict == "A") for j in decided], [j.question for j in decided],
        seed, "share of non-tie verdicts (each order) that chose the answer shown first; 0.5 is unbiased")
    out["first_position_preference"] = _with_ideal(out["first_position_preference"], 0.5)
    won = [o for o in used if o.outcome != 0.5 and o.longer is not None]
    out["longer_answer_wins"] = _mean_metric(
        "longer_answer_wins", [float((o.outcome == 1.0) == (o.longer == "model_1")) for o in won],
        [o.question for o in won], seed, "P(the longer answer wins | a pair with a winner and different lengths)")
    out["longer_answer_wins"] = _with_ideal(out["longer_answer_wins"], 0.5)
    for side, name in (("model_1", "win_rate_when_longer"), ("model_2", "win_rate_when_shorter")):
        split = [o for o in used if o.longer == side]
        out[name] = _mean_metric(name, [o.outcome for o in split], [o.question for o in split], seed,
                                 f"model_1's win rate (ties half) on pairs where its answer is {name.rsplit('_', 1)[1]}")
    failures = sum(1 for j in judgments if j.verdict is None)
    out["parse_failure_rate"] = _share_metric("parse_failure_rate", failures, len(judgments),
                                              "verdicts unreadable after the re-ask (never scored as ties)", False)
    masses = [j.mass for j in judgments if j.mass is not None]
    if masses:
        out["verdict_token_mass"] = _mean_metric("verdict_token_mass", masses, [j.question for j in judgments
                                                 if j.mass is not None], seed,
                                                 "mean probability on the verdict tokens A/B/C (below 0.5: a failure)")
    return out


def _with_ideal(metric: MetricValue, ideal: float) -> MetricValue:
    return MetricValue(metric.name, metric.value, metric.n, metric.ci_low, metric.ci_high, metric.ci_method,
                       metric.higher_is_better, metric.note, ideal)


# ---------------------------------------------------------------------------------------------
# Single grading and reference (AlpacaEval-style) judging


def single_results(judgments: Sequence[SingleJudgment], seed: int = 0) -> TaskResults:
    def metrics(items: Sequence[SingleJudgment]) -> Group:
        out: Group = {}
        for model in sorted({j.model for j in items}):
            rated = [j for j in items if j.model == model and j.rating is not None]
            out[f"mean_score:{model}"] = _mean_metric(
                f"mean_score:{model}", [float(j.rating) for j in rated if j.rating is not None],
                [j.question for j in rated], seed, "mean judge rating")
        return out

    overall = metrics(judgments)
    failures = sum(1 for j in judgments if j.rating is None)
    overall["parse_failure_rate"] = _share_metric("parse_failure_rate", failures, len(judgments),
                                                  "ratings unreadable after the re-ask (never scored)", False)
    subtasks = {name: metrics(items) for name, items in
                _groups(judgments, lambda j: j.category, lambda j: j.turn).items()}
    return TaskResults(overall=overall, subtasks=subtasks)


def reference_results(judgments: Sequence[ReferenceJudgment], seed: int = 0) -> TaskResults:
    overall = reference_metrics(judgments, seed)
    failures = sum(1 for j in judgments if j.preference is None)
    overall["parse_failure_rate"] = _share_metric("parse_failure_rate", failures, len(judgments),
                                                  "verdicts unreadable after the re-ask (never scored)", False)
    subtasks = {name: reference_metrics(items, seed)
                for name, items in _groups(judgments, lambda j: j.category, lambda j: 1).items()}
    baselines = sorted({j.baseline for j in judgments})
    return TaskResults(overall=overall, subtasks=subtasks, details={"baselines": baselines})


def reference_metrics(judgments: Sequence[ReferenceJudgment], seed: int) -> Group:
    out: Group = {}
    for model in sorted({j.model for j in judgments}):
        mine = [j for j in judgments if j.model == model and j.preference is not None]
        ae = alpaca_eval_winrate([j.preference for j in mine if j.preference is not None])
        half = Z95 * ae.standard_error if not math.isnan(ae.standard_error) else math.nan
        out[f"alpaca_eval_win_rate:{model}"] = MetricValue(
            f"alpaca_eval_win_rate:{model}", ae.win_rate, ae.n_total, _finite(max(0.0, ae.win_rate - half)),
            _finite(min(100.0, ae.win_rate + half)), "normal (alpaca_eval standard error)",
            note=f"AlpacaEval win rate in percent (draws half); standard error {ae.standard_error}")
        out[f"alpaca_eval_standard_error:{model}"] = MetricValue(
            f"alpaca_eval_standard_error:{model}", ae.standard_error, ae.n_total, higher_is_better=False)
        pairs = [(o, j.question) for j in mine if (o := _ae_outcome(j.preference)) is not None]
        counts = WinTieLoss.of([o for o, _ in pairs]) if pairs else WinTieLoss(0, 0, 0)
        for name, value in (("wins", counts.wins), ("ties", counts.ties), ("losses", counts.losses)):
            out[f"{name}:{model}"] = MetricValue(f"{name}:{model}", float(value), counts.n)
        out[f"win_rate:{model}"] = _mean_metric(f"win_rate:{model}", [float(o == 1.0) for o, _ in pairs],
                                                [q for _, q in pairs], seed, "wins / all (draws count as not won)")
        out[f"win_rate_ties_half:{model}"] = _mean_metric(
            f"win_rate_ties_half:{model}", [o for o, _ in pairs], [q for _, q in pairs], seed,
            "(wins + draws/2) / all")
    return out


def _ae_outcome(preference: float | None) -> float | None:
    if preference in (0.0, 1.5):
        return 0.5
    if preference == 2.0:
        return 1.0
    if preference == 1.0:
        return 0.0
    return None  # a weighted preference: counted in AlpacaEval's rate only
