"""Acceptance evidence for `evalkit gate`: a real baseline log against its own replayed outputs
with a fraction of the correct answers changed to wrong letters (a known, paired regression).

    python bench/gate_regression.py BASELINE_LOG OUT_DIR [--fraction 0.1] [--limit 9]

Writes OUT_DIR/candidate.jsonl (the replay file), runs it through `evalkit run --model
replay:...` with the baseline's task and limit, then `evalkit gate` with JUnit, Markdown and
JSON outputs, and prints the gate's table and exit code.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.support.gate_replay import degraded_replay  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("baseline", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--fraction", type=float, default=0.1)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    header = json.loads(args.baseline.open().readline())
    task, limit = header["task"]["name"], header["config"].get("limit")
    args.out.mkdir(parents=True, exist_ok=True)
    replay = args.out / "candidate.jsonl"
    changed = degraded_replay(args.baseline, replay, args.fraction, seed=args.seed)
    print(f"{len(changed)} correct answers changed to wrong letters")
    evalkit = [sys.executable, "-m", "evalkit.cli"]
    run = [*evalkit, "run", "--model", f"replay:{replay}", "--tasks", task, "--output-dir", str(args.out / "runs"),
           "--no-cache", "--no-progress", *(["--limit", str(limit)] if limit else [])]
    subprocess.run(run, check=True, stdout=subprocess.DEVNULL)
    gate = [*evalkit, "gate", "--baseline", str(args.baseline), "--candidate", str(args.out / "runs"),
            "--junit", str(args.out / "gate.xml"), "--markdown", str(args.out / "gate.md"),
            "--json", str(args.out / "gate.json")]
    code = subprocess.run(gate).returncode
    print(f"evalkit gate exit code: {code}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
