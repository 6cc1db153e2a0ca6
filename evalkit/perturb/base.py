"""What a perturbation is, and the registry of task wrappers.

A perturbation turns one sample into one or more derived samples (`Variant`s). Each is
seeded from the wrapper's `seed` parameter and the sample's id (so it does not depend on the
order, the chunking or `--limit`), and records what it did. The wrapper (`evalkit.perturb.wrap`)
gives each variant the id `<id>@<suffix>`, `source_id` = the original id and a `derivation`
with the perturbation, its parameters, the per-sample seed and the original text.

Kinds, which the robustness report reads:
- "invariance": meaning-preserving (typos, case, ...): the answer should not change;
- "counterfactual": a demographic-term swap: the answer should not change, reported on the
  samples it changed;
- "contrast": meaning-changing with a known new answer: the answer should change;
- "rotation": every rotation of the options (circular evaluation).

Third parties add wrappers with `register_wrapper` (from a module named by the
`evalkit.plugins` entry point) or perturbations with `register_perturbation`.
"""

from __future__ import annotations

import random
import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from evalkit import registry
from evalkit.params import Param
from evalkit.types import Message, Prompt, Sample, stable_hash

if TYPE_CHECKING:
    from evalkit.task import Task

Kind = Literal["invariance", "counterfactual", "contrast", "rotation", "format"]
#: what a perturbation needs of a sample: its input text, or its options
Needs = Literal["text", "choices"]

_RUNS = re.compile(r"[^\W\d_]+|[\W\d_]+")

SEED = Param("seed", int, 0, "seed of the transformation (each sample's own seed derives from it and the id)")


@dataclass(frozen=True)
class Variant:
    """One derived sample before it gets its id: the new fields and what was done."""

    suffix: str
    input: Prompt
    choices: tuple[str, ...]
    target: Any
    #: recorded in the derivation (e.g. the option order, the words swapped)
    info: Mapping[str, Any] = field(default_factory=dict)


class Perturbation(ABC):
    """A seeded, deterministic transformation of samples. Subclasses set the class fields."""

    name: str = ""
    kind: Kind = "invariance"
    needs: Needs = "text"
    description: str = ""
    example: tuple[str, str] = ("", "")
    params: tuple[Param, ...] = (SEED,)

    def __init__(self, **values: Any) -> None:
        self.values = dict(values)

    @abstractmethod
    def derive(self, sample: Sample, rng: random.Random) -> tuple[Variant, ...]:
        """The sample's variants (one for most perturbations; every rotation for circular)."""

    def applies_to(self, sample: Sample) -> bool:
        if self.needs == "choices":
            return len(sample.choices) >= 2 and isinstance(sample.target, int)
        return bool(text_of(sample.input).strip())


WrapperFactory = Callable[["Task", Mapping[str, Any], str], "Task"]


@dataclass(frozen=True)
class WrapperEntry:
    """A registered task wrapper: `factory(inner_task, values, label) -> Task`."""

    factory: WrapperFactory
    params: tuple[Param, ...]
    kind: Kind
    description: str = ""
    example: tuple[str, str] = ("", "")


def register_wrapper(name: str, entry: WrapperEntry) -> None:
    registry.perturbations.register(name, entry)


def register_perturbation(cls: type[Perturbation]) -> type[Perturbation]:
    """Register a Perturbation subclass as the wrapper `@<cls.name>` (usable as a decorator)."""

    def factory(inner: Task, values: Mapping[str, Any], label: str) -> Task:
        from evalkit.perturb.wrap import perturbed_task  # the wrapper imports this module

        return perturbed_task(inner, cls(**values), label)

    register_wrapper(cls.name, WrapperEntry(factory, cls.params, cls.kind, cls.description, cls.example))
    return cls


def wrapper_entry(name: str) -> WrapperEntry:
    import evalkit.perturb.builtin  # noqa: F401  (registers the built-ins; they import this module)

    entry: Any = registry.perturbations.get(name)
    if not isinstance(entry, WrapperEntry):
        raise TypeError(f"perturbation {name!r} is registered as {type(entry).__name__}, not a WrapperEntry")
    return entry


def sample_seed(seed: int, perturbation: str, sample_id: str) -> int:
    """Each sample's own seed: independent of order and of which other samples run."""
    return int(stable_hash([seed, perturbation, sample_id], 12), 16)


def text_of(prompt: Prompt) -> str:
    if isinstance(prompt, str):
        return prompt
    return "\n".join(m.content for m in prompt if m.role == "user")


def map_text(prompt: Prompt, change: Callable[[str], str]) -> Prompt:
    """A prompt with `change` applied to its text (a chat prompt: to each user message)."""
    if isinstance(prompt, str):
        return change(prompt)
    return tuple(Message(m.role, change(m.content)) if m.role == "user" else m for m in prompt)


class TextPerturbation(Perturbation):
    """A word- or character-level change of the input text (and the options when asked)."""

    params: tuple[Param, ...] = (SEED, Param("choices", bool, False, "also change the option texts"))

    @abstractmethod
    def transform(self, text: str, rng: random.Random) -> str: ...

    def derive(self, sample: Sample, rng: random.Random) -> tuple[Variant, ...]:
        new_input = map_text(sample.input, lambda text: self.transform(text, rng))
        choices = sample.choices
        if self.values.get("choices"):
            choices = tuple(self.transform(c, rng) for c in choices)
        return (Variant(self.name, new_input, choices, sample.target),)


def words_with_gaps(text: str) -> list[str]:
    """The text as alternating runs of letters and of everything else (joined back = text)."""
    return _RUNS.findall(text)


def match_case(word: str, like: str) -> str:
    if like.isupper() and len(like) > 1:
        return word.upper()
    if like[:1].isupper():
        return word[:1].upper() + word[1:]
    return word


def describe_params(params: Sequence[Param]) -> str:
    return "; ".join(p.describe() for p in params)
