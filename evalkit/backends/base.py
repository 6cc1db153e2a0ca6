"""The backend protocol: a few batch methods and declared capabilities.

A backend receives a batch of requests of one kind and returns one Response per request,
in order. It may raise for a whole batch (the engine records the error on every sample in
it) or return a Response with `error` set for a single request. Caching, retries, rate
limits, usage accounting and timing are the engine's job (evalkit.engine), not the
backend's.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from collections.abc import Set as AbstractSet
from typing import Any, Protocol, runtime_checkable

from evalkit.errors import ConfigError
from evalkit.types import (
    ChoiceLogprobsRequest,
    EmbedRequest,
    GenerateRequest,
    LoglikelihoodRequest,
    Response,
    RollingLoglikelihoodRequest,
)


@runtime_checkable
class Backend(Protocol):
    #: e.g. {"generate", "loglikelihood"}; see evalkit.types for the names
    capabilities: frozenset[str]
    #: how many samples the runner hands over at once, and how many such chunks may be in
    #: flight together (local backends batch: large chunk, 1 in flight; APIs: the reverse)
    chunk_size: int
    max_concurrent_chunks: int

    def fingerprint(self) -> dict[str, Any]:
        """Everything that identifies the model's outputs: weights hash or revision,
        tokenizer, chat template, dtype, backend. Keys the response cache."""
        ...

    async def generate(self, requests: Sequence[GenerateRequest]) -> list[Response]: ...

    async def loglikelihood(self, requests: Sequence[LoglikelihoodRequest]) -> list[Response]: ...

    async def choice_logprobs(self, requests: Sequence[ChoiceLogprobsRequest]) -> list[Response]: ...

    async def embed(self, requests: Sequence[EmbedRequest]) -> list[Response]: ...

    async def aclose(self) -> None: ...


def reject_unknown_options(backend: str, options: Mapping[str, str], known: AbstractSet[str]) -> None:
    """One error for a --model-args key the backend does not take, listing the ones it does."""
    unknown = set(options) - set(known)
    if unknown:
        raise ConfigError(f"--model-args: unknown option(s) {', '.join(sorted(unknown))} for {backend} "
                          f"(known: {', '.join(sorted(known))})")


class BaseBackend:
    """Defaults for the optional parts of the protocol. Subclasses override what they support."""

    capabilities: frozenset[str] = frozenset()
    chunk_size: int = 64
    max_concurrent_chunks: int = 1

    def fingerprint(self) -> dict[str, Any]:
        return {"backend": type(self).__name__}

    def describe(self) -> dict[str, Any]:
        """Facts for the run log that do not change outputs (device, threads, isolation...)."""
        return {}

    async def generate(self, requests: Sequence[GenerateRequest]) -> list[Response]:
        raise NotImplementedError(f"{type(self).__name__} does not support generate")

    async def loglikelihood(self, requests: Sequence[LoglikelihoodRequest]) -> list[Response]:
        raise NotImplementedError(f"{type(self).__name__} does not support loglikelihood")

    async def choice_logprobs(self, requests: Sequence[ChoiceLogprobsRequest]) -> list[Response]:
        raise NotImplementedError(f"{type(self).__name__} does not support choice_logprobs")

    async def embed(self, requests: Sequence[EmbedRequest]) -> list[Response]:
        raise NotImplementedError(f"{type(self).__name__} does not support embed")

    async def loglikelihood_rolling(self, requests: Sequence[RollingLoglikelihoodRequest]) -> list[Response]:
        raise NotImplementedError(f"{type(self).__name__} does not support loglikelihood_rolling")

    async def aclose(self) -> None:
        return None
