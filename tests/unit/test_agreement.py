"""Agreement with and without ties, and Cohen's κ against scikit-learn."""

from __future__ import annotations

import math

import pytest
from sklearn.metrics import cohen_kappa_score

from evalkit.metrics.agreement import agreement, cohen_kappa

JUDGE = ["model_a", "model_b", "tie", "model_a", "model_b", "tie (bothbad)", "model_a", "model_a"]
HUMAN = ["model_a", "model_a", "tie", "model_b", "model_b", "tie", "tie", "model_a"]


def test_agreement_with_and_without_ties_by_hand() -> None:
    # w/ tie: items 0, 2, 4, 5 (two tie flavours agree), 7 agree: 5 of 8
    assert agreement(JUDGE, HUMAN) == pytest.approx(5 / 8)
    # w/o tie: items 2, 5, 6 dropped (a tie on either side): 0, 4, 7 agree of 0, 1, 3, 4, 7
    assert agreement(JUDGE, HUMAN, include_ties=False) == pytest.approx(3 / 5)
    assert math.isnan(agreement(["tie"], ["model_a"], include_ties=False))


@pytest.mark.parametrize("a,b", [
    (JUDGE, HUMAN),
    (["x", "y", "x", "z", "y", "y"], ["x", "y", "y", "z", "z", "y"]),
    (["1", "1", "0", "0"], ["0", "0", "1", "1"]),
    (["a", "b", "c"], ["d", "e", "a"]),
])
def test_cohen_kappa_equals_sklearn(a: list[str], b: list[str]) -> None:
    assert cohen_kappa(a, b) == pytest.approx(cohen_kappa_score(a, b), abs=1e-12)


def test_agreement_without_ties_equals_sklearn_accuracy() -> None:
    from sklearn.metrics import accuracy_score

    kept = [(x, y) for x, y in zip(JUDGE, HUMAN, strict=True) if "tie" not in x and "tie" not in y]
    assert agreement(JUDGE, HUMAN, include_ties=False) == accuracy_score(*zip(*kept, strict=True))


def test_bad_input() -> None:
    with pytest.raises(ValueError, match="one label per item"):
        agreement(["a"], ["a", "b"])
    assert math.isnan(cohen_kappa([], []))
