"""An embedded model on the fastest engine for each request kind.

On CPU, llama.cpp generates faster than transformers and transformers scores log-likelihoods
faster than llama.cpp (bench/bench_generate.py, bench/bench_local_vs_lmeval.py; README
"Local models"). So a bare embedded name (`smollm2`, or `embedded:smollm2`) routes `generate`
to the `gguf` backend and `loglikelihood`/`embed` to `hf`, each engine created the first time
its kind is asked for (a HumanEval-only run never loads transformers).

The routes are part of the model's identity: the run log's header names them and records the
fingerprint of every engine the task uses, and each request kind is cached under its own
engine's fingerprint (the same keys as `gguf:NAME` / `hf:NAME` runs, so those share answers).
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from evalkit import registry
from evalkit.backends.base import Backend, BaseBackend
from evalkit.backends.embedded import EMBEDDED_MODELS
from evalkit.backends.spec import BackendInfo, ModelSpec, Option
from evalkit.errors import ConfigError
from evalkit.types import (
    EMBED,
    GENERATE,
    LOGLIKELIHOOD,
    LOGLIKELIHOOD_ROLLING,
    Capability,
    EmbedRequest,
    GenerateRequest,
    LoglikelihoodRequest,
    Response,
    RollingLoglikelihoodRequest,
)

ENGINES = ("hf", "gguf")
#: the options that pick the engines; every other option goes to the engine that declares it
ROUTE_OPTIONS: dict[str, Capability] = {"generate_with": GENERATE, "score_with": LOGLIKELIHOOD}
WHY = ("llama.cpp generates faster than transformers on CPU; transformers scores log-likelihoods "
       "faster (measured: bench/bench_generate.py, bench/bench_local_vs_lmeval.py)")


def _installed(engine: str) -> bool:
    probe = "llama_cpp" if engine == "gguf" else "transformers"
    return importlib.util.find_spec(probe) is not None


def _engine_options(engine: str) -> frozenset[str]:
    info: Any = registry.backends.get(engine)
    return frozenset(o.name for o in info.options)


def choose_routes(options: Mapping[str, str], *, cuda: bool | None = None) -> dict[Capability, str]:
    """Which engine answers each request kind. `auto`: generation on llama.cpp unless the
    model runs on a GPU through transformers, scoring on transformers; an engine that is not
    installed hands its kinds to the other."""
    routes: dict[Capability, str] = {}
    for option, kind in ROUTE_OPTIONS.items():
        chosen = options.get(option, "auto")
        if chosen not in (*ENGINES, "auto"):
            raise ConfigError(f"--model-args {option}={chosen!r}: expected auto, hf or gguf")
        if chosen == "auto":
            on_gpu = options.get("device") == "cuda" or (cuda is True and options.get("device") != "cpu")
            chosen = "gguf" if kind == GENERATE and not on_gpu else "hf"
            if not _installed(chosen):
                chosen = "gguf" if chosen == "hf" else "hf"
        routes[kind] = chosen
    if _installed("hf"):
        routes[EMBED] = "hf"  # llama.cpp's backend has no embed capability
        routes[LOGLIKELIHOOD_ROLLING] = "hf"  # nor rolling log-likelihoods (perplexity)
    return routes


def check_unused_options(options: Mapping[str, str], routes: Mapping[Capability, str]) -> None:
    """An option for an engine that answers nothing in this run would be silently ignored."""
    used = set(routes.values())
    for engine in ENGINES:
        stray = sorted(set(options) & _engine_options(engine))
        if engine not in used and stray:
            raise ConfigError(f"--model-args {', '.join(stray)}: options of the {engine} engine, which this run "
                              f"does not use (routes: {_routes_text(routes)})")
    if "gen_batch_size" in options and routes.get(GENERATE) != "hf":
        raise ConfigError("--model-args gen_batch_size: generation runs on llama.cpp here; add generate_with=hf "
                          "to generate with transformers")


def _routes_text(routes: Mapping[Capability, str]) -> str:
    return ", ".join(f"{kind} on {engine}" for kind, engine in sorted(routes.items()))


class SplitBackend(BaseBackend):
    """One model, one engine per request kind, each created on first use."""

    chunk_size = 128
    max_concurrent_chunks = 1

    def __init__(self, spec: ModelSpec, routes: Mapping[Capability, str]) -> None:
        self.spec = spec
        self.routes = dict(routes)
        self.capabilities = frozenset(self.routes)
        self._engines: dict[str, Backend] = {}
        check_unused_options(spec.options, self.routes)
        self._options = {engine: {k: v for k, v in spec.options.items() if k in _engine_options(engine)}
                         for engine in set(self.routes.values())}

    def engine_for(self, kind: str) -> Backend:
        engine = self.routes.get(kind)  # type: ignore[call-overload]
        if engine is None:
            raise NotImplementedError(f"{self.spec.raw} has no engine for {kind}")
        backend = self._engines.get(engine)
        if backend is None:
            info: Any = registry.backends.get(engine)
            sub = ModelSpec(self.spec.raw, engine, self.spec.target, self._options[engine])
            backend = self._engines[engine] = info.create(sub)
        return backend

    # --- identity ----------------------------------------------------------------------------

    def kind_fingerprint(self, kind: str) -> dict[str, Any]:
        """The cache identity of one request kind: its engine's own fingerprint."""
        return self.engine_for(kind).fingerprint()

    def fingerprint_for(self, kinds: Iterable[str]) -> dict[str, Any]:
        """What a task that sends these kinds depends on: the routes and those engines."""
        used = sorted(k for k in set(kinds) if k in self.routes)
        return {"backend": "embedded", "model": self.spec.target,
                "routes": {k: self.routes[k] for k in used},
                "engines": {self.routes[k]: self.kind_fingerprint(k) for k in used}}

    def fingerprint(self) -> dict[str, Any]:
        return {"backend": "embedded", "model": self.spec.target, "routes": dict(self.routes)}

    def describe(self) -> dict[str, Any]:
        described = {}
        for engine, backend in sorted(self._engines.items()):
            describe = getattr(backend, "describe", None)
            described[engine] = describe() if callable(describe) else {}
        return {"backend": "embedded", "routes": dict(self.routes), "why": WHY, "engines": described}

    # --- requests ----------------------------------------------------------------------------

    async def generate(self, requests: Sequence[GenerateRequest]) -> list[Response]:
        return await self.engine_for(GENERATE).generate(requests)

    async def loglikelihood(self, requests: Sequence[LoglikelihoodRequest]) -> list[Response]:
        return await self.engine_for(LOGLIKELIHOOD).loglikelihood(requests)

    async def embed(self, requests: Sequence[EmbedRequest]) -> list[Response]:
        return await self.engine_for(EMBED).embed(requests)

    async def loglikelihood_rolling(self, requests: Sequence[RollingLoglikelihoodRequest]) -> list[Response]:
        engine: Any = self.engine_for(LOGLIKELIHOOD_ROLLING)  # only hf has it (not in the Backend protocol)
        answered: list[Response] = await engine.loglikelihood_rolling(requests)
        return answered

    async def aclose(self) -> None:
        engines, self._engines = self._engines, {}
        for backend in engines.values():
            await backend.aclose()


def create(spec: ModelSpec) -> SplitBackend:
    cuda = None
    if spec.options.get("device") != "cpu" and importlib.util.find_spec("torch") is not None:
        import torch  # only to see whether transformers would run on a GPU

        cuda = bool(torch.cuda.is_available())
    return SplitBackend(spec, choose_routes(spec.options, cuda=cuda))


def _capabilities(options: Mapping[str, str]) -> frozenset[Capability]:
    return frozenset(choose_routes(options, cuda=False))


def _target_problem(target: str) -> str | None:
    known = [name for name, model in EMBEDDED_MODELS.items() if model.default_backend == "embedded"]
    if target in known:
        return None
    return f"{target!r} is not an embedded language model (known: {', '.join(known)})"


def _options() -> tuple[Option, ...]:
    route = (Option("generate_with", str, "auto", "engine for generation: auto (gguf on CPU), gguf or hf"),
             Option("score_with", str, "auto", "engine for log-likelihoods: auto (hf), hf or gguf"))
    from evalkit.backends.hf import INFO as HF
    from evalkit.backends.llamacpp import INFO as GGUF

    return route + HF.options + GGUF.options


INFO = BackendInfo(
    "embedded", "an embedded model, each request kind on its fastest engine (generate: llama.cpp, "
    "loglikelihood: transformers)", "evalkit.backends.split:create", "embedded:NAME", _capabilities,
    options=_options(), extra="models", check_target=_target_problem,
)
