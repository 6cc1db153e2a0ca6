"""lm-eval's CLI with `--model evalkit` (evalkit's hf backend: shared-context scoring) vs
`--model hf`, on the same weights and a multiple-choice task with multi-token choices (MMLU
questions scored on the full option text, lm-eval's `mmlu_continuation` format).

Both run as their own process (`python -m evalkit.lmeval run ...` and `python -m lm_eval run ...`),
timed end to end, on local YAML tasks over /work/shared/data/mmlu. Prints each side's wall
time, accuracy, the largest per-choice log-likelihood difference, and the speed ratio.

    .venv/bin/python bench/bench_lmeval_wrapper.py [--questions 20] [--batch-size 8]

Needs the lmeval extra (pip install 'evalkit[lmeval]').
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
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
TASK = "tiny_mmlu_text"


def run(label: str, argv: list[str], out: Path) -> tuple[float, dict[str, Any], dict[str, list[float]]]:
    env = {**os.environ, "HF_DATASETS_OFFLINE": "1", "HF_HUB_OFFLINE": "1"}
    started = time.perf_counter()
    proc = subprocess.run(argv + ["--output_path", str(out), "--log_samples"], env=env, capture_output=True, text=True)
    wall = time.perf_counter() - started
    if proc.returncode != 0:
        sys.exit(f"{label} failed:\n{proc.stderr[-3000:]}")
    results = json.loads(sorted(out.rglob("results_*.json"))[-1].read_text())["results"]
    per_item: dict[str, list[float]] = {}
    for path in out.rglob("samples_*.jsonl"):
        for line in path.read_text().splitlines():
            row = json.loads(line)
            per_item[f"{path.name.split('_20')[0]}/{row['doc_id']}"] = [float(r[0][0]) for r in row["resps"]]
    return wall, results, per_item


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--questions", type=int, default=20, help="questions per subject (2 subjects)")
    parser.add_argument("--batch-size", type=int, default=8, help="lm-eval hf batch size")
    args = parser.parse_args()
    from evalkit.backends.embedded import hf_dir
    from tests.conftest import SHARED_DATA
    from tests.lmeval.support import write_tasks

    model = hf_dir("smollm2")
    with tempfile.TemporaryDirectory() as tmp:
        tasks = write_tasks(Path(tmp) / "tasks", SHARED_DATA, per_subject=args.questions)
        common = ["--tasks", TASK, "--include_path", str(tasks)]
        theirs = run("lm_eval --model hf", [sys.executable, "-m", "lm_eval", "run", "--model", "hf", "--model_args",
                     f"pretrained={model},dtype=float32", "--device", "cpu", "--batch_size", str(args.batch_size),
                     *common], Path(tmp) / "hf")
        ours = run("--model evalkit", [sys.executable, "-m", "evalkit.lmeval", "run", "--model", "evalkit",
                   "--model_args", "spec=hf:smollm2,dtype=float32,cache_dir=none", *common], Path(tmp) / "evalkit")
    diff = max(abs(a - b) for key, lls in ours[2].items() for a, b in zip(lls, theirs[2][key], strict=True))
    print(f"task {TASK}: {2 * args.questions} questions x 4 multi-token choices; load average {os.getloadavg()[0]:.1f}")
    print(f"lm_eval --model hf:      {theirs[0]:7.1f} s  acc={theirs[1][TASK]['acc,none']:.4f}")
    print(f"--model evalkit (hf):    {ours[0]:7.1f} s  acc={ours[1][TASK]['acc,none']:.4f}")
    print(f"max |delta log-likelihood| per choice: {diff:.2e}")
    print(f"speed ratio (lm-eval hf wall / evalkit wall): {theirs[0] / ours[0]:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
