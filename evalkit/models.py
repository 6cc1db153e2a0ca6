"""The model spec grammar, parsed in one place from the registered backends' declarations.

    <prefix>:<target>                 a registered backend (`evalkit list models`): hf:DIR,
                                      gguf:FILE, openai:MODEL, openai-compat:URL#MODEL, replay:FILE
    mock[:k=v,...]                    a backend whose spec carries options instead of a target
    <name>                            an embedded model (e.g. smollm2) on its default backend
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from evalkit import registry
from evalkit.backends.base import Backend
from evalkit.backends.embedded import EMBEDDED_MODELS, EmbeddedModel
from evalkit.backends.spec import BackendInfo, ModelSpec
from evalkit.errors import BackendUnavailable, ConfigError

__all__ = ["EMBEDDED_MODELS", "EmbeddedModel", "ModelSpec", "backend_info", "create_backend", "parse_model_spec"]
def backend_info(name: str) -> BackendInfo:
    try:
        info: Any = registry.backends.get(name)
    except ImportError as exc:  # a plugin's declaration names a module that is not there
        raise BackendUnavailable(f"backend {name!r} cannot load ({exc})") from None
    if not isinstance(info, BackendInfo):
        raise TypeError(f"backend {name!r} is registered as {type(info).__name__}, not a BackendInfo")
    return info


def parse_model_spec(raw: str, model_args: Mapping[str, str] | None = None) -> ModelSpec:
    """The spec, with its options checked against the backend's declaration (nothing loads)."""
    raw = raw.strip()
    if not raw:
        raise ConfigError("--model is empty; expected e.g. 'mock', 'smollm2', 'hf:DIR', 'gguf:FILE'")
    options = dict(model_args or {})
    if raw in EMBEDDED_MODELS:
        spec = ModelSpec(raw, EMBEDDED_MODELS[raw].default_backend, raw, options)
    else:
        spec = _prefixed_spec(raw, options)
    backend_info(spec.backend).check_options(spec.options)
    return spec


def _prefixed_spec(raw: str, options: dict[str, str]) -> ModelSpec:
    head, sep, rest = raw.partition(":")
    if head not in registry.backends:
        raise ConfigError(_unknown_spec_message(raw))
    info = backend_info(head)
    if info.options_in_spec:
        spec_options = _parse_options(rest, raw) if sep else {}
        return ModelSpec(raw, head, head, {**spec_options, **options})
    if not sep and info.needs_target:
        raise ConfigError(_unknown_spec_message(raw))
    if not rest:
        raise ConfigError(f"--model {raw!r}: nothing after '{head}:'")
    problem = info.check_target(rest) if info.check_target else None
    if problem:
        raise ConfigError(f"--model {raw!r}: {problem}")
    return ModelSpec(raw, head, rest, options)


def create_backend(spec: ModelSpec) -> Backend:
    info = backend_info(spec.backend)
    hint = f"; install them with `pip install 'evalkit[{info.extra}]'`" if info.extra else ""
    try:
        return info.create(spec)
    except ImportError as exc:  # the backend's optional dependencies are missing
        raise BackendUnavailable(f"backend {spec.backend!r} cannot load ({exc}){hint}") from None


def _parse_options(text: str, raw: str) -> dict[str, str]:
    options: dict[str, str] = {}
    for part in filter(None, text.split(",")):
        key, eq, value = part.partition("=")
        if not eq:
            raise ConfigError(f"--model {raw!r}: option {part!r} is not key=value")
        options[key.strip()] = value.strip()
    return options


def _unknown_spec_message(raw: str) -> str:
    names = registry.backends.names()
    base = raw.partition(":")[0]
    msg = registry.unknown_name_message("model", base, [*names, *EMBEDDED_MODELS])
    forms = [backend_info(n).form for n in names] + list(EMBEDDED_MODELS)
    return f"--model {raw!r}: {msg}; forms: " + ", ".join(forms)
