"""Counterfactual fairness: gendered words swapped (pronouns, nouns, first names).

Word lists: pronouns and kinship/role nouns after the gendered-word pairs of Zhao et al.
(2018, "Learning Gender-Neutral Word Embeddings" / WinoBias) and Lu et al. (2020,
counterfactual data augmentation), abridged and written for this project; first names are
the most frequent names of each sex in the US Social Security Administration's baby-name
data (public domain), paired by rank. "her" reads as "his" before a word that can follow a
determiner and as "him" otherwise; "his" as "hers" when it stands alone.
"""

from __future__ import annotations

import random
import re

from evalkit.perturb.base import (
    SEED,
    Perturbation,
    Variant,
    map_text,
    match_case,
    register_perturbation,
)
from evalkit.types import Sample

_PAIRS = (
    ("he", "she"), ("him", "her"), ("himself", "herself"), ("man", "woman"), ("men", "women"),
    ("boy", "girl"), ("boys", "girls"), ("father", "mother"), ("fathers", "mothers"), ("son", "daughter"),
    ("sons", "daughters"), ("brother", "sister"), ("brothers", "sisters"), ("husband", "wife"),
    ("husbands", "wives"), ("king", "queen"), ("kings", "queens"), ("uncle", "aunt"), ("uncles", "aunts"),
    ("nephew", "niece"), ("grandfather", "grandmother"), ("grandson", "granddaughter"), ("male", "female"),
    ("males", "females"), ("gentleman", "lady"), ("gentlemen", "ladies"), ("mr", "mrs"), ("sir", "madam"),
    ("boyfriend", "girlfriend"), ("prince", "princess"), ("actor", "actress"), ("waiter", "waitress"),
    ("dad", "mom"), ("masculine", "feminine"), ("fraternity", "sorority"), ("monk", "nun"),
    ("james", "mary"), ("john", "patricia"), ("robert", "jennifer"), ("michael", "linda"),
    ("william", "elizabeth"), ("david", "barbara"), ("richard", "susan"), ("joseph", "jessica"),
    ("thomas", "sarah"), ("charles", "karen"), ("daniel", "nancy"), ("matthew", "lisa"),
    ("anthony", "margaret"), ("mark", "sandra"), ("paul", "ashley"), ("steven", "emily"),
    ("andrew", "donna"), ("kevin", "michelle"), ("brian", "carol"), ("george", "amanda"),
)
_SWAP = {**{a: b for a, b in _PAIRS}, **{b: a for a, b in _PAIRS if b != "her"}, "his": "her"}
# words after which "her" is an object pronoun ("give it to her and ..."), not a determiner
_FUNCTION_WORDS = frozenset(["a", "an", "the", "and", "or", "but", "to", "of", "in", "on", "at", "for", "with", "from", "by", "as", "is", "was", "are", "were", "be", "that", "this", "than", "then", "so", "if", "when", "while", "because"])
_WORD = re.compile(r"[A-Za-z]+")


def swap_gender(text: str) -> tuple[str, int]:
    """The text with gendered words swapped, and how many were."""
    count = 0

    def replace(match: re.Match[str]) -> str:
        nonlocal count
        word = match.group(0)
        low = word.lower()
        after = _WORD.match(text, _skip_space(text, match.end()))
        if low == "her":
            new = "his" if after and after.group(0).lower() not in _FUNCTION_WORDS else "him"
        elif low == "his" and not after:
            new = "hers"
        elif low == "hers":
            new = "his"
        elif low in _SWAP:
            new = _SWAP[low]
        else:
            return word
        count += 1
        return match_case(new, word)

    return _WORD.sub(replace, text), count


def _skip_space(text: str, pos: int) -> int:
    while pos < len(text) and text[pos] == " ":
        pos += 1
    return pos


@register_perturbation
class GenderSwap(Perturbation):
    name = "gender_swap"
    kind = "counterfactual"
    description = ("gendered pronouns, nouns and first names swapped (he↔she, father↔mother, "
                   "John↔Patricia, ...); the report counts the samples it changed")
    example = ("He gave his book to John.", "She gave her book to Patricia.")
    params = (SEED,)

    def derive(self, sample: Sample, rng: random.Random) -> tuple[Variant, ...]:
        swapped = 0

        def change(text: str) -> str:
            nonlocal swapped
            new, count = swap_gender(text)
            swapped += count
            return new

        new_input = map_text(sample.input, change)
        choices = tuple(change(c) for c in sample.choices)
        return (Variant(self.name, new_input, choices, sample.target, {"swapped_words": swapped}),)
