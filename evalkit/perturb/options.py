"""Perturbations of multiple-choice options: shuffling (invariance), every rotation (circular
evaluation) and replacing the correct option by "None of the above" (a contrast set).

Each records `order`: for every position shown, the index of that option in the original
list (-1 for an option that was not there), so the report can tell whether two answers
picked the same option text whatever its letter.
"""

from __future__ import annotations

import random
from typing import Any

from evalkit.params import Param
from evalkit.perturb.base import SEED, Perturbation, Variant, register_perturbation
from evalkit.types import Sample

NONE_OF_THE_ABOVE = "None of the above"


def _reordered(sample: Sample, order: list[int], suffix: str, **info: Any) -> Variant:
    choices = tuple(sample.choices[i] for i in order)
    return Variant(suffix, sample.input, choices, order.index(int(sample.target)), {"order": order, **info})


@register_perturbation
class OptionShuffle(Perturbation):
    name = "option_shuffle"
    needs = "choices"
    description = "the options in a random order (seeded per sample); the gold index follows its option"
    example = ("A. Paris B. Rome C. Oslo (gold A)", "A. Oslo B. Paris C. Rome (gold B)")

    def derive(self, sample: Sample, rng: random.Random) -> tuple[Variant, ...]:
        order = list(range(len(sample.choices)))
        rng.shuffle(order)
        return (_reordered(sample, order, self.name),)


@register_perturbation
class Circular(Perturbation):
    name = "circular"
    kind = "rotation"
    needs = "choices"
    description = ("every rotation of the options (OpenCompass's circular evaluation): n variants per "
                   "question; `circular_acc` counts a question correct only if all n are")
    example = ("A. Paris B. Rome C. Oslo (gold A)", "rot1: A. Rome B. Oslo C. Paris (gold C)")
    params = ()

    def derive(self, sample: Sample, rng: random.Random) -> tuple[Variant, ...]:
        n = len(sample.choices)
        return tuple(_reordered(sample, [(k + i) % n for i in range(n)], f"rot{k}", rotation=k) for k in range(n))


@register_perturbation
class NoneOfTheAbove(Perturbation):
    name = "none_of_the_above"
    kind = "contrast"
    needs = "choices"
    description = ("contrast set: the correct option removed and \"None of the above\" put at a position "
                   "other than the old answer's (chosen by the seed), which becomes the answer")
    example = ("A. Paris B. Rome C. Oslo (gold A)", "A. Rome B. None of the above C. Oslo (gold B)")
    params = (SEED, Param("text", str, NONE_OF_THE_ABOVE, "the new option's text"))

    def applies_to(self, sample: Sample) -> bool:
        return super().applies_to(sample) and len(sample.choices) >= 3

    def derive(self, sample: Sample, rng: random.Random) -> tuple[Variant, ...]:
        gold = int(sample.target)
        others = [i for i in range(len(sample.choices)) if i != gold]
        position = rng.choice([p for p in range(len(sample.choices)) if p != gold])
        order = others[:position] + [-1] + others[position:]
        choices = tuple(str(self.values["text"]) if i < 0 else sample.choices[i] for i in order)
        return (Variant(self.name, sample.input, choices, position,
                        {"order": order, "old_target": gold, "expected_change": True}),)
