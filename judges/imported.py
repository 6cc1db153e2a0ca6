"""Aggregating imported judgments like evalkit's own: one result per model pair or model."""

from __future__ import annotations

from pathlib import Path

from evalkit.judges.aggregate import pairwise_results, reference_results, single_results
from evalkit.judges.importers import import_judgments
from evalkit.judges.judgments import PairJudgment, ReferenceJudgment, SingleJudgment
from evalkit.results import TaskResults


def aggregate_imported(path: Path, fmt: str | None = None, seed: int = 0) -> dict[str, TaskResults]:
    """Pairwise files: one result per (model_1, model_2); single: one for all models;
    AlpacaEval: one per baseline (each model against it)."""
    judgments = import_judgments(path, fmt)
    pairs = [j for j in judgments if isinstance(j, PairJudgment)]
    singles = [j for j in judgments if isinstance(j, SingleJudgment)]
    refs = [j for j in judgments if isinstance(j, ReferenceJudgment)]
    out: dict[str, TaskResults] = {}
    for m1, m2 in sorted({(j.model_1, j.model_2) for j in pairs}):
        out[f"{m1} vs {m2}"] = pairwise_results([j for j in pairs if (j.model_1, j.model_2) == (m1, m2)], seed)
    if singles:
        out["single"] = single_results(singles, seed)
    for baseline in sorted({j.baseline for j in refs}):
        out[f"vs {baseline}"] = reference_results([j for j in refs if j.baseline == baseline], seed)
    return out
