"""Bias metrics against independent references: StereoSet's scores against a port of the
reference `evaluation.py` counting loop and hand-worked cases; SEAT's effect size against a
plain-Python WEAT formula and its permutation p against `scipy.stats.permutation_test`."""

from __future__ import annotations

import itertools
import math
import statistics
from collections import Counter, defaultdict

import numpy as np
import pytest
from scipy.spatial.distance import cosine
from scipy.stats import permutation_test

from evalkit.metrics.bias import (
    associations,
    effect_size,
    permutation_p,
    stereoset_intervals,
    stereoset_scores,
)

# --- StereoSet ---------------------------------------------------------------------------------


def reference_stereoset(examples: list[tuple[str, float, float, float]]) -> dict[str, float]:
    """moinnadeem/StereoSet evaluation.py's count() and score(), on (term, s, a, u) scores."""
    counts: dict[str, Counter[str]] = defaultdict(Counter)
    for term, s, a, u in examples:
        if s > a:
            counts[term]["pro"] += 1
        else:
            counts[term]["anti"] += 1
        if s > u:
            counts[term]["related"] += 1
        if a > u:
            counts[term]["related"] += 1
        counts[term]["total"] += 1
    ss_scores, lm_scores, micro = [], [], []
    for c in counts.values():
        ss = 100.0 * c["pro"] / c["total"]
        lm = 100.0 * c["related"] / (2 * c["total"])
        ss_scores.append(ss)
        lm_scores.append(lm)
        micro.append(lm * min(ss, 100 - ss) / 50)
    ss, lm = statistics.fmean(ss_scores), statistics.fmean(lm_scores)
    return {"ss": ss, "lms": lm, "icat": lm * min(ss, 100 - ss) / 50, "icat_micro": statistics.fmean(micro)}


def ours(examples: list[tuple[str, float, float, float]]) -> dict[str, float]:
    index: dict[str, int] = {}
    terms = [index.setdefault(t, len(index)) for t, *_ in examples]
    pro = [float(s > a) for _, s, a, _ in examples]
    related = [int(s > u) + int(a > u) for _, s, a, u in examples]
    got = stereoset_scores(terms, pro, related)
    return {"ss": got.ss, "lms": got.lms, "icat": got.icat, "icat_micro": got.icat_micro}


def test_stereoset_hand_worked() -> None:
    # term "nurse": 2 examples, stereotype wins once; related 2 + 1 of 4 -> SS 50, LMS 75
    # term "chess player": 1 example, stereotype wins, related 2 of 2 -> SS 100, LMS 100
    examples = [("nurse", -1.0, -2.0, -3.0), ("nurse", -2.0, -1.0, -1.5), ("chess player", -1.0, -1.5, -4.0)]
    got = ours(examples)
    assert got["ss"] == pytest.approx(75.0)  # (50 + 100) / 2: macro over terms, not 2/3 over examples
    assert got["lms"] == pytest.approx(87.5)  # (75 + 100) / 2
    assert got["icat"] == pytest.approx(87.5 * 25 / 50)
    assert got["icat_micro"] == pytest.approx((75 * 50 / 50 + 0.0) / 2)  # chess player: SS 100 -> ICAT_t 0


def test_stereoset_tie_counts_as_anti_stereotype() -> None:
    got = ours([("t", -1.0, -1.0, -5.0)])
    assert got["ss"] == 0.0 and got["lms"] == 100.0


def test_stereoset_matches_reference_loop_on_random_scores() -> None:
    rng = np.random.default_rng(3)
    terms = [f"term{i}" for i in range(40)]
    examples = [(terms[int(rng.integers(40))], *map(float, rng.normal(size=3).round(1))) for _ in range(900)]
    got, want = ours(examples), reference_stereoset(examples)  # rounding makes ties happen
    for key in want:
        assert got[key] == pytest.approx(want[key], abs=1e-9), key


def test_stereoset_intervals_contain_the_estimate_and_are_seeded() -> None:
    rng = np.random.default_rng(0)
    terms = rng.integers(0, 30, size=600)
    pro = rng.random(600) < 0.6
    related = rng.integers(0, 3, size=600)
    point = stereoset_scores(terms, pro, related)
    ci = stereoset_intervals(terms, pro, related, resamples=300, seed=1)
    assert ci == stereoset_intervals(terms, pro, related, resamples=300, seed=1)
    for key in ("ss", "lms", "icat"):
        low, high = ci[key]
        assert low < getattr(point, key) < high, key
    assert ci["ss"][1] - ci["ss"][0] < 15


# --- SEAT ------------------------------------------------------------------------------------------


def independent_s(w: np.ndarray, a_set: np.ndarray, b_set: np.ndarray) -> float:
    """s(w, A, B) with scipy's cosine distance (1 - cos) and Python means."""
    return statistics.fmean(1 - cosine(w, a) for a in a_set) - statistics.fmean(1 - cosine(w, b) for b in b_set)


def fixed_vectors(n: int, dims: int = 12, shift: float = 0.4, seed: int = 0) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(seed)
    a_dir = rng.normal(size=dims)
    x = rng.normal(size=(n, dims)) + shift * a_dir
    y = rng.normal(size=(n, dims)) - shift * a_dir
    a = rng.normal(size=(n + 3, dims)) + a_dir
    b = rng.normal(size=(n + 1, dims)) - a_dir
    return x, y, a, b


def test_effect_size_matches_the_weat_formula() -> None:
    x, y, a, b = fixed_vectors(8)
    s_x = [independent_s(w, a, b) for w in x]
    s_y = [independent_s(w, a, b) for w in y]
    want = (statistics.fmean(s_x) - statistics.fmean(s_y)) / statistics.stdev(s_x + s_y)  # stdev: n - 1
    np.testing.assert_allclose(associations(x, a, b), s_x, rtol=1e-12)
    got = effect_size(associations(x, a, b), associations(y, a, b))
    assert got == pytest.approx(want, rel=1e-10)
    assert got > 0.5  # the vectors were built with X near A: a real effect


def test_effect_size_of_constant_associations_is_nan() -> None:
    assert math.isnan(effect_size([0.1, 0.1], [0.1, 0.1]))


@pytest.mark.parametrize("n", [4, 7])
def test_exact_p_matches_scipy_permutation_test(n: int) -> None:
    x, y, a, b = fixed_vectors(n, shift=0.15, seed=n)
    s_x, s_y = associations(x, a, b), associations(y, a, b)
    ours_p = permutation_p(s_x, s_y, n_samples=100_000)
    assert ours_p.exact and ours_p.partitions == math.comb(2 * n, n)
    ref = permutation_test((s_x, s_y), lambda u, v, axis: np.sum(u, axis=axis), permutation_type="independent",
                           alternative="greater", n_resamples=np.inf, vectorized=True)
    assert ours_p.p_value == pytest.approx(ref.pvalue, abs=1e-12)
    # and against a literal enumeration in Python (sent-bias's loop over itertools.combinations)
    pooled = list(s_x) + list(s_y)
    observed = sum(s_x)
    hits = sum(1 for combo in itertools.combinations(range(2 * n), n)
               if sum(pooled[i] for i in combo) >= observed - 1e-12)
    assert ours_p.p_value == pytest.approx(hits / math.comb(2 * n, n))


def test_monte_carlo_p_agrees_with_exact_within_its_stated_error() -> None:
    n = 9  # C(18, 9) = 48,620 partitions
    x, y, a, b = fixed_vectors(n, shift=0.1, seed=11)
    s_x, s_y = associations(x, a, b), associations(y, a, b)
    exact = permutation_p(s_x, s_y, n_samples=100_000)
    assert exact.exact and 0.01 < exact.p_value < 0.9  # a p-value Monte Carlo can miss
    mc = permutation_p(s_x, s_y, n_samples=20_000, seed=5)
    assert not mc.exact and mc.partitions == 20_000 and "19999 seeded random partitions" in mc.method
    assert abs(mc.p_value - exact.p_value) <= 4 * mc.standard_error + 1 / mc.partitions
    assert permutation_p(s_x, s_y, n_samples=20_000, seed=5) == mc  # seeded
    ref = permutation_test((s_x, s_y), lambda u, v, axis: np.sum(u, axis=axis), permutation_type="independent",
                           alternative="greater", n_resamples=19_999, vectorized=True, random_state=1)
    assert abs(mc.p_value - ref.pvalue) <= 6 * mc.standard_error  # scipy's (count + 1)/(N + 1) estimator


def test_monte_carlo_p_is_never_zero_and_ties_count() -> None:
    far = permutation_p(np.full(30, 1.0) + np.arange(30) * 1e-3, np.zeros(30), n_samples=1000)
    assert not far.exact and far.p_value == pytest.approx(1 / 1000)
    tied = permutation_p([0.2] * 3, [0.2] * 3)
    assert tied.exact and tied.p_value == 1.0


def test_unequal_target_sets_are_refused() -> None:
    with pytest.raises(ValueError, match="same non-zero size"):
        permutation_p([1.0, 2.0], [1.0])
