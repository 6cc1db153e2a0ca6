"""UI scale benchmark: 100 synthetic runs × 15,000 samples; prints render times and log reads.

    .venv/bin/python bench/bench_ui.py [--models 10 --tasks 10 --samples 15000] [--keep DIR]

Steps, each timed:
1. write the synthetic logs (10 models × 10 tasks by default) into a temp dir;
   Each is indexed as it is finished, as `evalkit run` does (a log-finished hook of the
   reports plugin), so the index cost is paid at write time, once per log;
2. the start-up scan of `evalkit ui` (finds every log indexed: parses none);
3. the app's first render (Streamlit AppTest, fresh in-process caches, index on disk);
4. interactions: change the aggregation method, sort by a task, open the drill-down,
   calibration, samples (with a filter), comparison and efficiency views, go back.
After each step it prints how many logs were parsed, index files loaded and single records
fetched; interactions must parse no log and load no index file (they are served from
st.cache_resource, keyed on each log's path, size and mtime).
Also reported: a first render with no index at all (cold: the app parses every log itself,
in one process).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

APP = Path(__file__).resolve().parents[1] / "reports" / "app.py"


def write_one(args: tuple[str, str, str, float, int]) -> None:
    from evalkit.reports.synthetic import write_synthetic_log

    path, model, task, skill, n = args
    # index=True: as `evalkit run` leaves a log (the reports plugin indexes it when it is finished)
    write_synthetic_log(Path(path), model, task, skill, n, index=True)


def write_logs(root: Path, n_models: int, n_tasks: int, n_samples: int) -> int:
    jobs = []
    for m in range(n_models):
        model = f"synthetic-model-{m:02d}"
        skill = 0.3 + 0.5 * m / max(1, n_models - 1)
        for t in range(n_tasks):
            jobs.append((str(root / model / f"task_{t:02d}.jsonl"), model, f"task_{t:02d}", skill, n_samples))
    with ProcessPoolExecutor(max_workers=2) as pool:
        list(pool.map(write_one, jobs))
    return sum(p.stat().st_size for p in root.rglob("*.jsonl"))


def reads() -> dict[str, int]:
    from evalkit.reports import frames

    return {k: frames.READS[k] for k in ("log_parse", "index_load", "record_fetch")}


def step(name: str, action: Callable[[], object]) -> tuple[float, dict[str, int]]:
    before = reads()
    start = time.perf_counter()
    action()
    seconds = time.perf_counter() - start
    delta = {k: v - before[k] for k, v in reads().items()}
    print(f"  {name:<44} {seconds:7.2f} s   logs parsed {delta['log_parse']:>3}   index files loaded "
          f"{delta['index_load']:>3}   records fetched {delta['record_fetch']:>3}")
    return seconds, delta


def run_app(at: object) -> None:
    at.run()  # type: ignore[attr-defined]
    if at.exception:  # type: ignore[attr-defined]
        raise RuntimeError(f"app raised: {[e.message for e in at.exception]}")  # type: ignore[attr-defined]


def interactions(at: object) -> list[tuple[str, Callable[[], object]]]:
    def set_and_run(get: Callable[[], object], value: object) -> Callable[[], None]:
        def go() -> None:
            get().set_value(value)  # type: ignore[attr-defined]
            run_app(at)
        return go

    sidebar_view = lambda: at.sidebar.radio(key="view")  # type: ignore[attr-defined]  # noqa: E731
    return [
        ("aggregation → win_rate", set_and_run(lambda: at.selectbox[0], "win_rate")),  # type: ignore[attr-defined]
        ("sort by the last task's column", lambda: set_and_run(  # type: ignore[attr-defined]
            lambda: at.selectbox[1], at.selectbox[1].options[-1])()),  # type: ignore[attr-defined]
        ("view: task drill-down", set_and_run(sidebar_view, "Task drill-down")),
        ("view: calibration", set_and_run(sidebar_view, "Calibration")),
        ("view: samples", set_and_run(sidebar_view, "Samples")),
        ("samples: disagreements filter", set_and_run(lambda: at.selectbox(key="s_filter"),  # type: ignore[attr-defined]
                                                      "disagreements between models")),
        ("view: compare two models", set_and_run(sidebar_view, "Compare two models")),
        ("view: efficiency", set_and_run(sidebar_view, "Efficiency")),
        ("back to leaderboard", set_and_run(sidebar_view, "Leaderboard")),
    ]


def bench_app(runs: Path, label: str) -> tuple[float, int]:
    import streamlit as st
    from streamlit.testing.v1 import AppTest

    st.cache_resource.clear()
    os.environ["EVALKIT_RUNS_DIR"] = str(runs)
    at = AppTest.from_file(str(APP), default_timeout=600)
    print(f"\n{label}")
    first, _ = step("first render (leaderboard)", lambda: run_app(at))
    rereads = 0
    for name, action in interactions(at):
        _, delta = step(name, action)
        rereads += delta["log_parse"] + delta["index_load"]
    return first, rereads


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", type=int, default=10)
    parser.add_argument("--tasks", type=int, default=10)
    parser.add_argument("--samples", type=int, default=15_000)
    parser.add_argument("--keep", type=Path, help="use/keep logs in this folder instead of a temp dir")
    parser.add_argument("--skip-cold", action="store_true", help="skip the render without an index")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="evalkit-bench-ui-"))
    runs = args.keep or work / "runs"
    os.environ["EVALKIT_CACHE_DIR"] = str(work / "cache")
    try:
        n_runs = args.models * args.tasks
        if not runs.is_dir() or not any(runs.rglob("*.jsonl")):
            start = time.perf_counter()
            size = write_logs(runs, args.models, args.tasks, args.samples)
            print(f"wrote {n_runs} logs × {args.samples} samples ({size / 1e9:.2f} GB) "
                  f"in {time.perf_counter() - start:.1f} s: {runs}")
        from evalkit.reports.frames import load_runs

        print("\n`evalkit ui` start-up (indexes any log not yet indexed; evalkit run already did)")
        step("start-up scan", lambda: load_runs(runs, workers=os.cpu_count() or 1))
        first, rereads = bench_app(runs, "app with the index on disk (fresh Streamlit caches)")
        cold_first = None
        if not args.skip_cold:
            shutil.rmtree(work / "cache", ignore_errors=True)
            os.environ["EVALKIT_REPORTS_NO_INDEX"] = "1"
            cold_first, _ = bench_app(runs, "app with no index at all (parses every log itself)")
        print(f"\nRESULT runs={n_runs} samples/run={args.samples} first_render_s={first:.2f} "
              f"(goal <= 5) log/index re-reads during interactions={rereads} (goal 0)"
              + (f" cold_first_render_no_index_s={cold_first:.2f}" if cold_first is not None else ""))
        return 0
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
