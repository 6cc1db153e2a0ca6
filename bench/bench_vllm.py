"""For a GPU machine: evalkit's vllm backend against vLLM called directly, lm-eval's vLLM model,
and evalkit's hf backend, on the same MMLU items. NOT run in this repository's CI (no GPU).

    python bench/bench_vllm.py --model DIR [--task mmlu] [--limit 20] [--tp 1] [--skip-lmeval]

Prints:
  1. tokens/s of `evalkit run --model vllm:DIR` (prompt tokens scored per second of backend
     time) against the same token sequences sent straight to `vllm.LLM.generate` with
     prompt_logprobs=1 — the harness's overhead on vLLM (goal: within ~10%);
  2. wall time of evalkit against `lm_eval --model vllm` on the same task and limit;
  3. per-item agreement with `hf:DIR` (fp32 both): share of identical predictions and the
     largest log-likelihood difference (expect identical predictions on a small model; logprob
     differences come from vLLM's kernels, not from evalkit).
Needs: pip install 'evalkit[vllm,hf]' (and lm-eval[vllm] for 2); EVALKIT_DATA_DIR with mmlu/.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from evalkit.plan import RunConfig  # noqa: E402
from evalkit.runner import run  # noqa: E402


def evalkit_run(model: str, args: argparse.Namespace, out: Path, model_args: dict[str, str]) -> tuple[Path, float]:
    config = RunConfig(model=model, model_args=model_args, tasks=(args.task,), limit=args.limit, output_dir=out,
                       use_cache=False, progress=False, allow_hub=False)
    started = time.perf_counter()
    [outcome] = asyncio.run(run(config))
    return outcome.log_path, time.perf_counter() - started


def records(log: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in log.read_text().splitlines() if line]


def direct_vllm(args: argparse.Namespace, log: Path) -> tuple[int, float]:
    """The evalkit log's loglikelihood requests as token ids, straight into vLLM."""
    import vllm

    from evalkit.backends.tokens import lm_eval_encode_pair

    llm = vllm.LLM(model=args.model, tensor_parallel_size=args.tp, dtype="float32", seed=0)
    tok = llm.get_tokenizer()

    def encode(text: str) -> list[int]:
        return list(tok.encode(text, add_special_tokens=not (tok.bos_token and text.startswith(tok.bos_token))))

    prefix = tok.bos_token_id if tok.bos_token_id is not None else tok.eos_token_id
    seqs = []
    for r in records(log):
        if r["type"] == "sample":
            for req in r["requests"]:
                context = r["prompt"] if req["context"] == "$prompt" else req["context"]
                ctx, cont = lm_eval_encode_pair(encode, context, req["continuation"], prefix)
                seqs.append({"prompt_token_ids": [*ctx, *cont]})
    params = vllm.SamplingParams(max_tokens=1, temperature=0.0, prompt_logprobs=1)
    started = time.perf_counter()
    llm.generate(seqs, sampling_params=params, use_tqdm=False)
    return sum(len(s["prompt_token_ids"]) for s in seqs), time.perf_counter() - started


def lmeval_wall(args: argparse.Namespace, out: Path) -> float | None:
    if shutil.which("lm_eval") is None:
        return None
    started = time.perf_counter()
    subprocess.run(["lm_eval", "--model", "vllm", "--model_args",
                    f"pretrained={args.model},tensor_parallel_size={args.tp},dtype=float32",
                    "--tasks", f"{args.task}", "--limit", str(args.limit), "--output_path", str(out)], check=True)
    return time.perf_counter() - started


def agreement(vllm_log: Path, hf_log: Path) -> tuple[float, float, int]:
    a = {r["id"]: r for r in records(vllm_log) if r["type"] == "sample"}
    b = {r["id"]: r for r in records(hf_log) if r["type"] == "sample"}
    same = sum(a[k]["score"]["extracted"] == b[k]["score"]["extracted"] for k in a)
    worst = max(abs(x["logprob"] - y["logprob"]) for k in a
                for x, y in zip(a[k]["responses"], b[k]["responses"], strict=True))
    return same / len(a), worst, len(a)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", required=True, help="a local HF model directory (e.g. SmolLM2-135M)")
    parser.add_argument("--task", default="mmlu_anatomy")
    parser.add_argument("--limit", type=int, default=20)
    parser.add_argument("--tp", type=int, default=1, help="tensor_parallel_size")
    parser.add_argument("--skip-lmeval", action="store_true")
    args = parser.parse_args()
    if not os.environ.get("EVALKIT_DATA_DIR"):
        parser.error("set EVALKIT_DATA_DIR to the benchmark data folder")
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        vllm_args = {"dtype": "float32", "tensor_parallel_size": str(args.tp)}
        vllm_log, vllm_wall = evalkit_run(f"vllm:{args.model}", args, out / "vllm", vllm_args)
        summary = records(vllm_log)[-1]["engine"]
        ours = summary["prompt_tokens"] or 0
        n_tokens, direct_s = direct_vllm(args, vllm_log)
        print(f"1. evalkit on vLLM: {summary['sent']} requests, backend {summary['backend_seconds']:.2f}s "
              f"({ours or n_tokens} tokens); vLLM direct: {n_tokens} tokens in {direct_s:.2f}s = "
              f"{n_tokens / direct_s:.0f} tok/s; evalkit {n_tokens / max(summary['backend_seconds'], 1e-9):.0f} tok/s")
        lm = None if args.skip_lmeval else lmeval_wall(args, out / "lmeval")
        print(f"2. wall: evalkit {vllm_wall:.1f}s; lm-eval vllm "
              + (f"{lm:.1f}s (ratio {lm / vllm_wall:.2f}x)" if lm else "not run (lm_eval missing or skipped)"))
        hf_log, _ = evalkit_run(f"hf:{args.model}", args, out / "hf", {"dtype": "float32"})
        same, worst, n = agreement(vllm_log, hf_log)
        print(f"3. vllm vs hf on {n} items: {same:.1%} identical predictions, max |d logprob| {worst:.2e}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
