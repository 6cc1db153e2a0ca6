"""Meaning-preserving text perturbations (NL-Augmenter style): each changes the input text
(and the options with `choices=true`), seeded per sample. Definitions and examples:
docs/perturbations.md."""

from __future__ import annotations

import functools
import json
import random
import re
from importlib import resources

from evalkit.params import Param
from evalkit.perturb.base import (
    SEED,
    TextPerturbation,
    match_case,
    register_perturbation,
    words_with_gaps,
)

RATE = Param("rate", float, 0.05, "probability per character (or word) of a change", minimum=0.0, maximum=1.0)
CHOICES = Param("choices", bool, False, "also change the option texts")

# QWERTY neighbours: the keys either side, and the two touching keys in the rows above and
# below (the rows are staggered: above, columns c and c+1; below, c-1 and c)
_ROWS = ("qwertyuiop", "asdfghjkl", "zxcvbnm")


def _neighbours(r: int, c: int) -> str:
    spots = [(r, c - 1), (r, c + 1), (r - 1, c), (r - 1, c + 1), (r + 1, c - 1), (r + 1, c)]
    return "".join(_ROWS[r2][c2] for r2, c2 in spots if 0 <= r2 < 3 and 0 <= c2 < len(_ROWS[r2]))


_NEIGHBOURS = {ch: _neighbours(r, c) for r, row in enumerate(_ROWS) for c, ch in enumerate(row)}


@register_perturbation
class Typos(TextPerturbation):
    name = "typos"
    description = "each letter, with probability `rate`, replaced by a neighbouring key on a QWERTY keyboard"
    example = ("What is the capital of France?", "What is the capital og France?")
    params = (SEED, RATE, CHOICES)

    def transform(self, text: str, rng: random.Random) -> str:
        rate = float(self.values["rate"])
        out = []
        for char in text:
            low = char.lower()
            if low in _NEIGHBOURS and rng.random() < rate:
                new = rng.choice(_NEIGHBOURS[low])
                out.append(new.upper() if char.isupper() else new)
            else:
                out.append(char)
        return "".join(out)


@register_perturbation
class Case(TextPerturbation):
    name = "case"
    description = ("the letters' case changed: `mode=upper|lower|title`, or `random` (each letter "
                   "flipped with probability `rate`)")
    example = ("What is the capital of France?", "WHAT IS THE CAPITAL OF FRANCE?")
    params = (SEED, Param("mode", str, "upper", "upper, lower, title or random",
                          choices=("upper", "lower", "title", "random")),
              Param("rate", float, 0.2, "with mode=random: probability per letter", minimum=0.0, maximum=1.0),
              CHOICES)

    def transform(self, text: str, rng: random.Random) -> str:
        mode = self.values["mode"]
        if mode == "upper":
            return text.upper()
        if mode == "lower":
            return text.lower()
        if mode == "title":
            return "".join(w.title() if w[:1].isalpha() else w for w in words_with_gaps(text))
        rate = float(self.values["rate"])
        return "".join(c.swapcase() if c.isalpha() and rng.random() < rate else c for c in text)


@register_perturbation
class Whitespace(TextPerturbation):
    name = "whitespace"
    description = "each space, with probability `rate`, doubled, or turned into a newline (one in four)"
    example = ("What is the capital of France?", "What is  the capital\nof France?")
    params = (SEED, Param("rate", float, 0.2, "probability per space", minimum=0.0, maximum=1.0), CHOICES)

    def transform(self, text: str, rng: random.Random) -> str:
        rate = float(self.values["rate"])
        out = []
        for char in text:
            if char == " " and rng.random() < rate:
                out.append("\n" if rng.random() < 0.25 else "  ")
            else:
                out.append(char)
        return "".join(out)


_PUNCT = ".,;:!?"


@register_perturbation
class Punctuation(TextPerturbation):
    name = "punctuation"
    description = (f"each punctuation mark ({_PUNCT}), with probability `rate`, removed; and, with the "
                   "same probability per word end, a stray comma added")
    example = ("Paris, the capital, is big.", "Paris the capital, is, big.")
    params = (SEED, Param("rate", float, 0.2, "probability per mark and per word end", minimum=0.0, maximum=1.0),
              CHOICES)

    def transform(self, text: str, rng: random.Random) -> str:
        rate = float(self.values["rate"])
        out = []
        for i, char in enumerate(text):
            if char in _PUNCT and rng.random() < rate:
                continue
            out.append(char)
            word_end = char.isalpha() and i + 1 < len(text) and text[i + 1] == " "
            if word_end and rng.random() < rate:
                out.append(",")
        return "".join(out)


# (expanded, contracted); the expansion of an ambiguous contraction ('s, 'd) is its first reading
_CONTRACTIONS = (
    ("are not", "aren't"), ("cannot", "can't"), ("could not", "couldn't"), ("did not", "didn't"),
    ("does not", "doesn't"), ("do not", "don't"), ("had not", "hadn't"), ("has not", "hasn't"),
    ("have not", "haven't"), ("he is", "he's"), ("I am", "I'm"), ("I have", "I've"), ("I will", "I'll"),
    ("is not", "isn't"), ("it is", "it's"), ("must not", "mustn't"), ("she is", "she's"),
    ("should not", "shouldn't"), ("that is", "that's"), ("there is", "there's"), ("they are", "they're"),
    ("they have", "they've"), ("was not", "wasn't"), ("we are", "we're"), ("we have", "we've"),
    ("were not", "weren't"), ("what is", "what's"), ("will not", "won't"), ("would not", "wouldn't"),
    ("you are", "you're"), ("you have", "you've"), ("you will", "you'll"), ("let us", "let's"),
)


def _pattern(words: list[str]) -> re.Pattern[str]:
    return re.compile(r"\b(" + "|".join(re.escape(w) for w in sorted(words, key=len, reverse=True)) + r")\b",
                      re.IGNORECASE)


_EXPANDED = {e.lower(): c for e, c in _CONTRACTIONS}
_CONTRACTED = {c.lower(): e for e, c in _CONTRACTIONS}
_TO_CONTRACT = _pattern(list(_EXPANDED))
_TO_EXPAND = _pattern(list(_CONTRACTED))


@register_perturbation
class Contractions(TextPerturbation):
    name = "contractions"
    description = ("`direction=contract` turns e.g. \"do not\" into \"don't\"; `expand` the reverse "
                   f"({len(_CONTRACTIONS)} pairs, NL-Augmenter's contraction_expansions list, abridged)")
    example = ("It is not true that you are late.", "It's not true that you're late.")
    params = (SEED, Param("direction", str, "contract", "contract or expand", choices=("contract", "expand")),
              CHOICES)

    def transform(self, text: str, rng: random.Random) -> str:
        table, pattern = ((_EXPANDED, _TO_CONTRACT) if self.values["direction"] == "contract"
                          else (_CONTRACTED, _TO_EXPAND))
        return pattern.sub(lambda m: _keep_initial_case(table[m.group(0).lower()], m.group(0)), text)


def _keep_initial_case(new: str, old: str) -> str:
    if new.startswith("I ") or new.startswith("I'"):
        return new
    return new[:1].upper() + new[1:] if old[:1].isupper() else new


@functools.cache
def synonym_table() -> dict[str, list[str]]:
    """WordNet 3.0's first-synset synonyms of common adjectives, adverbs and verbs (shipped;
    built by bench/build_synonyms.py; license notice in the file)."""
    text = resources.files("evalkit.perturb").joinpath("data/synonyms.json").read_text(encoding="utf-8")
    table: dict[str, list[str]] = json.loads(text)["synonyms"]
    return table


@register_perturbation
class Synonyms(TextPerturbation):
    name = "synonyms"
    description = ("each word found in the WordNet list (adjectives, adverbs, verbs in their base form), "
                   "with probability `rate`, replaced by a synonym from its most frequent sense")
    example = ("Which is the correct answer?", "Which is the right answer?")
    params = (SEED, Param("rate", float, 0.5, "probability per listed word", minimum=0.0, maximum=1.0), CHOICES)

    def transform(self, text: str, rng: random.Random) -> str:
        rate, table = float(self.values["rate"]), synonym_table()
        out = []
        for word in words_with_gaps(text):
            options = table.get(word.lower())
            if options and rng.random() < rate:
                out.append(match_case(rng.choice(options), word))
            else:
                out.append(word)
        return "".join(out)


# irrelevant, true, neutral sentences (no numbers, names or options that could bear on an answer)
DISTRACTORS = (
    "The weather was pleasant that day.",
    "Some people prefer tea to coffee.",
    "The library closes early on Sundays.",
    "Many birds migrate south in the autumn.",
    "A new bakery opened down the street.",
    "The meeting room has large windows.",
)


@register_perturbation
class Distractor(TextPerturbation):
    name = "distractor"
    description = ("an irrelevant sentence (one of six fixed ones, chosen by the seed) added at the "
                   "start or the end of the input")
    example = ("What is the capital of France?", "What is the capital of France? The library closes early on Sundays.")
    params = (SEED, Param("position", str, "end", "start or end", choices=("start", "end")))

    def transform(self, text: str, rng: random.Random) -> str:
        sentence = rng.choice(DISTRACTORS)
        stripped = text.rstrip()
        tail = text[len(stripped):]
        if self.values["position"] == "start":
            return f"{sentence} {text}"
        return f"{stripped} {sentence}{tail}"
