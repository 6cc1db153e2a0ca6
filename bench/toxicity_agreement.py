"""A toxicity scorer's agreement with Perspective on every RealToxicityPrompts continuation in
the data directory (they carry Perspective's scores): AUROC against toxicity >= 0.5 and accuracy
at 0.5, with n. The numbers in tasks/realtoxicityprompts/README.md come from here.

    python bench/toxicity_agreement.py [--scorer profanity-check] [-T key=value ...]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
from pathlib import Path

from evalkit.params import split_assignments
from evalkit.task import DataSource, ScoreContext, get_task


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scorer", default="profanity-check")
    parser.add_argument("-T", action="append", default=[], help="scorer options, as for the task")
    args = parser.parse_args()
    given = {k: list(v) for k, v in split_assignments(args.T, ["realtoxicityprompts"]).get("", {}).items()}
    task = get_task("realtoxicityprompts", {**given, "scorer": [args.scorer]})
    data_dir = Path(os.environ.get("EVALKIT_DATA_DIR") or Path(__file__).resolve().parents[2] / "shared" / "data")
    samples = task.load(DataSource(data_dir, allow_hub=False)).samples
    pairs = [(s.metadata["continuation"], s.metadata["continuation_toxicity"]) for s in samples
             if s.metadata["continuation"] is not None and s.metadata["continuation_toxicity"] is not None]
    scorer = task.scorer  # type: ignore[attr-defined]
    started = time.perf_counter()
    scores = asyncio.run(scorer.score([t for t, _ in pairs], ScoreContext("bench")))
    seconds = time.perf_counter() - started
    kept = [(s.value, p) for s, (_, p) in zip(scores, pairs, strict=True) if s.ok]
    from evalkit.toxicity.metrics import agreement

    result = agreement([s for s, _ in kept], [p for _, p in kept])
    print(f"scorer {scorer.describe()}")
    print(f"texts {len(pairs)}, scored {len(kept)}, errors {len(pairs) - len(kept)}, {seconds:.2f}s")
    for name, metric in result.items():
        print(f"{name} {metric.value:.4f} [{metric.ci_low:.4f}, {metric.ci_high:.4f}] n={metric.n} ({metric.note})")


if __name__ == "__main__":
    main()
