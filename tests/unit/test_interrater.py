"""Krippendorff's α against the `krippendorff` package, Fleiss' κ against statsmodels."""

from __future__ import annotations

import math

import krippendorff
import numpy as np
import pytest
from statsmodels.stats.inter_rater import fleiss_kappa as sm_fleiss_kappa

from evalkit.metrics.interrater import fleiss_kappa, krippendorff_alpha

# Krippendorff (2011)'s worked example: 4 coders, 12 units, '*' = missing
KRIPPENDORFF_2011 = [
    [1, 2, 3, 3, 2, 1, 4, 1, 2, None, None, None],
    [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, None, 3],
    [None, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, None],
    [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, None],
]


def _as_float(data: list[list[int | None]]) -> np.ndarray:
    return np.array([[np.nan if v is None else v for v in row] for row in data], dtype=float)


@pytest.mark.parametrize("level", ["nominal", "ordinal", "interval", "ratio"])
def test_alpha_matches_the_package_on_the_paper_example(level: str) -> None:
    ours = krippendorff_alpha(KRIPPENDORFF_2011, level)
    ref = krippendorff.alpha(reliability_data=_as_float(KRIPPENDORFF_2011), level_of_measurement=level)
    assert ours == pytest.approx(ref, abs=1e-9)


def test_alpha_nominal_published_value() -> None:
    # the paper's result for the nominal example: α = 0.743
    assert krippendorff_alpha(KRIPPENDORFF_2011, "nominal") == pytest.approx(0.743, abs=5e-4)


@pytest.mark.parametrize("level", ["nominal", "ordinal", "interval"])
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_alpha_matches_the_package_on_random_sparse_ratings(level: str, seed: int) -> None:
    rng = np.random.default_rng(seed)
    truth = rng.integers(1, 6, size=40)
    data = np.clip(truth + rng.integers(-1, 2, size=(5, 40)), 1, 5).astype(float)
    data[rng.random(data.shape) < 0.3] = np.nan
    rows = [[None if math.isnan(v) else int(v) for v in row] for row in data]
    ref = krippendorff.alpha(reliability_data=data, level_of_measurement=level)
    assert krippendorff_alpha(rows, level) == pytest.approx(ref, abs=1e-9)


def test_alpha_of_string_labels_is_nominal_and_perfect_agreement_is_one() -> None:
    rows = [["a", "b", "tie", "a"], ["a", "b", "tie", "a"]]
    assert krippendorff_alpha(rows) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="numeric"):
        krippendorff_alpha(rows, "interval")
    assert math.isnan(krippendorff_alpha([["a", "a"], ["a", "a"]]))  # one value: D_e = 0


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_fleiss_matches_statsmodels(seed: int) -> None:
    rng = np.random.default_rng(seed)
    table = rng.multinomial(5, [0.5, 0.3, 0.15, 0.05], size=30)
    assert fleiss_kappa(table.tolist()) == pytest.approx(sm_fleiss_kappa(table, method="fleiss"), abs=1e-12)


def test_fleiss_published_example() -> None:
    # Fleiss (1971) as tabulated on Wikipedia: 10 items, 14 raters, 5 categories, κ = 0.210
    table = [[0, 0, 0, 0, 14], [0, 2, 6, 4, 2], [0, 0, 3, 5, 6], [0, 3, 9, 2, 0], [2, 2, 8, 1, 1],
             [7, 7, 0, 0, 0], [3, 2, 6, 3, 0], [2, 5, 3, 2, 2], [6, 5, 2, 1, 0], [0, 2, 2, 3, 7]]
    assert fleiss_kappa(table) == pytest.approx(0.210, abs=5e-4)
    with pytest.raises(ValueError, match="same number"):
        fleiss_kappa([[1, 1], [2, 1]])
