"""evalkit vs lm-evaluation-harness on an OpenAI-compatible server 200 ms away.

llama-cpp-python's server with SmolLM2 runs on 127.0.0.1 behind the fault proxy, which adds
200 ms to every request (network latency). Both harnesses answer the same 50 MMLU questions
(one subject) with generative letter answers through chat: evalkit's `mmlu_gen` with default
settings (its default also asks each greedy answer for first-token logprobs, for calibration;
a second evalkit run with choice_logprobs=false does the same work as lm-eval), and lm-eval
0.4.13's `local-chat-completions` model on a task built from the very prompts evalkit sent (same text, max 16 tokens, greedy), first at its default concurrency
(num_concurrent=1), then at num_concurrent=8. Wall time is each whole command. Accuracy is
computed from each harness's raw replies with the same letter extractor.

    .venv/bin/python bench/bench_api_vs_lmeval.py [--subject high_school_geography] [--n 50] [--upstream stub]

Needs lm-eval's API extras (`pip install lm-eval==0.4.13 tenacity`).

Goals (issue 4, acceptance 5), at equal accuracy: >= 3x faster than lm-eval's default,
no slower than lm-eval at num_concurrent=8.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from evalkit.choice_generation import extract_letter  # noqa: E402
from tests.api_support.fault_proxy import FaultProxy  # noqa: E402
from tests.api_support.servers import MODEL_ALIAS, LlamaServer  # noqa: E402

LM_EVAL = Path(sys.executable).with_name("lm_eval")
TASK_YAML = """task: {name}
dataset_path: json
dataset_kwargs:
  data_files:
    test: {data}
test_split: test
output_type: generate_until
doc_to_text: "{{{{prompt}}}}"
doc_to_target: "{{{{answer}}}}"
generation_kwargs:
  until: []
  max_gen_toks: {max_tokens}
  do_sample: false
  temperature: 0
metric_list:
  - metric: exact_match
"""


def one_subject(shared: Path, subject: str, dest: Path) -> Path:
    for split in ("test", "dev"):
        (dest / "mmlu" / split).mkdir(parents=True, exist_ok=True)
        shutil.copy(shared / "mmlu" / split / f"{subject}_{split}.csv", dest / "mmlu" / split)
    return dest


#: `evalkit run` with one more task registered first: mmlu_gen restricted to one subject
#: (the built-in mmlu_gen spans all 57 subjects and --limit counts per subject)
EVALKIT_ONE_SUBJECT = """
import sys
from evalkit.choice_generation import GenerativeChoiceTask
from evalkit.cli import main
from evalkit.task import register_task
from evalkit.tasks.mmlu import MMLU
subject = sys.argv[1]
register_task("mmlu_gen_one", lambda: GenerativeChoiceTask(
    "mmlu_gen_one", MMLU("mmlu", [subject]), "Answer with the letter (A, B, C or D) of the correct option only."))
sys.exit(main(sys.argv[2:]))
"""


def run_evalkit(url: str, data: Path, subject: str, n: int, work: Path, *model_args: str
                ) -> tuple[float, list[dict[str, Any]]]:
    out = work / f"evalkit-{len(model_args)}"
    command = [sys.executable, "-c", EVALKIT_ONE_SUBJECT, subject, "run",
               "--model", f"openai-compat:{url}#{MODEL_ALIAS}", "--tasks", "mmlu_gen_one", "--limit", str(n),
               "--data-dir", str(data), "--no-cache", "--output-dir", str(out), "--no-progress"]
    if model_args:
        command += ["--model-args", ",".join(model_args)]
    started = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True)
    wall = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(f"evalkit failed ({result.returncode}): {result.stderr[-2000:]}")
    (log,) = list(out.rglob("*.jsonl"))
    records = [json.loads(line) for line in log.read_text().splitlines()]
    return wall, [r for r in records if r["type"] == "sample"]


def run_lmeval(url: str, items: list[dict[str, Any]], concurrency: int | None, work: Path) -> tuple[float, list[dict[str, Any]]]:
    tag = f"c{concurrency or 'default'}"
    task_dir = work / f"lmeval-task-{tag}"
    task_dir.mkdir()
    data = task_dir / "items.jsonl"
    data.write_text("".join(json.dumps(i, ensure_ascii=False) + "\n" for i in items))
    name = f"evalkit_bench_{tag}"
    (task_dir / f"{name}.yaml").write_text(TASK_YAML.format(name=name, data=data, max_tokens=16))
    model_args = f"model={MODEL_ALIAS},base_url={url}/chat/completions,tokenizer_backend=none"
    if concurrency:
        model_args += f",num_concurrent={concurrency}"
    out = work / f"lmeval-out-{tag}"
    command = [str(LM_EVAL), "--model", "local-chat-completions", "--model_args", model_args,
               "--include_path", str(task_dir), "--tasks", name, "--apply_chat_template",
               "--output_path", str(out), "--log_samples"]
    env = {**os.environ, "HF_DATASETS_OFFLINE": "1", "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    started = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True, env=env)
    wall = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(f"lm-eval failed ({result.returncode}): {result.stderr[-3000:]}")
    (samples_file,) = list(out.rglob("samples_*.jsonl"))
    return wall, [json.loads(line) for line in samples_file.read_text().splitlines()]


def bench_items(data: Path, subject: str, n: int) -> list[dict[str, Any]]:
    """The first n questions of the subject, rendered exactly as evalkit's mmlu_gen sends them."""
    from evalkit.choice_generation import GenerativeChoiceTask
    from evalkit.task import DataSource
    from evalkit.tasks.mmlu import MMLU

    task = GenerativeChoiceTask("mmlu_gen_one", MMLU("mmlu", [subject]),
                                "Answer with the letter (A, B, C or D) of the correct option only.")
    samples = task.load(DataSource(data, allow_hub=False)).samples[:n]
    return [{"prompt": task.render_prompt(s, ()), "answer": "ABCD"[int(s.target)], "id": s.id} for s in samples]


def warm_up(url: str) -> None:
    """A few requests first: the server's first answers are much slower (loading pages, caches)."""
    for i in range(3):
        body = {"model": MODEL_ALIAS, "messages": [{"role": "user", "content": f"Say {i}."}], "max_tokens": 4}
        request = urllib.request.Request(f"{url}/chat/completions", data=json.dumps(body).encode(),
                                         headers={"content-type": "application/json"})
        with urllib.request.urlopen(request, timeout=300) as reply:
            reply.read()


def request_span(proxy: FaultProxy) -> float:
    return proxy.answered_at[-1] - proxy.received_at[0] if proxy.answered_at else float("nan")


def accuracy(replies: list[str], answers: list[str]) -> float:
    return sum(extract_letter(r, 4) == a for r, a in zip(replies, answers, strict=True)) / len(answers)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--subject", default="high_school_geography")
    parser.add_argument("--n", type=int, default=50)
    parser.add_argument("--latency", type=float, default=0.2)
    parser.add_argument("--upstream", choices=("llama", "stub"), default="llama",
                        help="llama: the real server (default); stub: the proxy answers instantly, so "
                             "only latency and harness overhead remain")
    parser.add_argument("--lmeval-first", action="store_true", help="run lm-eval before evalkit")
    parser.add_argument("--data-dir", default=os.environ.get("EVALKIT_DATA_DIR") or str(REPO.parent / "shared" / "data"))
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp, contextlib.ExitStack() as stack:
        if args.upstream == "llama":
            server = stack.enter_context(LlamaServer())
            proxy = stack.enter_context(FaultProxy(upstream=server.url.removesuffix("/v1")))
        else:  # the proxy answers itself at once: a latency-bound server
            proxy = stack.enter_context(FaultProxy(upstream="stub"))
        work = Path(tmp)
        proxy.configure(latency_s=args.latency)
        data = one_subject(Path(args.data_dir), args.subject, work / "data")
        warm_up(proxy.url)
        items = bench_items(data, args.subject, args.n)
        answers = [i["answer"] for i in items]
        runs: dict[int | None, tuple[float, list[str], int, float]] = {}

        def lmeval_runs() -> None:
            for concurrency in (None, 8):
                proxy.reset_stats()
                wall, lm_samples = run_lmeval(proxy.url, items, concurrency, work)
                replies = {s["doc"]["prompt"]: s["resps"][0][0] for s in lm_samples}
                runs[concurrency] = (wall, [replies[i["prompt"]] for i in items], proxy.stats["requests"],
                                     request_span(proxy))

        if args.lmeval_first:  # the machine's load drifts: run in both orders to see it
            lmeval_runs()
        proxy.reset_stats()
        ek_wall, ek_samples = run_evalkit(proxy.url, data, args.subject, args.n, work)
        ek_requests, ek_span = proxy.stats["requests"], request_span(proxy)
        # the same work as lm-eval: answers only, no first-token probabilities for calibration
        proxy.reset_stats()
        eq_wall, eq_samples = run_evalkit(proxy.url, data, args.subject, args.n, work, "choice_logprobs=false")
        eq_span = request_span(proxy)
        if not args.lmeval_first:
            lmeval_runs()
        ek_replies = {s["prompt"]: s["responses"][0]["text"] for s in ek_samples}

    ek_list = [ek_replies[i["prompt"]] for i in items]
    upstream = "SmolLM2 on llama-cpp-python's server" if args.upstream == "llama" else "the proxy's instant stub"
    print(f"{len(items)} MMLU items ({args.subject}), {upstream}, +{args.latency * 1000:.0f} ms per request")
    print(f"{'harness':<34} {'wall s':>8} {'requests s':>11} {'requests':>9} {'accuracy':>9} {'same replies as evalkit':>24}")
    print(f"{'evalkit (defaults)':<34} {ek_wall:>8.1f} {ek_span:>11.1f} {ek_requests:>9} "
          f"{accuracy(ek_list, answers):>9.3f} {'-':>24}")
    eq_list = [{s["prompt"]: s["responses"][0]["text"] for s in eq_samples}[i["prompt"]] for i in items]
    same_eq = sum(a == b for a, b in zip(eq_list, ek_list, strict=True))
    print(f"{'evalkit choice_logprobs=false':<34} {eq_wall:>8.1f} {eq_span:>11.1f} {len(eq_list):>9} "
          f"{accuracy(eq_list, answers):>9.3f} {same_eq:>21}/{len(items)}")
    for concurrency, (wall, replies, sent, span) in runs.items():
        same = sum(a == b for a, b in zip(replies, ek_list, strict=True))
        label = f"lm-eval num_concurrent={concurrency or '1 (default)'}"
        print(f"{label:<34} {wall:>8.1f} {span:>11.1f} {sent:>9} {accuracy(replies, answers):>9.3f} "
              f"{same:>21}/{len(items)}")
    print("(wall: the whole command; requests s: first request in to last answer out, at the proxy)")
    print(f"request-phase ratios: lm-eval default / evalkit = {runs[None][3] / ek_span:.2f}x, "
          f"lm-eval num_concurrent=8 / evalkit = {runs[8][3] / ek_span:.2f}x")
    print(f"same-work ratios (evalkit choice_logprobs=false): lm-eval default / evalkit = "
          f"{runs[None][0] / eq_wall:.2f}x, lm-eval num_concurrent=8 / evalkit = {runs[8][0] / eq_wall:.2f}x (wall)")
    default_ratio = runs[None][0] / ek_wall
    tuned_ratio = runs[8][0] / ek_wall
    print(f"RATIO lm-eval default / evalkit = {default_ratio:.2f}x  (goal >= 3): {'MET' if default_ratio >= 3 else 'NOT MET'}")
    print(f"RATIO lm-eval num_concurrent=8 / evalkit = {tuned_ratio:.2f}x  (goal >= 1): {'MET' if tuned_ratio >= 1 else 'NOT MET'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
