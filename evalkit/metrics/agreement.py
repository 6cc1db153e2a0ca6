"""Agreement between two sets of verdicts on the same items (two judges, or a judge and humans).

- `agreement(a, b)`: the share of items on which both give the same label. MT-Bench's paper
  (Zheng et al. 2023, Table 2; FastChat `llm_judge/compute_agreement.py`) reports it two ways:
  "w/ tie" (`include_ties=True`): every item counts, and two ties agree whatever their
  flavour ("tie" and "tie (bothbad)" are the same vote); "w/o tie" (`include_ties=False`):
  an item where **either** side says tie is dropped, the rest is the share of equal labels.
- `cohen_kappa(a, b)`: (p_o − p_e) / (1 − p_e), p_e = Σ_k p_a(k)·p_b(k) over the labels of
  both sides (scikit-learn's `cohen_kappa_score`, unweighted); tie flavours are not merged.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence

TIE_LABELS = frozenset({"tie", "tie (bothbad)"})


def _paired(a: Sequence[str], b: Sequence[str]) -> list[tuple[str, str]]:
    if len(a) != len(b):
        raise ValueError(f"agreement needs one label per item on both sides, got {len(a)} and {len(b)}")
    return list(zip(a, b, strict=True))


def agreement(a: Sequence[str], b: Sequence[str], *, include_ties: bool = True,
              tie_labels: frozenset[str] = TIE_LABELS) -> float:
    """Share of items with the same label (NaN when no item is left)."""
    pairs = _paired(a, b)
    if not include_ties:
        pairs = [(x, y) for x, y in pairs if x not in tie_labels and y not in tie_labels]
    if not pairs:
        return math.nan
    same = sum(1 for x, y in pairs if x == y or (x in tie_labels and y in tie_labels))
    return same / len(pairs)


def cohen_kappa(a: Sequence[str], b: Sequence[str]) -> float:
    """Cohen's κ of two label sequences; NaN when there are no items, or when both sides use
    one and the same label throughout (p_e = 1: κ is 0/0; sklearn returns NaN too)."""
    pairs = _paired(a, b)
    n = len(pairs)
    if n == 0:
        return math.nan
    observed = sum(1 for x, y in pairs if x == y) / n
    count_a, count_b = Counter(a), Counter(b)
    expected = sum(count_a[k] * count_b[k] for k in count_a) / (n * n)
    if expected == 1.0:
        return math.nan
    return (observed - expected) / (1.0 - expected)
