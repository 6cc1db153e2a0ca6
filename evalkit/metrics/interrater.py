"""Agreement among many raters: Krippendorff's α and Fleiss' κ.

- `krippendorff_alpha(data, level)`: α = 1 − D_o / D_e from the coincidence matrix
  (Krippendorff 2011, "Computing Krippendorff's alpha-reliability"): `data` has one row per
  rater and one column per unit, None/NaN where a rater did not rate the unit; units with fewer
  than two ratings are dropped. Levels: nominal (δ² = [c ≠ k]), ordinal (δ²_ck = (Σ_{g=c}^{k}
  n_g − (n_c + n_k)/2)² over the sorted values, n_g their marginal counts), interval
  ((c − k)²), ratio (((c − k)/(c + k))²). NaN when fewer than two pairable values or D_e = 0.
- `fleiss_kappa(table)`: `table[i][j]` = raters who put item i in category j, the same number
  of raters per item: κ = (P̄ − P̄_e) / (1 − P̄_e) (Fleiss 1971; statsmodels' `fleiss_kappa`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray

LEVELS = ("nominal", "ordinal", "interval", "ratio")
Rating = float | int | str | None


def _is_missing(value: Rating) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _order(value: Rating) -> tuple[bool, float, str]:
    """Numbers in numeric order, then labels in alphabetical order."""
    if isinstance(value, str):
        return (True, 0.0, value)
    return (False, float(value or 0), "")


def _coincidences(data: Sequence[Sequence[Rating]]) -> tuple[list[Rating], NDArray[np.float64]]:
    """(sorted distinct values, coincidence matrix o[c][k]) over units with ≥ 2 ratings."""
    n_units = len(data[0]) if data else 0
    if any(len(row) != n_units for row in data):
        raise ValueError("every rater's row needs one entry per unit")
    units = [[row[u] for row in data if not _is_missing(row[u])] for u in range(n_units)]
    units = [u for u in units if len(u) >= 2]
    values = sorted({v for u in units for v in u}, key=_order)
    index = {v: i for i, v in enumerate(values)}
    o = np.zeros((len(values), len(values)))
    for unit in units:
        counts = np.bincount([index[v] for v in unit], minlength=len(values)).astype(float)
        # each ordered pair of different ratings in the unit, weighted 1 / (m_u - 1)
        o += (np.outer(counts, counts) - np.diag(counts)) / (len(unit) - 1)
    return values, o


def _distances(values: Sequence[Rating], marginals: NDArray[np.float64], level: str) -> NDArray[np.float64]:
    k = len(values)
    if level == "nominal":
        return 1.0 - np.eye(k)
    if any(isinstance(v, str) for v in values):
        raise ValueError(f"{level} α needs numeric ratings")
    x = np.asarray(values, dtype=float)
    if level == "interval":
        squared: NDArray[np.float64] = np.subtract.outer(x, x) ** 2
        return squared
    if level == "ratio":
        total = np.add.outer(x, x)
        with np.errstate(invalid="ignore", divide="ignore"):
            d = np.where(total == 0, 0.0, (np.subtract.outer(x, x) / total) ** 2)
        return np.asarray(d, dtype=float)
    cum = np.concatenate([[0.0], np.cumsum(marginals)])
    d = np.zeros((k, k))
    for c in range(k):
        for j in range(c, k):
            d[c, j] = d[j, c] = (cum[j + 1] - cum[c] - (marginals[c] + marginals[j]) / 2) ** 2
    return d


def krippendorff_alpha(data: Sequence[Sequence[Rating]], level: str = "nominal") -> float:
    if level not in LEVELS:
        raise ValueError(f"level must be one of {', '.join(LEVELS)}, got {level!r}")
    values, o = _coincidences(data)
    marginals = o.sum(axis=1)
    n = marginals.sum()
    if n < 2 or len(values) < 1:
        return math.nan
    delta = _distances(values, marginals, level)
    observed = float((o * delta).sum()) / n
    expected = float((np.outer(marginals, marginals) * delta).sum()) / (n * (n - 1))
    if expected == 0:
        return math.nan
    return float(1.0 - observed / expected)


def fleiss_kappa(table: Sequence[Sequence[int]]) -> float:
    counts = np.asarray(table, dtype=float)
    if counts.ndim != 2 or counts.shape[0] == 0:
        raise ValueError("Fleiss' κ needs a table of items × categories")
    raters = counts.sum(axis=1)
    if np.any(raters != raters[0]) or raters[0] < 2:
        raise ValueError("Fleiss' κ needs the same number (≥ 2) of ratings for every item")
    m = raters[0]
    p_items = ((counts * counts).sum(axis=1) - m) / (m * (m - 1))
    p_cats = counts.sum(axis=0) / counts.sum()
    p_bar, p_e = float(p_items.mean()), float((p_cats * p_cats).sum())
    if p_e == 1.0:
        return math.nan
    return (p_bar - p_e) / (1.0 - p_e)
