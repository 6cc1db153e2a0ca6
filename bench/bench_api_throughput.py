"""Throughput under a server-side rate limit: the fault proxy accepts N requests per second
(sliding one-second window) and answers 429 with Retry-After above it. evalkit runs
`mmlu_gen` with default settings against it; prints the achieved rate as a fraction of N.

    .venv/bin/python bench/bench_api_throughput.py [--rps 20] [--limit 4] [--upstream stub|URL]

Goal (issue 4, acceptance 3): achieved >= 85% of N and no request fails permanently.
"Achieved" is accepted requests per second between the first and the last accepted answer
(what the limit governs); end-to-end requests/s of the whole command is printed too.
By default the proxy answers itself (a stub upstream far faster than N); --upstream points it
at a real server instead (which must then be faster than N).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.api_support.fault_proxy import FaultProxy  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rps", type=float, default=20.0, help="the proxy's limit N (requests/s)")
    parser.add_argument("--limit", type=int, default=4, help="MMLU items per subject (57 subjects)")
    parser.add_argument("--upstream", default="stub", help="'stub' or a server base URL (no /v1)")
    parser.add_argument("--data-dir", default=os.environ.get("EVALKIT_DATA_DIR") or str(REPO.parent / "shared" / "data"))
    args = parser.parse_args()

    with FaultProxy(upstream=args.upstream) as proxy, tempfile.TemporaryDirectory() as tmp:
        proxy.configure(rps=args.rps)
        command = [sys.executable, "-m", "evalkit.cli", "run", "--model", f"openai-compat:{proxy.url}#stub",
                   "--tasks", "mmlu_gen", "--limit", str(args.limit), "--data-dir", args.data_dir,
                   "--output-dir", str(Path(tmp) / "runs"), "--cache-dir", str(Path(tmp) / "cache"), "--no-progress"]
        started = time.perf_counter()
        result = subprocess.run(command, capture_output=True, text=True)
        wall = time.perf_counter() - started
        if result.returncode not in (0, 1):
            print(result.stderr[-3000:], file=sys.stderr)
            return 2
        summary = [json.loads(line) for p in Path(tmp, "runs").rglob("*.jsonl")
                   for line in p.read_text().splitlines()][-1]
        times = proxy.answered_at
        accepted = len(times)
        span = times[-1] - times[0] if accepted > 1 else float("nan")
        achieved = (accepted - 1) / span if accepted > 1 else 0.0
        ratio = achieved / args.rps
        print(f"limit N = {args.rps:g} req/s; upstream: {args.upstream}; mmlu_gen --limit {args.limit}")
        print(f"requests seen by the proxy: {proxy.stats['requests']}; accepted: {accepted}; "
              f"answered 429 (over the limit): {proxy.stats['rate_limited']}")
        print(f"samples: {summary['n_samples']}; permanent failures (errored samples): {summary['n_errors']}; "
              f"retries logged: {summary['engine']['retries']}")
        print(f"achieved: {achieved:.2f} req/s over {span:.1f}s of accepted traffic; "
              f"end to end: {accepted / wall:.2f} req/s over {wall:.1f}s (incl. start-up)")
        ok = ratio >= 0.85 and summary["n_errors"] == 0
        print(f"RATIO achieved/N = {ratio:.3f}  (goal >= 0.85, no permanent failures): {'MET' if ok else 'NOT MET'}")
        return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
