"""What every backend shares: the parsed model spec, and the one declaration a backend makes
to be usable (`BackendInfo`: prefix, install extra, availability probe, typed options with
defaults, declared capabilities, how to create it).

A backend module defines `INFO = BackendInfo(...)` next to its class and registers it with one
line (`evalkit/backends/__init__.py` for the built-in ones, a plugin module for third-party
ones). Nothing else in evalkit lists backends: the spec grammar, `evalkit list models
[--options]`, the dry-run and the capability checks all read the registered infos.
"""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from evalkit.errors import ConfigError
from evalkit.types import Capability, Prompt

if TYPE_CHECKING:
    from evalkit.backends.base import Backend


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


@dataclass(frozen=True)
class Option:
    """One `--model-args` key a backend takes."""

    name: str
    kind: type
    default: Any
    help: str = ""

    def describe(self) -> str:
        default = "(none)" if self.default in (None, "") else str(self.default).lower() if isinstance(
            self.default, bool) else str(self.default)
        return f"{self.name} ({self.kind.__name__}, default {default}){': ' + self.help if self.help else ''}"


#: what a backend with these options can do, known before it is created
CapabilitiesOf = Callable[[Mapping[str, str]], frozenset[Capability]]


@dataclass(frozen=True)
class BackendInfo:
    prefix: str
    description: str
    #: "module:callable" taking a ModelSpec and returning a Backend (imported when used)
    factory: str
    #: the spec's form for help text, e.g. "hf:DIR"
    form: str
    capabilities: CapabilitiesOf
    options: tuple[Option, ...] = ()
    #: the pip extra that installs its dependencies, and a module whose presence says they are
    extra: str | None = None
    probe: str | None = None
    #: False for backends whose spec has no target (`mock`, `mock:k=v`)
    needs_target: bool = True
    #: "a:b" options in the spec itself (`mock:seed=1`) instead of a target
    options_in_spec: bool = False
    #: the target's form checked before anything loads: an error message, or None when fine
    check_target: Callable[[str], str | None] | None = None
    #: (has a chat template, why), known before loading; None: read the local model files
    chat: Callable[[ModelSpec], tuple[bool, str]] | None = None
    #: options refused with a reason (e.g. an API key, which would be logged)
    refused: Mapping[str, str] = field(default_factory=dict)

    @property
    def option_names(self) -> frozenset[str]:
        return frozenset(o.name for o in self.options)

    def installed(self) -> bool:
        return self.probe is None or importlib.util.find_spec(self.probe) is not None

    def check_options(self, options: Mapping[str, str]) -> None:
        """Unknown keys fail before anything loads, naming the ones this backend takes."""
        for name, reason in self.refused.items():
            if name in options:
                raise ConfigError(f"--model-args {name} is not accepted: {reason}")
        unknown = sorted(set(options) - self.option_names)
        if unknown:
            known = ", ".join(sorted(self.option_names)) or "none"
            raise ConfigError(f"--model-args: unknown option(s) {', '.join(unknown)} for {self.prefix} "
                              f"(known: {known}; see `evalkit list models --options`)")

    def create(self, spec: ModelSpec) -> Backend:
        module_name, _, attr = self.factory.partition(":")
        factory = getattr(importlib.import_module(module_name), attr)
        backend: Backend = factory(spec)
        return backend


def fixed(*capabilities: Capability) -> CapabilitiesOf:
    """Capabilities that do not depend on the options."""
    caps = frozenset(capabilities)
    return lambda options: caps


def estimate_tokens(text_or_messages: Prompt) -> int:
    """A rough token count for budgets and --dry-run: 4 ASCII characters per token, and a
    token per other character (CJK text takes about one or more tokens per character)."""
    if isinstance(text_or_messages, str):
        return max(1, _text_tokens(text_or_messages))
    return sum(4 + _text_tokens(m.content) for m in text_or_messages)


def _text_tokens(text: str) -> int:
    ascii_chars = sum(1 for c in text if c < "\x80")
    return ascii_chars // 4 + (len(text) - ascii_chars)
