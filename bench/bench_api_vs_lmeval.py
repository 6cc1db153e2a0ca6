"""evalkit vs lm-evaluation-harness on an OpenAI-compatible server 200 ms away.

llama-cpp-python's server with SmolLM2 runs on 127.0.0.1 behind the fault proxy, which adds
200 ms to every request (network latency). Both harnesses answer the same 50 MMLU questions
(one subject) with generative letter answers through chat: evalkit's `mmlu_gen` with default
settings, and lm-eval 0.4.13's `local-chat-completions` model on a task built from the very
prompts evalkit sent (same text, max 16 tokens, greedy), first at its default concurrency
(num_concurrent=1), then at num_concurrent=8. Wall time is each whole command. Accuracy is
computed from each harness's raw replies with the same letter extractor.

evalkit's defaults do more than lm-eval: each greedy answer also gets its first token's top
alternatives (choice probabilities, for calibration), from a 1-token request sent with the
answer (`first_token_logprobs=paired`). A second evalkit run with `choice_logprobs=false` does
exactly lm-eval's work; `--with-shared` adds a run that asks logprobs on the answer itself
(`first_token_logprobs=shared`, one call per item, what the default was before). The server
log tells how many requests found their whole prompt in its prefix cache.

    .venv/bin/python bench/bench_api_vs_lmeval.py [--subject high_school_geography] [--n 50]
        [--upstream stub] [--rounds 3] [--lmeval-first] [--with-shared]

Needs lm-eval's API extras (`pip install lm-eval==0.4.13 tenacity`). The machine's load is
printed before and after (other processes slow the server; compare ratios within one run).

Goals (issue 4, acceptance 5), at equal accuracy: >= 3x faster than lm-eval's default,
no slower than lm-eval at num_concurrent=8.

llama-cpp-python's server answers one request at a time, and on 2 CPU cores SmolLM2 needs
~0.5-0.9 s per MMLU answer, several times the 200 ms of latency a concurrent client can hide.
Each round therefore also prints the best ratio any client could reach there (lm-eval's wall
over evalkit's start-up plus the server's own time); `--upstream stub` (a server that answers
at once) shows what the client does when latency, not the server, is the limit.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from evalkit.families.choice_generation import extract_letter  # noqa: E402
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
from evalkit.families.choice_generation import GenerativeChoiceTask
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
    out = work / ("evalkit-" + ("-".join(model_args) or "defaults").replace("=", "_"))
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
    from evalkit.families.choice_generation import GenerativeChoiceTask
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


class ServerLog:
    """Prefix-cache hits in llama-cpp-python's log since the last mark: requests that found
    all but at most one prompt token already evaluated (the paired 1-token requests should)."""

    def __init__(self, server: LlamaServer | None) -> None:
        self.path = server.log_path if server else None
        self.offset = 0
        self.mark()

    def mark(self) -> None:
        self.offset = self.path.stat().st_size if self.path else 0

    def cached_prompts(self) -> int | None:
        if self.path is None:
            return None
        with self.path.open("rb") as log:
            log.seek(self.offset)
            text = log.read().decode(errors="replace")
        return len(re.findall(r"remaining [01] prompt tokens to eval|full prompt already cached", text))


@dataclass
class Run:
    label: str
    wall: float
    replies: list[str]
    requests: int
    span: float
    cached: int | None


def evalkit_run(label: str, proxy: FaultProxy, log: ServerLog, args: argparse.Namespace, data: Path,
                work: Path, items: list[dict[str, Any]], *model_args: str) -> Run:
    proxy.reset_stats()
    log.mark()
    wall, samples = run_evalkit(proxy.url, data, args.subject, args.n, work, *model_args)
    replies = {s["prompt"]: s["responses"][0]["text"] for s in samples}
    return Run(label, wall, [replies[i["prompt"]] for i in items], proxy.stats["requests"], request_span(proxy),
               log.cached_prompts())


def lmeval_run(concurrency: int | None, proxy: FaultProxy, log: ServerLog, work: Path,
               items: list[dict[str, Any]]) -> Run:
    proxy.reset_stats()
    log.mark()
    wall, samples = run_lmeval(proxy.url, items, concurrency, work)
    replies = {s["doc"]["prompt"]: s["resps"][0][0] for s in samples}
    label = f"lm-eval num_concurrent={concurrency or '1 (default)'}"
    return Run(label, wall, [replies[i["prompt"]] for i in items], proxy.stats["requests"], request_span(proxy),
               log.cached_prompts())


@dataclass
class Round:
    ours: list[Run]  # evalkit, defaults first
    lmeval: list[Run]  # default concurrency, then num_concurrent=8
    load_before: str
    load_after: str
    lmeval_first: bool


def one_round(args: argparse.Namespace, proxy: FaultProxy, log: ServerLog, data: Path, work: Path,
              items: list[dict[str, Any]], lmeval_first: bool) -> Round:
    before = load()
    work.mkdir()
    lmeval: list[Run] = []
    if lmeval_first:  # the machine's load drifts: rounds alternate the order
        lmeval = [lmeval_run(c, proxy, log, work, items) for c in (None, 8)]
    ours = [evalkit_run("evalkit (defaults)", proxy, log, args, data, work, items)]
    ours.append(evalkit_run("evalkit choice_logprobs=false", proxy, log, args, data, work, items,
                            "choice_logprobs=false"))
    if args.with_shared:
        ours.append(evalkit_run("evalkit first_token_logprobs=shared", proxy, log, args, data, work, items,
                                "first_token_logprobs=shared"))
    if not lmeval_first:
        lmeval = [lmeval_run(c, proxy, log, work, items) for c in (None, 8)]
    return Round(ours, lmeval, before, load(), lmeval_first)


def run_all(args: argparse.Namespace) -> tuple[list[Round], list[str]]:
    """Every round against one server and proxy; and the gold letters."""
    with tempfile.TemporaryDirectory() as tmp, contextlib.ExitStack() as stack:
        server = stack.enter_context(LlamaServer()) if args.upstream == "llama" else None
        # without a server the proxy answers itself at once: a latency-bound server
        proxy = stack.enter_context(FaultProxy(upstream=server.url.removesuffix("/v1") if server else "stub"))
        proxy.configure(latency_s=args.latency)
        data = one_subject(Path(args.data_dir), args.subject, Path(tmp) / "data")
        warm_up(proxy.url)
        items = bench_items(data, args.subject, args.n)
        log = ServerLog(server)
        rounds = [one_round(args, proxy, log, data, Path(tmp) / f"round{i}", items, args.lmeval_first != (i % 2 == 1))
                  for i in range(args.rounds)]
    return rounds, [i["answer"] for i in items]


def serial_bound(ours: list[Run], base: Run, latency: float) -> str:
    """The best wall ratio any client doing lm-eval's work could reach against lm-eval's default
    on a server that answers one request at a time: latency fully hidden, the server never idle.

    lm-eval's sequential run waits latency + server time per request, so its request phase minus
    the added latency is the server's own time; evalkit cannot go below that plus its own
    start-up and teardown (its wall minus its request phase)."""
    n = len(base.replies)
    server_seconds = max(base.span - n * latency, 0.0)
    plain = ours[1] if len(ours) > 1 else ours[0]  # choice_logprobs=false: lm-eval's work exactly
    overhead = max(plain.wall - plain.span, 0.0)
    bound = base.wall / (overhead + server_seconds) if overhead + server_seconds > 0 else float("inf")
    return (f"server time per request (lm-eval's sequential run, less the {latency * 1000:.0f} ms): "
            f"{server_seconds / n:.3f} s; evalkit start-up and teardown {overhead:.1f} s; best possible "
            f"lm-eval default / evalkit for the same work on a serialising server: {bound:.2f}x")


def report(ours: list[Run], lmeval: list[Run], answers: list[str], latency: float) -> tuple[float, float, bool]:
    """Print one round; returns its (default, tuned) ratios and whether accuracies were equal."""
    default = ours[0]
    print(f"{'harness':<36} {'wall s':>7} {'requests s':>10} {'requests':>8} {'cached prompts':>14} "
          f"{'accuracy':>8} {'same replies as evalkit':>23}")
    for run in ours + lmeval:
        same = sum(a == b for a, b in zip(run.replies, default.replies, strict=True))
        cached = "-" if run.cached is None else str(run.cached)
        print(f"{run.label:<36} {run.wall:>7.1f} {run.span:>10.1f} {run.requests:>8} {cached:>14} "
              f"{accuracy(run.replies, answers):>8.3f} {same:>20}/{len(answers)}")
    base, tuned = lmeval
    for run in ours[1:]:
        print(f"{run.label}: lm-eval default / it = {base.wall / run.wall:.2f}x, "
              f"lm-eval num_concurrent=8 / it = {tuned.wall / run.wall:.2f}x (wall)")
    print(f"request-phase ratios (defaults): lm-eval default / evalkit = {base.span / default.span:.2f}x, "
          f"lm-eval num_concurrent=8 / evalkit = {tuned.span / default.span:.2f}x")
    if ours[0].cached is not None:  # a real server: how far the server's own time lets any client go
        print(serial_bound(ours, base, latency))
    equal = accuracy(default.replies, answers) == accuracy(base.replies, answers) == accuracy(tuned.replies, answers)
    print(f"accuracy equal across evalkit defaults and both lm-eval runs: {'yes' if equal else 'NO'}")
    ratios = (base.wall / default.wall, tuned.wall / default.wall)
    for name, ratio, goal in (("lm-eval default", ratios[0], 3.0), ("lm-eval num_concurrent=8", ratios[1], 1.0)):
        print(f"RATIO {name} / evalkit defaults = {ratio:.2f}x  (goal >= {goal:g}): "
              f"{'MET' if ratio >= goal and equal else 'NOT MET'}")
    return ratios[0], ratios[1], equal


def summarise(rounds: list[Round], answers: list[str], latency: float) -> None:
    results = []
    for i, r in enumerate(rounds, 1):
        first = "lm-eval first" if r.lmeval_first else "evalkit first"
        print(f"\n-- round {i} ({first}); before: {r.load_before}; after: {r.load_after}")
        results.append(report(r.ours, r.lmeval, answers, latency))
    print("(wall: the whole command; requests s: first request in to last answer out, at the proxy;\n"
          " cached prompts: requests that found all but <= 1 prompt token in the server's prefix cache)")
    if len(rounds) > 1:
        base = statistics.median(x[0] for x in results)
        tuned = statistics.median(x[1] for x in results)
        equal = all(x[2] for x in results)
        print(f"\nmedian over {len(rounds)} rounds: lm-eval default / evalkit defaults = {base:.2f}x (goal >= 3: "
              f"{'MET' if base >= 3 and equal else 'NOT MET'}); lm-eval num_concurrent=8 / evalkit defaults = "
              f"{tuned:.2f}x (goal >= 1: {'MET' if tuned >= 1 and equal else 'NOT MET'})")
        print("per round: " + ", ".join(f"{a:.2f}x/{b:.2f}x" for a, b, _ in results))


def load() -> str:
    return "load average " + ", ".join(f"{x:.2f}" for x in os.getloadavg())


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--subject", default="high_school_geography")
    parser.add_argument("--n", type=int, default=50)
    parser.add_argument("--latency", type=float, default=0.2)
    parser.add_argument("--upstream", choices=("llama", "stub"), default="llama",
                        help="llama: the real server (default); stub: the proxy answers instantly, so "
                             "only latency and harness overhead remain")
    parser.add_argument("--rounds", type=int, default=1, help="repeat everything, alternating which harness goes first")
    parser.add_argument("--lmeval-first", action="store_true", help="run lm-eval before evalkit in the first round")
    parser.add_argument("--with-shared", action="store_true",
                        help="also run evalkit with first_token_logprobs=shared (logprobs on the answer itself)")
    parser.add_argument("--data-dir", default=os.environ.get("EVALKIT_DATA_DIR") or str(REPO.parent / "shared" / "data"))
    args = parser.parse_args()
    rounds, answers = run_all(args)
    upstream = "SmolLM2 on llama-cpp-python's server" if args.upstream == "llama" else "the proxy's instant stub"
    print(f"{len(answers)} MMLU items ({args.subject}), {upstream}, +{args.latency * 1000:.0f} ms per request")
    summarise(rounds, answers, args.latency)
    return 0


if __name__ == "__main__":
    sys.exit(main())
