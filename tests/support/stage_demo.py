"""A demo stage for the stage tests: pairs a clean log (a) with a second run (b) on sample id
and a perturbed run (c) on source id, and scores each key by how many answers agree with a's.

Run as `python -m tests.support.stage_demo A B C OUT CALLS DELAY` (the SIGKILL test does).
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from evalkit.log.io import read_log
from evalkit.log.records import SampleRecord
from evalkit.metrics.stats import wilson_interval
from evalkit.results import TaskResults
from evalkit.stages import Stage, StageInput, StageOptions, run_stage
from evalkit.task import ScoreContext
from evalkit.types import MetricValue, Score


class AgreementStage(Stage):
    name = "agreement_demo"
    headline_metric = "agree"

    def __init__(self, calls: Path, delay: float) -> None:
        self.calls = calls
        self.delay = delay

    async def process(self, key: str, joined: Mapping[str, tuple[SampleRecord, ...]],
                      ctx: ScoreContext) -> SampleRecord:
        await asyncio.sleep(self.delay)
        (clean,), (again,) = joined["a"], joined["b"]
        answer = clean.score.extracted if clean.score else None
        others = [again, *joined["c"]]
        agree = sum(1 for r in others if r.score and r.score.extracted == answer)
        with self.calls.open("a") as fh:  # the work done, one line per key, for the test to count
            fh.write(key + "\n")
        return SampleRecord(id=key, subtask=clean.subtask, score=Score(agree / len(others), answer,
                            {"perturbed": [r.id for r in joined["c"]]}),
                            joined={"a": clean.id, "b": again.id})

    def aggregate(self, records: Sequence[SampleRecord], seed: int) -> TaskResults:
        scored = [r for r in records if r.score]
        n = len(scored)
        k = sum(1 for r in scored if r.score and r.score.value == 1.0)
        low, high = wilson_interval(k, n)
        return TaskResults({"agree": MetricValue("agree", k / n if n else float("nan"), n, low, high, "wilson")})


def main(argv: list[str]) -> None:
    a, b, c, out, calls, delay = argv
    inputs = [StageInput("a", read_log(Path(a))), StageInput("b", read_log(Path(b))),
              StageInput("c", read_log(Path(c)), join="source")]
    asyncio.run(run_stage(AgreementStage(Path(calls), float(delay)), inputs, Path(out),
                          StageOptions(progress=False, concurrency=1)))
    os.write(1, b"done\n")


if __name__ == "__main__":
    main(sys.argv[1:])
