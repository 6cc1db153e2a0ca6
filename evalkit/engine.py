"""The one wrapper around any backend: response cache, error capture, usage and timing.

Backends stay small: they answer batches. The engine looks every request up in the cache,
sends only the misses (grouped by kind), stores what came back as soon as it arrives
(so a crash loses nothing already answered), and turns a batch that raised into
per-request errors that the runner records on the samples, never scores.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from evalkit.backends.base import Backend
from evalkit.cache import ResponseCache, request_keys
from evalkit.types import Request, Response, stable_hash


@dataclass
class EngineStats:
    requests: int = 0
    cache_hits: int = 0
    sent: int = 0
    errors: int = 0
    backend_seconds: float = 0.0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    #: failed attempts that a backend retried (from Response.meta["retries"])
    retries: int = 0
    #: dollars, when the backend knows its prices (Backend.pricing)
    cost_usd: float | None = None
    by_kind: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    #: seconds each sent request waited: the backend's own per-request time
    #: (Response.meta["seconds"], an API call) or else its batch's wall time
    latencies: list[float] = field(default_factory=list)
    #: seconds to the first token, where the backend streams (Response.meta["first_token_seconds"])
    first_token_seconds: list[float] = field(default_factory=list)
    latency_basis: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "cache_hits": self.cache_hits,
            "sent": self.sent,
            "errors": self.errors,
            "backend_seconds": round(self.backend_seconds, 3),
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "retries": self.retries,
            **({"cost_usd": round(self.cost_usd, 6)} if self.cost_usd is not None else {}),
            "by_kind": dict(self.by_kind),
        }


class Engine:
    """One per model role. `namespace` keeps a role's cache entries apart from the model under
    test's even when both are the same model ("" for the model under test: its keys are the
    ones earlier versions wrote)."""

    def __init__(self, backend: Backend, cache: ResponseCache | None, namespace: str = "") -> None:
        self.backend = backend
        self.cache = cache
        self.namespace = namespace
        self.fingerprint = backend.fingerprint()
        self.fingerprint_hash = (stable_hash({"role": namespace, "fingerprint": self.fingerprint}) if namespace
                                 else stable_hash(self.fingerprint))
        # a backend with one engine per request kind (evalkit.backends.split) keys each kind's
        # cache entries by that engine's fingerprint
        kind_fingerprint = getattr(backend, "kind_fingerprint", None)
        self._kind_fingerprint = kind_fingerprint if callable(kind_fingerprint) else None
        self._kind_hashes: dict[str, str] = {}
        # optional: a backend with `pricing` (evalkit.backends.pricing.Pricing) gets cost accounting
        self.pricing = getattr(backend, "pricing", None)
        self.stats = self.fresh_stats()

    def fresh_stats(self) -> EngineStats:
        """Counters from zero (each task's summary counts that task's requests only)."""
        return EngineStats(cost_usd=0.0 if self.pricing is not None else None)

    async def execute(self, requests: Sequence[Request]) -> list[Response]:
        """One Response per request, in order; errors are Responses with `error` set."""
        self.stats.requests += len(requests)
        keys = self._keys(requests)
        cached = self.cache.get_many(keys) if self.cache is not None else {}
        self.stats.cache_hits += len(cached)
        results: list[Response | None] = [cached.get(k) for k in keys]

        misses: dict[str, list[int]] = defaultdict(list)
        for i, res in enumerate(results):
            if res is None:
                misses[requests[i].kind].append(i)
        for kind, idxs in misses.items():
            answered = await self._send(kind, [requests[i] for i in idxs])
            for i, res in zip(idxs, answered, strict=True):
                results[i] = res
            if self.cache is not None:
                self.cache.put_many((keys[i], results[i]) for i in idxs)  # type: ignore[misc]
        return [r for r in results if r is not None]

    def fingerprint_for(self, kinds: frozenset[str]) -> dict[str, Any]:
        """The fingerprint a log of a task that sends these request kinds records."""
        fingerprint_for = getattr(self.backend, "fingerprint_for", None)
        return dict(fingerprint_for(kinds)) if callable(fingerprint_for) else self.fingerprint

    def _key_hash(self, kind: str) -> str:
        if self._kind_fingerprint is None:
            return self.fingerprint_hash
        found = self._kind_hashes.get(kind)
        if found is None:
            fingerprint = self._kind_fingerprint(kind)
            found = (stable_hash({"role": self.namespace, "fingerprint": fingerprint}) if self.namespace
                     else stable_hash(fingerprint))
            self._kind_hashes[kind] = found
        return found

    def _keys(self, requests: Sequence[Request]) -> list[bytes]:
        if self._kind_fingerprint is None:
            return request_keys(self.fingerprint_hash, requests)
        keys: list[bytes] = [b""] * len(requests)
        by_kind: dict[str, list[int]] = defaultdict(list)
        for i, request in enumerate(requests):
            by_kind[request.kind].append(i)
        for kind, idxs in by_kind.items():
            for i, key in zip(idxs, request_keys(self._key_hash(kind), [requests[i] for i in idxs]), strict=True):
                keys[i] = key
        return keys

    async def _send(self, kind: str, batch: list[Request]) -> list[Response]:
        method = getattr(self.backend, kind)
        started = time.perf_counter()
        try:
            answered = list(await method(batch))
            if len(answered) != len(batch):
                raise RuntimeError(f"backend returned {len(answered)} responses for {len(batch)} requests")
        except Exception as exc:  # recorded on the samples, never scored
            message = f"{type(exc).__name__}: {exc}"
            answered = [Response(error=message) for _ in batch]
        elapsed = time.perf_counter() - started
        self.stats.backend_seconds += elapsed
        self._record_latencies(answered, elapsed)
        self.stats.sent += len(batch)
        self.stats.by_kind[kind] += len(batch)
        for res in answered:
            if not res.ok:
                self.stats.errors += 1
            self.stats.retries += len(res.meta.get("retries", ()))
            if res.usage:
                self.stats.prompt_tokens += res.usage.prompt_tokens
                self.stats.completion_tokens += res.usage.completion_tokens
                if self.pricing is not None and self.stats.cost_usd is not None:
                    self.stats.cost_usd += self.pricing.cost(res.usage.prompt_tokens, res.usage.completion_tokens)
        return answered

    def _record_latencies(self, answered: Sequence[Response], batch_seconds: float) -> None:
        own = [r.meta.get("seconds") for r in answered]
        if all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in own):
            self.stats.latencies.extend(float(x) for x in own)  # type: ignore[arg-type]
            basis = "per request, as the backend timed it"
        else:
            self.stats.latencies.extend([batch_seconds] * len(answered))
            basis = "the wall time of the batch a request was answered in"
        if basis not in self.stats.latency_basis:
            self.stats.latency_basis = f"{self.stats.latency_basis}; {basis}" if self.stats.latency_basis else basis
        for r in answered:
            first = r.meta.get("first_token_seconds")
            if isinstance(first, (int, float)) and not isinstance(first, bool):
                self.stats.first_token_seconds.append(float(first))
