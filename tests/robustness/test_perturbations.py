"""Every built-in perturbation: deterministic for a seed, changes the text as defined
(before/after fixtures), and option reorderings keep the gold answer on the same option text."""

from __future__ import annotations

import random

import pytest

from evalkit.params import resolve
from evalkit.perturb.base import Perturbation, sample_seed, wrapper_entry
from evalkit.perturb.counterfactual import swap_gender
from evalkit.perturb.text import DISTRACTORS, synonym_table
from evalkit.types import Message, Sample

QUESTION = Sample(
    id="q/0", input="It is not true that he does not know what is big.",
    choices=("Paris, France", "Rome", "Oslo", "Bern"), target=2, subtask="geo",
)


def perturbation(name: str, **given: str) -> Perturbation:
    entry = wrapper_entry(name)
    values = resolve(name, entry.params, {k: [v] for k, v in given.items()})
    task = entry.factory(_Dummy(), values, f"@{name}")
    return task.perturbation  # type: ignore[attr-defined, no-any-return]


class _Dummy:
    """Enough of a task for a wrapper's constructor."""

    name, version, description, prompt_format, headline_metric = "dummy", "1", "", "", "acc"
    requires: frozenset[str] = frozenset()
    roles: dict[str, frozenset[str]] = {}
    default_num_fewshot, limit_per_subtask, interactive, parameters = 0, False, False, {}

    async def ascore(self) -> None: ...


def derive(p: Perturbation, sample: Sample = QUESTION) -> list[Sample]:
    from evalkit.perturb.wrap import PerturbedTask

    task = object.__new__(PerturbedTask)
    task.perturbation = p
    return list(task.derive(sample))


ALL = ["typos", "case", "whitespace", "punctuation", "contractions", "synonyms", "distractor",
       "option_shuffle", "circular", "none_of_the_above", "gender_swap"]


@pytest.mark.parametrize("name", ALL)
def test_deterministic_for_a_seed_and_seed_matters(name: str) -> None:
    rich = Sample(id="x/1", input="He is not sure that the big quick dog does not run, she said; it is late. " * 3,
                  choices=("alpha one", "beta two", "gamma three", "delta four"), target=1)
    first = derive(perturbation(name, **_strong(name)), rich)
    again = derive(perturbation(name, **_strong(name)), rich)
    assert first == again
    for s in first:
        assert s.source_id == "x/1" and s.id.startswith("x/1@")
        assert s.derivation["perturbation"] == name
        assert s.derivation["original"]["input"] == rich.input
        assert s.derivation["seed"] == sample_seed(int(s.derivation["params"].get("seed", 0)), name, "x/1")
    if "seed" in dict(perturbation(name).values) and name not in ("contractions", "gender_swap", "case"):
        others = [derive(perturbation(name, **_strong(name), seed=str(k)), rich) for k in range(1, 6)]
        assert any(o != first for o in others), "the seed changes nothing"


def _strong(name: str) -> dict[str, str]:
    return {"typos": {"rate": "0.3"}, "case": {"mode": "random", "rate": "0.5"},
            "whitespace": {"rate": "0.5"}, "punctuation": {"rate": "0.5"}, "synonyms": {"rate": "1.0"},
            }.get(name, {})


def test_typos_replace_letters_by_keyboard_neighbours_only() -> None:
    text = "the quick brown fox jumps over the lazy dog " * 5
    out = derive(perturbation("typos", rate="0.2"), Sample(id="t", input=text))[0].input
    assert isinstance(out, str) and len(out) == len(text) and out != text
    rows = ("qwertyuiop", "asdfghjkl", "zxcvbnm")
    where = {ch: (r, row.index(ch) + 0.5 * r) for r, row in enumerate(rows) for ch in row}  # staggered
    for a, b in zip(text, out, strict=True):
        if a != b:  # a key at most one row and one key-width away
            (ra, ca), (rb, cb) = where[a], where[b]
            assert abs(ra - rb) <= 1 and abs(ca - cb) <= 1, (a, b)
    unchanged = derive(perturbation("typos", rate="0"), Sample(id="t", input=text))[0]
    assert unchanged.input == text and unchanged.derivation["changed"] is False


def test_typo_fixture() -> None:
    out = derive(perturbation("typos", rate="0.1", seed="1"), Sample(id="fix", input="What is the capital of France?"))
    assert out[0].input == _typo_fixture()


def _typo_fixture() -> str:
    # recomputed here from the definition: each letter, with p=0.1, a QWERTY neighbour
    from evalkit.perturb.text import _NEIGHBOURS

    rng = random.Random(sample_seed(1, "typos", "fix"))
    out = []
    for c in "What is the capital of France?":
        if c.lower() in _NEIGHBOURS and rng.random() < 0.1:
            n = rng.choice(_NEIGHBOURS[c.lower()])
            out.append(n.upper() if c.isupper() else n)
        else:
            out.append(c)
    return "".join(out)


def test_keyboard_neighbours_are_adjacent_keys() -> None:
    from evalkit.perturb.text import _NEIGHBOURS

    assert set(_NEIGHBOURS["g"]) == set("tyfhvb")
    assert set(_NEIGHBOURS["s"]) == set("weadzx")
    assert set(_NEIGHBOURS["q"]) == set("wa")
    assert set(_NEIGHBOURS["m"]) == set("njk")


@pytest.mark.parametrize(("params", "before", "after"), [
    ({"mode": "upper"}, "What is it?", "WHAT IS IT?"),
    ({"mode": "lower"}, "What is NASA?", "what is nasa?"),
    ({"mode": "title"}, "what is the capital?", "What Is The Capital?"),
])
def test_case_fixtures(params: dict[str, str], before: str, after: str) -> None:
    assert derive(perturbation("case", **params), Sample(id="c", input=before))[0].input == after


def test_whitespace_and_punctuation_change_only_spaces_and_marks() -> None:
    text = "One, two; three. Four! Five? Six, seven and eight."
    spaced = derive(perturbation("whitespace", rate="1"), Sample(id="w", input=text))[0].input
    assert isinstance(spaced, str) and spaced.split() == text.split() and spaced != text
    punct = derive(perturbation("punctuation", rate="0.5"), Sample(id="p", input=text))[0].input
    assert isinstance(punct, str) and punct != text
    strip = str.maketrans("", "", ".,;:!?")
    assert punct.translate(strip) == text.translate(strip)


@pytest.mark.parametrize(("direction", "before", "after"), [
    ("contract", "It is not true that you are late; I am sure they do not care.",
     "It's not true that you're late; I'm sure they don't care."),
    ("expand", "It's not true that you're late; I'm sure they don't care.",
     "It is not true that you are late; I am sure they do not care."),
    ("contract", "Do not go.", "Don't go."),
])
def test_contractions_fixtures(direction: str, before: str, after: str) -> None:
    p = perturbation("contractions", direction=direction)
    assert derive(p, Sample(id="k", input=before))[0].input == after


def test_synonyms_come_from_the_wordnet_list() -> None:
    table = synonym_table()
    assert table["big"] == ["large"] and "right" in table["correct"]  # WordNet 3.0's first senses
    out = derive(perturbation("synonyms", rate="1"), Sample(id="s", input="Which is the correct and big one?"))
    assert out[0].input == "Which is the right and large one?"


def test_distractor_adds_one_fixed_sentence() -> None:
    out = derive(perturbation("distractor"), Sample(id="d", input="What is 2+2?"))[0].input
    assert isinstance(out, str) and out.startswith("What is 2+2? ")
    assert out.removeprefix("What is 2+2? ") in DISTRACTORS
    start = derive(perturbation("distractor", position="start"), Sample(id="d", input="Q?"))[0].input
    assert isinstance(start, str) and start.endswith(" Q?") and start.removesuffix(" Q?") in DISTRACTORS


def test_chat_prompts_change_user_messages_only() -> None:
    chat = Sample(id="m", input=(Message("system", "Be brief."), Message("user", "what is it?")))
    out = derive(perturbation("case", mode="upper"), chat)[0].input
    assert out == (Message("system", "Be brief."), Message("user", "WHAT IS IT?"))


def test_option_shuffle_keeps_the_gold_option_text() -> None:
    for k in range(20):
        s = Sample(id=f"o/{k}", input="Q?", choices=("a", "b", "c", "d"), target=k % 4)
        (out,) = derive(perturbation("option_shuffle"), s)
        assert sorted(out.choices) == sorted(s.choices)
        assert out.choices[out.target] == s.choices[s.target]
        assert [s.choices[i] for i in out.derivation["order"]] == list(out.choices)


def test_circular_gives_every_rotation() -> None:
    rotations = derive(perturbation("circular"), QUESTION)
    assert [r.id for r in rotations] == [f"q/0@rot{k}" for k in range(4)]
    assert rotations[0].choices == QUESTION.choices and rotations[0].derivation["changed"] is False
    assert rotations[1].choices == ("Rome", "Oslo", "Bern", "Paris, France")
    for r in rotations:
        assert r.choices[r.target] == "Oslo"
    assert {r.choices[0] for r in rotations} == set(QUESTION.choices)


def test_none_of_the_above_moves_the_answer() -> None:
    for k in range(12):
        s = Sample(id=f"n/{k}", input="Q?", choices=("a", "b", "c", "d"), target=k % 4)
        (out,) = derive(perturbation("none_of_the_above"), s)
        assert out.choices[out.target] == "None of the above"
        assert out.target != s.target  # the answer's letter changes
        assert s.choices[s.target] not in out.choices
        assert sorted(c for c in out.choices if c != "None of the above") == sorted(
            c for i, c in enumerate(s.choices) if i != s.target)
        assert out.derivation["kind"] == "contrast"


@pytest.mark.parametrize(("before", "after"), [
    ("He gave his book to John.", "She gave her book to Patricia."),
    ("She told her brother that the book was hers.", "He told his sister that the book was his."),
    ("I saw her and her mother.", "I saw him and his father."),
    ("The king and the men.", "The queen and the women."),
    ("Nothing gendered here.", "Nothing gendered here."),
])
def test_gender_swap_fixtures(before: str, after: str) -> None:
    assert swap_gender(before)[0] == after


def test_gender_swap_counts_changed_samples() -> None:
    (changed,) = derive(perturbation("gender_swap"), Sample(id="g", input="He ran.", choices=("his father", "her"), target=0))
    assert changed.input == "She ran." and changed.choices == ("her mother", "him") and changed.derivation["changed"]
    assert changed.derivation["swapped_words"] == 4
    (same,) = derive(perturbation("gender_swap"), Sample(id="g2", input="It ran."))
    assert same.input == "It ran." and same.derivation["changed"] is False


def test_group_gaps_from_group_labels() -> None:
    """Samples with metadata["group"]: per-group paired metrics and the largest gap."""
    from evalkit.log.records import SampleRecord
    from evalkit.stages.robustness import group_gaps, pair_record, robustness_results
    from evalkit.types import Score

    rng = random.Random(3)
    records = []
    for i in range(40):
        group = "f" if i % 2 else "m"
        clean = SampleRecord(id=str(i), metadata={"group": group}, choices=("a", "b"),
                             score=Score(float(rng.random() < (0.8 if group == "f" else 0.4)), 0))
        pert = SampleRecord(id=f"{i}@gender_swap", source_id=str(i), choices=("a", "b"),
                            score=Score(float(rng.random() < 0.6), 1), derivation={"changed": True})
        records.append(pair_record(str(i), clean, [pert], "counterfactual"))
    results = robustness_results(records, "counterfactual", "group", seed=0, resamples=200)
    by_group = {g: [r for r in records if r.metadata["group"] == g] for g in ("f", "m")}
    means = {g: sum(r.score.extras["clean"] for r in rs) / len(rs) for g, rs in by_group.items()}  # type: ignore[union-attr]
    assert results.categories["group:f"]["clean"].value == means["f"]
    assert group_gaps(results)["clean"] == max(means.values()) - min(means.values())
    assert results.overall["prediction_changed"].value == 1.0  # every answer moved from 0 to 1
