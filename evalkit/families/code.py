"""Code-generation tasks: pass@k over n sampled programs per problem (Chen et al., 2021)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from evalkit.log.records import SampleRecord
from evalkit.metrics.passk import pass_at_k_metric, usable_ks
from evalkit.results import TaskResults
from evalkit.types import MetricValue


def aggregate_pass_at_k(records: Sequence[SampleRecord], seed: int = 0) -> TaskResults:
    scored = [r for r in records if r.score is not None and r.error is None]
    ns = [int(r.score.extras.get("n", 1)) for r in scored if r.score]
    cs = [int(r.score.extras.get("c", round(r.score.value))) for r in scored if r.score]
    overall: dict[str, MetricValue] = {}
    for k in usable_ks(ns):
        overall[f"pass@{k}"] = pass_at_k_metric(ns, cs, k, seed=seed)
    errors = len(records) - len(scored)
    overall["errors"] = MetricValue("errors", float(errors), len(records), higher_is_better=False,
                                    note="samples with a failed request; excluded from every metric")
    outcomes: Counter[str] = Counter()
    for r in scored:
        if r.score:
            outcomes.update(_outcome_kind(reason) for reason in r.score.extras.get("results", []))
    details = {
        "isolation": sorted({str(r.score.extras.get("isolation")) for r in scored if r.score}),
        "per_problem": {r.sample_id: {"n": n, "c": c} for r, n, c in zip(scored, ns, cs, strict=True)},
        "outcomes": dict(sorted(outcomes.items())),
    }
    return TaskResults(overall=overall, details=details)


def _outcome_kind(reason: str) -> str:
    if reason == "passed":
        return "passed"
    if reason.startswith("wall-clock"):
        return "timeout"
    if reason.startswith("failed: "):
        return reason[len("failed: "):].split(":")[0][:60] or "failed"
    return reason.split(" (")[0][:60]
