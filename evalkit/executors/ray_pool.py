"""`--executor ray`: the model under test as a pool of Ray actors behind the Backend protocol.

Each actor holds one replica of the real backend, created once from the model spec; the pool
sends every batch the driver's Engine hands it to the least busy actor. The driver keeps
everything else: the cache lookups and stores (Engine), the log appends (runner), resume. So a
run on the pool writes the same log, under the same fingerprint, as a run in one process, and
a sample is recorded once by construction (the driver records a chunk when its batch returns).

What travels to a worker: the ModelSpec (the `--model` string and `--model-args`) once, then
request batches; answers come back as Response records. The workers import evalkit and the
backend's own dependencies from their Python environment (on a local cluster: this one).

A worker that dies (RayActorError) is replaced by a fresh actor and its batches go to another
worker; a batch that fails on `MAX_ATTEMPTS` workers is recorded as failed (rerun to retry).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from itertools import combinations
from typing import Any

from evalkit.backends.base import BaseBackend
from evalkit.errors import BackendUnavailable
from evalkit.executors.config import RAY_EXTRA_HINT, RayOptions
from evalkit.models import ModelSpec, create_backend
from evalkit.types import (
    ChoiceLogprobsRequest,
    EmbedRequest,
    GenerateRequest,
    LoglikelihoodRequest,
    Request,
    Response,
)

log = logging.getLogger("evalkit.ray")

#: workers a batch may be tried on before it is recorded as failed
MAX_ATTEMPTS = 3


class Replica:
    """The body of one Ray actor: one backend replica, created once."""

    def __init__(self, spec: ModelSpec) -> None:
        self.backend = create_backend(spec)

    def facts(self) -> dict[str, Any]:
        """What the driver's Engine and log read from a backend, computed here once."""
        import evalkit

        backend = self.backend
        caps = frozenset(backend.capabilities)
        kind_fingerprint = getattr(backend, "kind_fingerprint", None)
        fingerprint_for = getattr(backend, "fingerprint_for", None)
        subsets = [frozenset(c) for r in range(len(caps) + 1) for c in combinations(sorted(caps), r)]
        describe = getattr(backend, "describe", None)
        return {
            "pid": os.getpid(),
            "evalkit": evalkit.__version__,
            "fingerprint": backend.fingerprint(),
            "capabilities": caps,
            "chunk_size": backend.chunk_size,
            "describe": dict(describe()) if callable(describe) else {},
            "kind_fingerprints": {k: kind_fingerprint(k) for k in caps} if callable(kind_fingerprint) else None,
            "fingerprints_for": {s: fingerprint_for(s) for s in subsets} if callable(fingerprint_for) else None,
            "pricing": getattr(backend, "pricing", None),
        }

    async def call(self, kind: str, requests: list[Request]) -> tuple[list[Response] | None, str | None]:
        """(answers, None), or (None, the error as the Engine would have recorded it)."""
        try:
            return list(await getattr(self.backend, kind)(requests)), None
        except Exception as exc:  # the batch's error, recorded by the driver on its samples
            return None, f"{type(exc).__name__}: {exc}"

    async def close(self) -> None:
        await self.backend.aclose()


@dataclass
class Worker:
    index: int
    actor: Any
    pid: int | None = None
    busy: int = 0
    #: bumped on each replacement, so two batches that saw the same death replace it once
    generation: int = 0


class RayPool(BaseBackend):
    """A Backend whose batches run on `options.workers` Ray actors."""

    kind_fingerprint: Callable[[str], Mapping[str, Any]] | None = None
    fingerprint_for: Callable[[frozenset[str]], Mapping[str, Any]] | None = None
    pricing: Any = None

    def __init__(self, spec: ModelSpec, options: RayOptions) -> None:
        self.ray = connect(options)
        self.spec, self.options = spec, options
        self.actor_class = self.ray.remote(Replica).options(
            num_cpus=1, num_gpus=options.gpus_per_worker, max_concurrency=1, max_restarts=0)
        self.workers = [Worker(i, self.actor_class.remote(spec)) for i in range(options.workers)]
        self.resubmitted = 0
        facts = [self._facts(w) for w in self.workers]
        first = facts[0]
        self.facts = first
        self.capabilities = first["capabilities"]
        self.chunk_size = options.chunk_size or first["chunk_size"]
        # one batch running and one queued per worker keeps every worker busy
        self.max_concurrent_chunks = 2 * options.workers
        if first["kind_fingerprints"] is not None:
            self.kind_fingerprint = first["kind_fingerprints"].__getitem__
        if first["fingerprints_for"] is not None:
            self.fingerprint_for = first["fingerprints_for"].__getitem__
        self.pricing = first["pricing"]

    def _facts(self, worker: Worker) -> dict[str, Any]:
        try:
            facts: dict[str, Any] = self.ray.get(worker.actor.facts.remote())
        except Exception as exc:  # the replica could not be created on the worker
            raise BackendUnavailable(f"ray worker {worker.index} cannot create {self.spec.raw!r}: "
                                     f"{_first_line(exc)}") from None
        self._adopt(worker, facts)
        return facts

    def _adopt(self, worker: Worker, facts: Mapping[str, Any]) -> None:
        """Every replica must be the same model under the same evalkit, or the log would mix them."""
        import evalkit

        reference = getattr(self, "facts", None) or facts
        if facts["evalkit"] != evalkit.__version__:
            raise BackendUnavailable(f"ray worker {worker.index} runs evalkit {facts['evalkit']}, "
                                     f"the driver {evalkit.__version__}: install the same version on every node")
        if facts["fingerprint"] != reference["fingerprint"]:
            raise BackendUnavailable(f"ray worker {worker.index} loaded a different {self.spec.raw!r} "
                                     f"(fingerprint differs from worker 0's): same weights on every node?")
        worker.pid = facts["pid"]
        log.info("ray worker %d: pid %d", worker.index, worker.pid)

    def fingerprint(self) -> dict[str, Any]:
        return dict(self.facts["fingerprint"])

    def describe(self) -> dict[str, Any]:
        executor = {"kind": "ray", "address": self.options.address, "workers": self.options.workers,
                    "gpus_per_worker": self.options.gpus_per_worker}
        return {**self.facts["describe"], "executor": executor}

    def worker_pids(self) -> list[int | None]:
        return [w.pid for w in self.workers]

    async def generate(self, requests: Sequence[GenerateRequest]) -> list[Response]:
        return await self.dispatch("generate", requests)

    async def loglikelihood(self, requests: Sequence[LoglikelihoodRequest]) -> list[Response]:
        return await self.dispatch("loglikelihood", requests)

    async def choice_logprobs(self, requests: Sequence[ChoiceLogprobsRequest]) -> list[Response]:
        return await self.dispatch("choice_logprobs", requests)

    async def embed(self, requests: Sequence[EmbedRequest]) -> list[Response]:
        return await self.dispatch("embed", requests)

    async def dispatch(self, kind: str, requests: Sequence[Request]) -> list[Response]:
        """The batch on the least busy worker; on a worker's death, on another one."""
        from ray.exceptions import RayActorError

        tried: set[int] = set()
        for _ in range(MAX_ATTEMPTS):
            worker = self._least_busy(tried)
            generation = worker.generation
            worker.busy += 1
            try:
                answered, error = await worker.actor.call.remote(kind, list(requests))
            except RayActorError as exc:
                tried.add(worker.index)
                self.resubmitted += 1
                log.warning("ray worker %d (pid %s) died (%s); its batch of %d goes to another worker",
                            worker.index, worker.pid, type(exc).__name__, len(requests))
                await self._replace(worker, generation)
                continue
            finally:
                worker.busy -= 1
            if error is not None:
                return [Response(error=error) for _ in requests]
            return list(answered or ())
        raise RuntimeError(f"the batch failed on {MAX_ATTEMPTS} ray workers (each died); rerun to retry it")

    def _least_busy(self, tried: set[int]) -> Worker:
        fresh = [w for w in self.workers if w.index not in tried] or self.workers
        return min(fresh, key=lambda w: (w.busy, w.index))

    async def _replace(self, worker: Worker, generation: int) -> None:
        if worker.generation != generation:
            return  # another batch on the same dead actor replaced it already
        worker.generation += 1
        self.ray.kill(worker.actor, no_restart=True)
        worker.actor = self.actor_class.remote(self.spec)
        worker.pid = None
        try:
            self._adopt(worker, await worker.actor.facts.remote())
        except BackendUnavailable:
            raise
        except Exception as exc:  # the replacement could not start: the next attempt finds out
            log.warning("ray worker %d: replacement failed to start: %s", worker.index, _first_line(exc))

    async def aclose(self) -> None:
        """Close every replica, then end the actors (the cluster itself stays up)."""
        closing = [w.actor.close.remote() for w in self.workers]
        for ref in closing:
            with contextlib.suppress(Exception):  # a dead worker has nothing to close
                await asyncio.wait_for(ref, timeout=60)
        for w in self.workers:
            with contextlib.suppress(Exception):
                self.ray.kill(w.actor, no_restart=True)


def connect(options: RayOptions) -> Any:
    """Ray, connected: to `options.address`, or to a private cluster on 127.0.0.1 ("local").
    A process already connected (a grid run's second model, a test) stays on its cluster."""
    if options.address == "local":
        # before Ray is imported: its node address is then loopback, not the machine's other
        # interface, so a laptop's local cluster listens on 127.0.0.1 only
        os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    try:
        import ray
    except ImportError:
        raise BackendUnavailable(RAY_EXTRA_HINT) from None
    if ray.is_initialized():
        return ray
    if options.address == "local":
        ray.init(num_cpus=options.num_cpus or options.workers, include_dashboard=False,
                 _node_ip_address="127.0.0.1", log_to_driver=False, configure_logging=False)
    else:
        ray.init(address=options.address, log_to_driver=False, configure_logging=False)
    return ray


def _first_line(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    cause = next((line for line in reversed(lines) if "Error" in line and ":" in line), lines[0] if lines else "")
    return f"{type(exc).__name__}: {cause}"
