"""The 20-question MT-Bench judge run for the closing note of issue 16 (not a test).

SmolLM2 behind llama-cpp-python's OpenAI-compatible server (context 8,192, max_tokens 256)
judges vicuna-13b-v1.3 vs alpaca-13b (replayed from the shipped answer files): pairwise (both
turns, both orders, text verdicts), probability-weighted pairwise, and single grading. Prints
W/T/L, both win rates with CIs, position consistency, first-position preference, length bias,
parse failures and verdict-token mass.

    EVALKIT_DATA_DIR=../shared/data .venv/bin/python bench/judge_mt_bench.py [--questions 20] [--out DIR]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.api_support.servers import LlamaServer  # noqa: E402

EVALKIT = [sys.executable, "-m", "evalkit.cli"]
SHOWN = ("wins", "ties", "losses", "win_rate", "win_rate_ties_half", "win_rate_weighted", "position_consistency",
         "first_position_preference", "longer_answer_wins", "win_rate_when_longer", "win_rate_when_shorter",
         "parse_failure_rate", "verdict_token_mass")


def contestant(out: Path, model: str, data: Path, questions: int) -> Path:
    where = out / model
    spec = f"replay:{data / 'mt_bench' / 'model_answer' / f'{model}.jsonl.gz'}"
    subprocess.run([*EVALKIT, "run", "--model", spec, "--tasks", "mt_bench", "--limit", str(questions),
                    "--output-dir", str(where), "--no-progress"], check=True, capture_output=True)
    return next(where.rglob("mt_bench-*.jsonl"))


def judge(runs: list[Path], spec: str, out: Path, questions: int, *extra: str) -> dict[str, dict]:
    subprocess.run([*EVALKIT, "judge", *map(str, runs), "--judge", spec, "--judge-args",
                    "first_token_logprobs=separate,timeout=1800", "--concurrency", "1", "--limit", str(questions),
                    "--max-tokens", "256", "-o", str(out), "--no-progress", *extra], check=True)
    summary = json.loads(out.read_text().splitlines()[-1])
    return summary["results"]["overall"]  # type: ignore[no-any-return]


def show(title: str, overall: dict[str, dict]) -> None:
    print(f"\n{title}")
    for name, m in overall.items():
        if name in SHOWN or name.startswith("mean_score"):
            ci = m["ci"]
            interval = f"[{ci[0]:.3f}, {ci[1]:.3f}]" if ci[0] is not None else ""
            value = "—" if m["value"] is None else f"{m['value']:.3f}"
            print(f"  {name:28s} {value:>8s} {interval:18s} n={m['n']}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--questions", type=int, default=20)
    parser.add_argument("--out", type=Path, default=Path("bench-out/judge"))
    parser.add_argument("--data", type=Path, default=Path("../shared/data"))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    runs = [contestant(args.out, m, args.data, args.questions) for m in ("vicuna-13b-v1.3", "alpaca-13b")]
    with LlamaServer(n_ctx=8192) as server:
        spec = f"openai-compat:{server.url}#smollm2"
        show("pairwise, text verdicts (pair-v2 / multi-turn / math)", judge(runs, spec, args.out / "pair.jsonl",
                                                                          args.questions))
        show("pairwise, probability-weighted (verdict-first, completion prompt)",
             judge(runs, spec, args.out / "prob.jsonl", args.questions, "--verdict", "prob", "--prompt-form",
                   "completion"))
        show("single grading (single-v1 / multi-turn / math)", judge(runs, spec, args.out / "single.jsonl",
                                                                     args.questions, "--protocol", "single"))


if __name__ == "__main__":
    main()
