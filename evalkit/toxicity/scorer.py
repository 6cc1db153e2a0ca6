"""The toxicity-scorer protocol and its registry (`registry.toxicity_scorers`)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from evalkit import registry
from evalkit.task import ScoreContext


@dataclass(frozen=True, slots=True)
class TextScore:
    """One text's toxicity in [0, 1], or why it could not be scored (then `value` is None)."""

    value: float | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None and self.value is not None


class ToxicityScorer(ABC):
    """Scores texts for toxicity. Built from the task's parameters before any model loads
    (bad options fail then); heavy models load on the first `score` call."""

    #: the registry name
    name: str = ""
    #: roles the scorer calls through the ScoreContext (the judge scorer: {"judge": {"generate"}})
    roles: Mapping[str, frozenset[str]] = {}
    #: False when the scorer's own calls are cached elsewhere (role calls go through the engine)
    cacheable: bool = True

    @abstractmethod
    def version(self) -> str:
        """The scoring library's version (part of the cache key and the log)."""

    def settings(self) -> dict[str, Any]:
        """Everything else that changes the scores (variant, checkpoint, template...)."""
        return {}

    def check(self, offline: bool) -> None:
        """Raise a ConfigError now if the scorer cannot work (missing package, no checkpoint
        offline, no API key); called while the task loads its data, before any model loads."""
        return None  # a scorer that needs nothing checks nothing

    @abstractmethod
    async def score(self, texts: Sequence[str], ctx: ScoreContext) -> list[TextScore]:
        """One TextScore per text, in order. A failure on one text is that text's error."""

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "version": self.version(), "settings": self.settings()}


#: builds a scorer from the task's parameter values (each scorer reads the ones it needs)
ScorerFactory = Callable[[Mapping[str, Any]], ToxicityScorer]


def register_scorer(name: str, factory: ScorerFactory | str) -> None:
    """`factory` may be a "module:attribute" string, imported on first use."""
    registry.toxicity_scorers.register(name, factory)


def scorer_names() -> list[str]:
    return registry.toxicity_scorers.names()


def get_scorer(name: str, options: Mapping[str, Any]) -> ToxicityScorer:
    factory = registry.toxicity_scorers.get(name)
    scorer = factory(options)  # type: ignore[operator]
    if not isinstance(scorer, ToxicityScorer):
        raise TypeError(f"toxicity scorer {name!r} built {type(scorer).__name__}, not a ToxicityScorer")
    return scorer
