"""Replay files for gate tests: a run's own outputs, with some correct answers made wrong.

`degraded_replay` reads a multiple-choice-by-generation log (mmlu_gen) and writes an evalkit
replay file (`{"id", "output"}` per line) that repeats each sample's first response, except
that a seeded `fraction` of the correctly answered samples get a wrong letter instead. Replayed
through `evalkit run --model replay:FILE`, it is the same run with a known, paired regression.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

LETTERS = "ABCDEFGHIJ"


def degraded_replay(log: Path, out: Path, fraction: float, seed: int = 0,
                    answer_letters: bool = False) -> list[str]:
    """Write the replay file; return the ids of the samples changed to a wrong answer.

    `answer_letters`: replay the gold letter for every sample first (a perfect baseline)."""
    records = [json.loads(line) for line in log.read_text().splitlines()]
    samples = [r for r in records if r.get("type") == "sample" and not r.get("error")]
    correct = [r["id"] for r in samples if answer_letters or r["score"]["value"] == 1.0]
    changed = set(random.Random(seed).sample(correct, round(fraction * len(correct))))
    with out.open("w") as fh:
        for r in samples:
            gold = int(r["target"])
            if r["id"] in changed:
                text = f"The answer is {LETTERS[(gold + 1) % len(r['choices'])]}."
            elif answer_letters:
                text = f"The answer is {LETTERS[gold]}."
            else:
                text = r["responses"][0]["text"]
            fh.write(json.dumps({"id": r["id"], "output": text}) + "\n")
    return sorted(changed)
