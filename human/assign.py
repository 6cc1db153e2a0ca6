"""Who rates what, in which order, with which side where: every draw seeded and recorded.

- `balanced_assignment`: each item goes to `per_item` different annotators, always to those
  with the fewest items so far (ties broken by a seeded draw), so loads differ by at most one.
- each annotator's queue is shuffled on its own (a seed per annotator), and each slot's
  left/right (or k-way) order is a seeded permutation stored with the slot.
- attention checks: a share of each queue is shown again later, as is ("duplicate") or with
  the sides swapped ("swapped"); the repeat names the item it repeats.
- `ranking_rounds`: the relative-ranking design's rounds of at most k systems in which every
  system takes part the same number of times (HIT report §5.1.1: "5 per round").
"""

from __future__ import annotations

import hashlib
import math
import random
from collections.abc import Sequence

from evalkit.human.store import Assignment


def seeded(seed: int, *parts: object) -> random.Random:
    """A generator for one named draw: the same (seed, parts) always gives the same draws."""
    digest = hashlib.sha256(":".join(map(str, (seed, *parts))).encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


def balanced_assignment(items: Sequence[str], annotators: Sequence[str], per_item: int,
                        seed: int) -> dict[str, list[str]]:
    """annotator -> the items they rate (each item by `per_item` different annotators)."""
    if per_item > len(annotators):
        raise ValueError(f"{per_item} votes per item need at least {per_item} annotators, got {len(annotators)}")
    load = {a: 0 for a in annotators}
    queues: dict[str, list[str]] = {a: [] for a in annotators}
    for item in items:
        rng = seeded(seed, "assign", item)
        chosen = sorted(annotators, key=lambda a: (load[a], rng.random()))[:per_item]
        for a in chosen:
            load[a] += 1
            queues[a].append(item)
    return queues


def annotator_queue(annotator: str, items: Sequence[str], sizes: dict[str, int], seed: int,
                    attention: float) -> list[Assignment]:
    """One annotator's slots: their items shuffled, then attention repeats spread after them.

    `sizes`: item -> how many responses it shows. A repeat is inserted at a random later
    position than the slot it repeats; "swapped" reverses that slot's order."""
    rng = seeded(seed, "queue", annotator)
    order = list(items)
    rng.shuffle(order)
    slots: list[tuple[str, tuple[int, ...], str | None]] = []
    for item in order:
        sides = list(range(sizes[item]))
        seeded(seed, "sides", annotator, item).shuffle(sides)
        slots.append((item, tuple(sides), None))
    n_checks = math.ceil(attention * len(order)) if attention > 0 and len(order) > 1 else 0
    originals = list(slots)
    for k, first in enumerate(sorted(rng.sample(range(len(order)), n_checks))):
        item, shown, _ = originals[first]
        kind = "swapped" if k % 2 == 0 and len(shown) > 1 else "duplicate"
        repeat = tuple(reversed(shown)) if kind == "swapped" else shown
        # somewhere after the original (which earlier inserts may have moved to the right)
        after = slots.index(originals[first]) + 2
        slots.insert(rng.randint(after, len(slots)) if after <= len(slots) else len(slots),
                     (item, repeat, f"{kind}:{item}"))
    return [Assignment(annotator, i, item, shown, check) for i, (item, shown, check) in enumerate(slots)]


def ranking_rounds(systems: Sequence[str], per_round: int, seed: int) -> list[list[str]]:
    """Rounds of `per_round` distinct systems (all of them when fewer), every system in the same
    number of rounds: lcm(n, k) / k rounds, each system in lcm(n, k) / n of them."""
    n = len(systems)
    k = min(per_round, n)
    if k < 2:
        raise ValueError(f"ranking needs at least 2 systems per round, got {k}")
    n_rounds = math.lcm(n, k) // k
    rng = seeded(seed, "rounds")
    stream: list[str] = []
    while len(stream) < n_rounds * k:
        block = list(systems)
        rng.shuffle(block)
        # a block boundary must not repeat a system inside one round: rotate until it does not
        start = len(stream) - len(stream) % k
        for _ in range(n):
            if not set(block[: k - len(stream) % k]) & set(stream[start:]):
                break
            block = block[1:] + block[:1]
        stream.extend(block)
    return [sorted(stream[i * k:(i + 1) * k]) for i in range(n_rounds)]
