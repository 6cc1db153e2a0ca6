"""Frozen records that flow between pipeline stages. No stage mutates what it was given."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Literal

# Capabilities a backend may declare and a task may require.
GENERATE: Final = "generate"
LOGLIKELIHOOD: Final = "loglikelihood"
EMBED: Final = "embed"
# Multiple-choice probabilities from the top logprobs of the first answer token (API models).
CHOICE_LOGPROBS: Final = "choice_logprobs"
# Log-likelihood of a whole text over rolling token windows (perplexity).
LOGLIKELIHOOD_ROLLING: Final = "loglikelihood_rolling"
Capability = Literal["generate", "loglikelihood", "embed", "choice_logprobs", "loglikelihood_rolling"]
CAPABILITIES: Final[frozenset[Capability]] = frozenset(
    {GENERATE, LOGLIKELIHOOD, EMBED, CHOICE_LOGPROBS, LOGLIKELIHOOD_ROLLING})


@dataclass(frozen=True, slots=True)
class Message:
    role: str
    content: str

    def to_dict(self) -> dict[str, str]:
        return {"role": self.role, "content": self.content}


Prompt = str | tuple[Message, ...]


@dataclass(frozen=True, slots=True)
class Sample:
    """One benchmark item. `id` is stable across runs and harness versions."""

    id: str
    input: Prompt
    target: Any = None
    choices: tuple[str, ...] = ()
    subtask: str = ""
    metadata: Mapping[str, Any] = field(default_factory=dict)
    #: for a sample derived from another (a perturbation, a counterfactual swap, a rotation of
    #: the options): the id of the sample it came from, and how it was derived. Stages that
    #: pair samples join on `join_key` (see docs/architecture.md, "Derived samples").
    source_id: str = ""
    derivation: Mapping[str, Any] = field(default_factory=dict)

    @property
    def join_key(self) -> str:
        return self.source_id or self.id


def join_key(sample_id: str, source_id: str = "") -> str:
    """The one join rule: a derived sample pairs with its source, any other with itself."""
    return source_id or sample_id


@dataclass(frozen=True, slots=True)
class GenerationParams:
    max_tokens: int = 256
    temperature: float = 0.0
    top_p: float = 1.0
    stop: tuple[str, ...] = ()
    seed: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "max_tokens": self.max_tokens,
            "temperature": self.temperature,
            "top_p": self.top_p,
            "stop": list(self.stop),
            "seed": self.seed,
        }


@dataclass(frozen=True, slots=True)
class GenerateRequest:
    """Generate a completion (str prompt) or a chat reply (tuple of messages).

    `repeat` tells apart the n samples drawn for one prompt (pass@k), so each has its own
    cache entry and its own seed.
    """

    prompt: Prompt
    params: GenerationParams = GenerationParams()
    repeat: int = 0
    #: the sample this request belongs to; the runner fills it in. Part of the cache key
    #: (the issue's "sample index"), and how `replay:` finds a stored output.
    sample_id: str = ""
    kind: Literal["generate"] = "generate"

    def to_dict(self) -> dict[str, Any]:
        out = {
            "kind": self.kind,
            "prompt": prompt_to_json(self.prompt),
            "params": self.params.to_dict(),
            "repeat": self.repeat,
        }
        if self.sample_id:
            out["sample_id"] = self.sample_id
        return out


@dataclass(frozen=True, slots=True)
class LoglikelihoodRequest:
    """log P(continuation | context), summed over the continuation's tokens."""

    context: str
    continuation: str
    kind: Literal["loglikelihood"] = "loglikelihood"

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "context": self.context, "continuation": self.continuation}


@dataclass(frozen=True, slots=True)
class ChoiceLogprobsRequest:
    """Probabilities of single-token choices (e.g. "A".."D") as the first answer token."""

    prompt: Prompt
    choices: tuple[str, ...]
    kind: Literal["choice_logprobs"] = "choice_logprobs"

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "prompt": prompt_to_json(self.prompt), "choices": list(self.choices)}


@dataclass(frozen=True, slots=True)
class EmbedRequest:
    text: str
    kind: Literal["embed"] = "embed"

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "text": self.text}


@dataclass(frozen=True, slots=True)
class RollingLoglikelihoodRequest:
    """log P(text), summed over all its tokens, scored in windows of `max_length` tokens that
    each predict `stride` new tokens after up to max_length - stride tokens of context
    (stride = max_length: disjoint windows, lm-eval's `loglikelihood_rolling`). The first
    token is predicted from the backend's prefix token (BOS, else EOS)."""

    text: str
    max_length: int
    stride: int
    kind: Literal["loglikelihood_rolling"] = "loglikelihood_rolling"

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "text": self.text, "max_length": self.max_length, "stride": self.stride}


Request = GenerateRequest | LoglikelihoodRequest | ChoiceLogprobsRequest | EmbedRequest | RollingLoglikelihoodRequest


@dataclass(frozen=True, slots=True)
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0

    def to_dict(self) -> dict[str, int]:
        return {"prompt_tokens": self.prompt_tokens, "completion_tokens": self.completion_tokens}


@dataclass(frozen=True, slots=True)
class Response:
    """What a backend returned for one request. Exactly one payload field is set, or `error`."""

    text: str | None = None
    logprob: float | None = None
    is_greedy: bool | None = None
    num_tokens: int | None = None
    choice_logprobs: tuple[float, ...] | None = None
    vector: tuple[float, ...] | None = None
    usage: Usage | None = None
    error: str | None = None
    # Retries, latency and other facts the transport wants kept in the log.
    meta: Mapping[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.error is None

    def to_dict(self) -> dict[str, Any]:
        # spelled out, not a loop over names: called twice per request (cache and log)
        out: dict[str, Any] = {}
        if self.text is not None:
            out["text"] = self.text
        if self.logprob is not None:
            out["logprob"] = self.logprob
        if self.is_greedy is not None:
            out["is_greedy"] = self.is_greedy
        if self.num_tokens is not None:
            out["num_tokens"] = self.num_tokens
        if self.error is not None:
            out["error"] = self.error
        if self.choice_logprobs is not None:
            out["choice_logprobs"] = list(self.choice_logprobs)
        if self.vector is not None:
            out["vector"] = list(self.vector)
        if self.usage is not None:
            out["usage"] = self.usage.to_dict()
        if self.meta:
            out["meta"] = dict(self.meta)
        return out

    @staticmethod
    def from_dict(data: Mapping[str, Any]) -> Response:
        usage = data.get("usage")
        return Response(
            text=data.get("text"),
            logprob=data.get("logprob"),
            is_greedy=data.get("is_greedy"),
            num_tokens=data.get("num_tokens"),
            choice_logprobs=_tuple_or_none(data.get("choice_logprobs")),
            vector=_tuple_or_none(data.get("vector")),
            usage=Usage(**usage) if usage else None,
            error=data.get("error"),
            meta=data.get("meta") or {},
        )


@dataclass(frozen=True, slots=True)
class Score:
    """The verdict on one sample. `value` feeds the headline metric; `extras` feed others."""

    value: float
    extracted: Any = None
    extras: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"value": self.value, "extracted": self.extracted}
        if self.extras:
            out["extras"] = dict(self.extras)
        return out

    @staticmethod
    def from_dict(data: Mapping[str, Any]) -> Score:
        return Score(value=data["value"], extracted=data.get("extracted"), extras=data.get("extras") or {})


@dataclass(frozen=True, slots=True)
class MetricValue:
    """An aggregate with its sample count and confidence interval (None when undefined)."""

    name: str
    value: float
    n: int
    ci_low: float | None = None
    ci_high: float | None = None
    ci_method: str = ""
    higher_is_better: bool = True
    note: str = ""
    #: the best value when it is a target rather than an end of the scale (StereoSet's SS:
    #: 50); leaderboards and gates then rank by distance to it
    ideal: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "value": self.value,
            "n": self.n,
            "ci": [self.ci_low, self.ci_high],
            "ci_method": self.ci_method,
            "higher_is_better": self.higher_is_better,
            **({"note": self.note} if self.note else {}),
            **({"ideal": self.ideal} if self.ideal is not None else {}),
        }

    @staticmethod
    def from_dict(name: str, data: Mapping[str, Any]) -> MetricValue:
        ci = data.get("ci") or [None, None]
        return MetricValue(
            name=name, value=data["value"], n=int(data.get("n", 0)), ci_low=ci[0], ci_high=ci[1],
            ci_method=data.get("ci_method", ""), higher_is_better=data.get("higher_is_better", True),
            note=data.get("note", ""), ideal=data.get("ideal"),
        )

    def distance_to_ideal(self) -> float:
        """How far from best: |value - ideal| for a target metric, else signed so that
        smaller is better (used to rank)."""
        if self.ideal is not None:
            return abs(self.value - self.ideal)
        return -self.value if self.higher_is_better else self.value


def prompt_to_json(prompt: Prompt) -> str | list[dict[str, str]]:
    if isinstance(prompt, str):
        return prompt
    return [m.to_dict() for m in prompt]


def prompt_from_json(data: str | list[dict[str, str]]) -> Prompt:
    if isinstance(data, str):
        return data
    return tuple(Message(m["role"], m["content"]) for m in data)


def request_from_dict(data: Mapping[str, Any]) -> Request:
    kind = data["kind"]
    if kind == "loglikelihood":
        return LoglikelihoodRequest(data["context"], data["continuation"])
    if kind == "generate":
        p = data.get("params") or {}
        params = GenerationParams(
            max_tokens=p.get("max_tokens", 256),
            temperature=p.get("temperature", 0.0),
            top_p=p.get("top_p", 1.0),
            stop=tuple(p.get("stop", ())),
            seed=p.get("seed", 0),
        )
        return GenerateRequest(prompt_from_json(data["prompt"]), params, data.get("repeat", 0),
                               data.get("sample_id", ""))
    if kind == "choice_logprobs":
        return ChoiceLogprobsRequest(prompt_from_json(data["prompt"]), tuple(data["choices"]))
    if kind == "embed":
        return EmbedRequest(data["text"])
    if kind == "loglikelihood_rolling":
        return RollingLoglikelihoodRequest(data["text"], int(data["max_length"]), int(data["stride"]))
    raise ValueError(f"unknown request kind {kind!r}")


def tag_requests(requests: Sequence[Request], sample_id: str, seed: int) -> tuple[Request, ...]:
    """Generate requests carry their sample id (cache key, replay lookup) and the run's seed
    (backends derive each sample's sampling seed from it and `repeat`)."""
    return tuple(
        dataclasses.replace(r, sample_id=r.sample_id or sample_id, params=dataclasses.replace(r.params, seed=seed))
        if isinstance(r, GenerateRequest) else r
        for r in requests
    )


def canonical_json(data: Any) -> str:
    return json.dumps(data, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def stable_hash(data: Any, length: int = 64) -> str:
    return hashlib.sha256(canonical_json(data).encode("utf-8")).hexdigest()[:length]


def _tuple_or_none(value: Any) -> tuple[float, ...] | None:
    return None if value is None else tuple(value)
