"""The run log's three record types, typed and frozen, with `to_json` / `from_json`.

Schema version 2 added model roles (`roles` in the header, per-role engine stats in the
summary), task parameters (`task.parameters`), derived samples (`source_id`, `derivation`),
stage logs (`kind`, `inputs`) and a metric's `ideal`. Version-1 logs are read by upgrading
their records (`upgrade_v1_header`): every field they lack has its empty default.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from evalkit.results import TaskResults
from evalkit.types import (
    LoglikelihoodRequest,
    Prompt,
    Request,
    Response,
    Sample,
    Score,
    join_key,
    prompt_from_json,
    prompt_to_json,
    request_from_dict,
)

SCHEMA = "evalkit.runlog"
SCHEMA_VERSION = 2
READABLE_VERSIONS = (1, 2)
#: a request context equal to the rendered prompt is logged once, by this reference
PROMPT_REF = "$prompt"

_HEADER_FIELDS = (
    "task", "model", "identity", "model_fingerprint", "roles", "backend_info", "config",
    "headline_metric", "data_origin", "n_samples_planned", "packages", "host", "created_at",
    "kind", "inputs",
)


@dataclass(frozen=True)
class HeaderRecord:
    """Line 1: what was run, on which model(s), with which settings."""

    task: Mapping[str, Any]
    model: Mapping[str, Any]
    identity: str
    model_fingerprint: Mapping[str, Any] = field(default_factory=dict)
    #: role name -> {"spec", "backend", "target", "options", "fingerprint"}
    roles: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    backend_info: Mapping[str, Any] = field(default_factory=dict)
    config: Mapping[str, Any] = field(default_factory=dict)
    headline_metric: str = ""
    data_origin: str = ""
    n_samples_planned: int = 0
    packages: Mapping[str, str] = field(default_factory=dict)
    host: Mapping[str, str] = field(default_factory=dict)
    created_at: str = ""
    #: "run" (evalkit run) or "stage" (a log derived from other logs)
    kind: str = "run"
    #: a stage log's input logs: {"label", "path", "identity"}
    inputs: tuple[Mapping[str, Any], ...] = ()
    schema_version: int = SCHEMA_VERSION
    #: fields this version does not know, kept so a rewrite loses nothing
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def task_name(self) -> str:
        return str(self.task.get("name", ""))

    @property
    def model_spec(self) -> str:
        return str(self.model.get("spec", ""))

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": "header", "schema": SCHEMA, "schema_version": self.schema_version}
        for name in _HEADER_FIELDS:
            value = getattr(self, name)
            out[name] = list(value) if name == "inputs" else value
        return {**out, **self.extra}

    @staticmethod
    def from_json(data: Mapping[str, Any]) -> HeaderRecord:
        known = {name: data[name] for name in _HEADER_FIELDS if name in data}
        if "inputs" in known:
            known["inputs"] = tuple(known["inputs"])
        extra = {k: v for k, v in data.items()
                 if k not in _HEADER_FIELDS and k not in ("type", "schema", "schema_version")}
        return HeaderRecord(**known, schema_version=int(data.get("schema_version", SCHEMA_VERSION)),
                            extra=extra)


@dataclass(frozen=True, slots=True)  # slots: tens of thousands live in a run; no __dict__ each
class SampleRecord:
    """One finished sample: the item, the prompt, every request and response, the verdict."""

    id: str
    subtask: str = ""
    input: Prompt = ""
    target: Any = None
    choices: tuple[str, ...] = ()
    metadata: Mapping[str, Any] = field(default_factory=dict)
    shots: tuple[str, ...] = ()
    prompt: str = ""
    requests: tuple[Request, ...] = ()
    responses: tuple[Response, ...] = ()
    score: Score | None = None
    error: str | None = None
    source_id: str = ""
    derivation: Mapping[str, Any] = field(default_factory=dict)
    #: a stage's per-input references: input label -> sample id in that log
    joined: Mapping[str, str] = field(default_factory=dict)

    @property
    def sample_id(self) -> str:
        return self.id

    @property
    def join_key(self) -> str:
        return join_key(self.id, self.source_id)

    @staticmethod
    def of(sample: Sample, prompt: str, shots: Sequence[Sample], requests: Sequence[Request],
           responses: Sequence[Response], score: Score | None, error: str | None) -> SampleRecord:
        return SampleRecord(
            sample.id, sample.subtask, sample.input, sample.target, sample.choices, sample.metadata,
            tuple(s.id for s in shots), prompt, tuple(requests), tuple(responses), score, error,
            sample.source_id, sample.derivation,
        )

    def to_sample(self) -> Sample:
        return Sample(self.id, self.input, self.target, self.choices, self.subtask, self.metadata,
                      self.source_id, self.derivation)

    def to_json(self) -> dict[str, Any]:
        prompt = self.prompt
        out: dict[str, Any] = {
            "type": "sample",
            "id": self.id,
            "subtask": self.subtask,
            "input": prompt_to_json(self.input),
            "target": self.target,
            "choices": list(self.choices),
            "metadata": dict(self.metadata),
            "shots": list(self.shots),
            "prompt": prompt,
            "requests": [_request_to_log(r, prompt) for r in self.requests],
            "responses": [r.to_dict() for r in self.responses],
            "score": self.score.to_dict() if self.score else None,
            "error": self.error,
        }
        if self.source_id:
            out["source_id"] = self.source_id
            out["derivation"] = dict(self.derivation)
        if self.joined:
            out["joined"] = dict(self.joined)
        return out

    @staticmethod
    def from_json(data: Mapping[str, Any]) -> SampleRecord:
        score = data.get("score")
        return SampleRecord(
            id=data["id"],
            subtask=data.get("subtask", ""),
            input=prompt_from_json(data.get("input", "")),
            target=data.get("target"),
            choices=tuple(data.get("choices") or ()),
            metadata=data.get("metadata") or {},
            shots=tuple(data.get("shots") or ()),
            prompt=data.get("prompt", ""),
            requests=tuple(requests_from_json(data)),
            responses=tuple(Response.from_dict(r) for r in data.get("responses", [])),
            score=Score.from_dict(score) if score else None,
            error=data.get("error"),
            source_id=data.get("source_id", ""),
            derivation=data.get("derivation") or {},
            joined=data.get("joined") or {},
        )


@dataclass(frozen=True)
class SummaryRecord:
    """The last record: aggregates, counts, timings and usage (per role)."""

    results: TaskResults
    n_samples: int
    n_scored: int
    n_errors: int
    finished_at: str = ""
    timings: Mapping[str, Any] = field(default_factory=dict)
    engine: Mapping[str, Any] = field(default_factory=dict)
    #: role name -> that role's engine stats (requests, cache hits, tokens, cost)
    roles: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    rescored: bool = False
    #: time, throughput, latency, tokens, cost and energy (evalkit.efficiency)
    efficiency: Mapping[str, Any] = field(default_factory=dict)
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def complete(self) -> bool:
        return self.n_errors == 0

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "type": "summary",
            "finished_at": self.finished_at,
            "n_samples": self.n_samples,
            "n_scored": self.n_scored,
            "n_errors": self.n_errors,
            "complete": self.complete,
            "results": self.results.to_dict(),
            "timings": dict(self.timings),
            "engine": dict(self.engine),
        }
        if self.roles:
            out["roles"] = dict(self.roles)
        if self.rescored:
            out["rescored"] = True
        if self.efficiency:
            out["efficiency"] = dict(self.efficiency)
        return {**out, **self.extra}

    @staticmethod
    def from_json(data: Mapping[str, Any]) -> SummaryRecord:
        known = ("type", "finished_at", "n_samples", "n_scored", "n_errors", "complete", "results",
                 "timings", "engine", "roles", "rescored", "efficiency")
        return SummaryRecord(
            results=TaskResults.from_dict(data.get("results") or {}),
            n_samples=int(data.get("n_samples", 0)),
            n_scored=int(data.get("n_scored", 0)),
            n_errors=int(data.get("n_errors", 0)),
            finished_at=data.get("finished_at", ""),
            timings=data.get("timings") or {},
            engine=data.get("engine") or {},
            roles=data.get("roles") or {},
            rescored=bool(data.get("rescored")),
            efficiency=data.get("efficiency") or {},
            extra={k: v for k, v in data.items() if k not in known},
        )


def requests_from_json(data: Mapping[str, Any]) -> list[Request]:
    prompt = data.get("prompt", "")
    out = []
    for raw in data.get("requests", []):
        out.append(request_from_dict({k: (prompt if v == PROMPT_REF else v) for k, v in raw.items()}))
    return out


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
