"""evalkit's hf backend vs lm-eval 0.4.13's `hf` model on the same SmolLM2 weights and questions.

Both sides load the same cached HF directory (SmolLM2-135M-Instruct dequantised from the
embedded GGUF), in the same dtype, on the same 200 MMLU test questions (the first
QUESTIONS_PER_SUBJECT of each of SUBJECTS), with lm-eval's prompt format. lm-eval reads
local YAML tasks built here from the same CSVs (`dataset_path: json`). Each side runs as its
own process, timed end to end (imports, model load, task building, scoring, writing) and
scoring-only (evalkit: the engine's backend seconds; lm-eval: time inside
`HFLM.loglikelihood`). Prints per-item agreement, accuracies, the largest per-choice
log-likelihood difference, the time ratios and evalkit's peak RSS.

    .venv/bin/python bench/bench_local_vs_lmeval.py [--data-dir DIR] [--dtype float32] [--subjects N --questions N]

Needs lm-eval[hf]==0.4.13 in the same environment (not installed by CI).
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
SUBJECTS = ["abstract_algebra", "anatomy", "astronomy", "business_ethics", "clinical_knowledge",
            "college_biology", "college_chemistry", "college_computer_science", "college_mathematics",
            "college_medicine"]
QUESTIONS_PER_SUBJECT = 20
LETTERS_TEXT = '{{question.strip()}}\nA. {{choices[0]}}\nB. {{choices[1]}}\nC. {{choices[2]}}\nD. {{choices[3]}}\nAnswer:'
CONTINUATION_TEXT = "Question: {{question.strip()}}\nAnswer:"

# evalkit's CLI, plus per-subject `mmlu_text_<subject>` tasks (evalkit ships only `mmlu_text`)
EVALKIT_CHILD = r"""
import json, sys
from functools import partial
from evalkit.cli import main
from evalkit.task import register_task
from evalkit.tasks.mmlu import MMLUText
from evalkit.tasks.mmlu.subjects import SUBJECT_CATEGORY
for s in SUBJECT_CATEGORY:
    register_task(f"mmlu_text_{s}", partial(MMLUText, f"mmlu_text_{s}", [s]))
sys.exit(main(json.loads(sys.argv[1])))
"""

LM_EVAL_CHILD = r"""
import json, sys, time
started = time.perf_counter()
import lm_eval
from lm_eval.models.huggingface import HFLM
from lm_eval.tasks import TaskManager
cfg = json.loads(sys.argv[1])
scoring = [0.0]
original = HFLM.loglikelihood
def timed(self, *a, **k):
    t = time.perf_counter()
    try:
        return original(self, *a, **k)
    finally:
        scoring[0] += time.perf_counter() - t
HFLM.loglikelihood = timed
out = lm_eval.simple_evaluate(
    model="hf", model_args=f"pretrained={cfg['model']},dtype={cfg['dtype']}", tasks=cfg["tasks"],
    num_fewshot=cfg["shots"], batch_size=cfg["batch_size"], device="cpu",
    task_manager=TaskManager(include_path=cfg["task_dir"]), log_samples=True)
per_item = {}
for task, samples in out["samples"].items():
    for s in samples:
        per_item[f"{task[len('bench_'):]}/{s['doc_id']}"] = [float(r[0][0]) for r in s["resps"]]
json.dump({"items": per_item, "scoring_seconds": scoring[0],
           "wall_in_process": time.perf_counter() - started}, open(cfg["out"], "w"))
"""


def build_lm_eval_tasks(task_dir: Path, data_dir: Path) -> None:
    """JSONL copies of the chosen questions (read by evalkit's own loader) and one YAML per
    (format, subject), with the same description, shots and delimiters evalkit uses."""
    from evalkit.task import DataSource, get_task
    from evalkit.tasks.mmlu import MMLUText

    for subject in SUBJECTS:
        task = get_task(f"mmlu_{subject}")
        data = task.load(DataSource(data_dir, False))
        rows = {"test": data.samples[:QUESTIONS_PER_SUBJECT], "dev": data.fewshot[subject]}
        for split, samples in rows.items():
            with (task_dir / f"{subject}_{split}.jsonl").open("w", encoding="utf-8") as fh:
                for s in samples:
                    fh.write(json.dumps({"question": s.input, "choices": list(s.choices), "answer": s.target}) + "\n")
        # each format's own intro line (mmlu_text has mmlu_continuation's)
        intro = {"letters": task.describe_subject(subject),  # type: ignore[attr-defined]
                 "text": MMLUText("mmlu_text", [subject]).describe_subject(subject)}
        for fmt, text, choices in (("letters", LETTERS_TEXT, '["A", "B", "C", "D"]'),
                                   ("text", CONTINUATION_TEXT, '"{{choices}}"')):
            description = intro[fmt]
            (task_dir / f"{fmt}_{subject}.yaml").write_text(
                f"task: bench_{fmt}_{subject}\n"
                "dataset_path: json\n"
                "dataset_kwargs:\n  data_files:\n"
                f"    test: {task_dir / f'{subject}_test.jsonl'}\n    dev: {task_dir / f'{subject}_dev.jsonl'}\n"
                "test_split: test\nfewshot_split: dev\nfewshot_config:\n  sampler: first_n\n"
                "output_type: multiple_choice\n"
                f"doc_to_text: {json.dumps(text)}\ndoc_to_choice: {choices}\ndoc_to_target: answer\n"
                f"description: {json.dumps(description)}\n"
                "metric_list:\n  - metric: acc\n", encoding="utf-8")


def run_child(cmd: list[str], env: dict[str, str] | None = None) -> tuple[float, int, str]:
    """(wall seconds, peak RSS in bytes, 1-minute load average before/after) of one child process.

    The load average is printed because this machine's cores may be shared: a ratio measured
    while something else ran is not comparable to one measured on a quiet machine."""
    load_before = os.getloadavg()[0]
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - started
    stderr = proc.stderr.read() if proc.stderr else ""
    if status != 0:
        sys.exit(f"command failed ({status}): {' '.join(cmd)}\n{stderr[-3000:]}")
    return wall, usage.ru_maxrss * 1024, f"{load_before:.2f}->{os.getloadavg()[0]:.2f}"


def run_evalkit(fmt: str, shots: int, work: Path, cfg: dict[str, Any], model: str = "hf:smollm2",
                run: int = 0) -> dict[str, Any]:
    out = work / f"evalkit-{fmt}-{shots}-{model.replace(':', '_')}-{run}"  # a fresh log: nothing resumed
    prefix = "mmlu_text_" if fmt == "text" else "mmlu_"
    model_args = f"dtype={cfg['dtype']}" if model.startswith("hf:") else ""
    argv = ["run", "--model", model, "--model-args", model_args,
            "--tasks", ",".join(prefix + s for s in SUBJECTS), "--limit", str(QUESTIONS_PER_SUBJECT),
            "--num-fewshot", str(shots), "--data-dir", str(cfg["data_dir"]), "--output-dir", str(out),
            "--no-cache", "--no-progress", "--offline"]
    cmd = [sys.executable, "-c", EVALKIT_CHILD, json.dumps(argv)]
    wall, rss, load = run_child(cmd)
    items: dict[str, list[float]] = {}
    tokens: dict[str, list[int]] = {}
    scoring = 0.0
    for log in out.rglob("*.jsonl"):
        for line in log.read_text(encoding="utf-8").splitlines():
            rec = json.loads(line)
            if rec["type"] == "sample":
                items[f"{fmt}_{rec['id']}"] = [r["logprob"] for r in rec["responses"]]
                tokens[f"{fmt}_{rec['id']}"] = [r["num_tokens"] for r in rec["responses"]]
            elif rec["type"] == "summary":
                # the engine is shared by the run's tasks: its counters are cumulative
                scoring = max(scoring, rec["engine"]["backend_seconds"])
    wanted = {f"{fmt}_{s}/{i}" for s in SUBJECTS for i in range(QUESTIONS_PER_SUBJECT)}
    return {"items": {k: v for k, v in items.items() if k in wanted}, "wall": wall, "rss": rss,
            "scoring_seconds": scoring, "tokens": tokens, "load": load}


def run_lm_eval(fmt: str, shots: int, work: Path, cfg: dict[str, Any], run: int = 0) -> dict[str, Any]:
    result = work / f"lm-eval-{fmt}-{shots}-{run}.json"
    child_cfg = {"model": cfg["model_dir"], "dtype": cfg["dtype"], "shots": shots, "batch_size": cfg["batch_size"],
                 "tasks": [f"bench_{fmt}_{s}" for s in SUBJECTS], "task_dir": str(cfg["task_dir"]), "out": str(result)}
    env = {**os.environ, "HF_DATASETS_OFFLINE": "1", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    wall, rss, load = run_child([sys.executable, "-c", LM_EVAL_CHILD, json.dumps(child_cfg)], env)
    data = json.loads(result.read_text())
    items = data["items"]  # keys are already "<fmt>_<subject>/<index>"
    return {"items": items, "wall": wall, "rss": rss, "scoring_seconds": data["scoring_seconds"], "load": load}


def run_both(fmt: str, shots: int, work: Path, cfg: dict[str, Any],
             repeat: int) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Alternate evalkit and lm-eval `repeat` times, so a burst of outside load hits both."""
    ours, theirs = [], []
    for run in range(repeat):
        ours.append(run_evalkit(fmt, shots, work, cfg, run=run))
        theirs.append(run_lm_eval(fmt, shots, work, cfg, run=run))
    return ours, theirs


def compare(name: str, ours_runs: list[dict[str, Any]], theirs_runs: list[dict[str, Any]]) -> None:
    ours, theirs = ours_runs[0], theirs_runs[0]
    keys = sorted(set(ours["items"]) & set(theirs["items"]))
    missing = len(set(ours["items"]) ^ set(theirs["items"]))
    argmax = [max(range(4), key=v.__getitem__) for v in (ours["items"][k] for k in keys)]
    argmax_theirs = [max(range(4), key=v.__getitem__) for v in (theirs["items"][k] for k in keys)]
    agree = sum(a == b for a, b in zip(argmax, argmax_theirs, strict=True))
    gold = {k: _gold(k) for k in keys}
    acc_ours = sum(a == gold[k] for a, k in zip(argmax, keys, strict=True)) / len(keys)
    acc_theirs = sum(a == gold[k] for a, k in zip(argmax_theirs, keys, strict=True)) / len(keys)
    diffs = {k: max(abs(a - b) for a, b in zip(ours["items"][k], theirs["items"][k], strict=True)) for k in keys}
    worst = max(keys, key=diffs.__getitem__)
    print(f"\n== {name}: {len(keys)} questions ({missing} unmatched)")
    print(f"per-item agreement (argmax): {agree}/{len(keys)}")
    print(f"accuracy: evalkit {acc_ours:.4f}  lm-eval {acc_theirs:.4f}")
    print(f"max |per-choice log-likelihood difference|: {diffs[worst]:.2e}  (goal <= 1e-3; worst item {worst}: "
          f"evalkit {_rounded(ours['items'][worst])} lm-eval {_rounded(theirs['items'][worst])})")
    for run, (o, t) in enumerate(zip(ours_runs, theirs_runs, strict=True)):
        tag = f"run {run + 1}: " if len(ours_runs) > 1 else ""
        print(f"{tag}wall end-to-end: lm-eval {t['wall']:.1f}s  evalkit {o['wall']:.1f}s  ratio {t['wall'] / o['wall']:.2f}x")
        print(f"{tag}scoring only:    lm-eval {t['scoring_seconds']:.1f}s  evalkit {o['scoring_seconds']:.1f}s  "
              f"ratio {t['scoring_seconds'] / o['scoring_seconds']:.2f}x   "
              f"(load avg lm-eval {t['load']}, evalkit {o['load']})")
    if len(ours_runs) > 1:
        best = {side: {m: min(r[m] for r in runs) for m in ("wall", "scoring_seconds")}
                for side, runs in (("ours", ours_runs), ("theirs", theirs_runs))}
        print(f"best of {len(ours_runs)}: end-to-end ratio {best['theirs']['wall'] / best['ours']['wall']:.2f}x, "
              f"scoring-only ratio {best['theirs']['scoring_seconds'] / best['ours']['scoring_seconds']:.2f}x")
    print(f"peak RSS: evalkit {max(r['rss'] for r in ours_runs) / 2**30:.2f} GB  "
          f"lm-eval {max(r['rss'] for r in theirs_runs) / 2**30:.2f} GB")


def compare_backends(hf: dict[str, Any], gguf: dict[str, Any]) -> None:
    keys = sorted(set(hf["items"]) & set(gguf["items"]))
    diffs = [abs(a - b) / max(na, nb)
             for k in keys
             for a, b, na, nb in zip(hf["items"][k], gguf["items"][k], hf["tokens"][k], gguf["tokens"][k], strict=True)]
    acc = {name: sum(max(range(4), key=run["items"][k].__getitem__) == _gold(k) for k in keys) / len(keys)
           for name, run in (("hf", hf), ("gguf", gguf))}
    print(f"\n== gguf:smollm2 (llama.cpp Q4_1) vs hf:smollm2 (fp32), MMLU 0-shot letters: {len(keys)} questions")
    print(f"mean per-token |log-likelihood difference|: {sum(diffs) / len(diffs):.4f} nats (goal <= 0.3)")
    print(f"accuracy: hf {acc['hf']:.4f}  gguf {acc['gguf']:.4f}  difference {100 * abs(acc['hf'] - acc['gguf']):.1f} "
          "points (goal <= 2)")
    print(f"wall end-to-end: gguf {gguf['wall']:.1f}s  hf {hf['wall']:.1f}s")


def peak_rss_5shot(work: Path, cfg: dict[str, Any]) -> None:
    run = run_evalkit("letters", 5, work / "rss", {**cfg, "dtype": "float32"})
    print(f"\n== peak RSS, evalkit hf:smollm2 fp32, MMLU 5-shot, {len(run['items'])} questions: "
          f"{run['rss'] / 2**30:.2f} GB (goal <= 3 GB)")


def _rounded(values: list[float]) -> list[float]:
    return [round(v, 4) for v in values]


_GOLD: dict[str, int] = {}


def _gold(key: str) -> int:
    return _GOLD[key]


def load_gold(data_dir: Path) -> None:
    from evalkit.task import DataSource, get_task

    for subject in SUBJECTS:
        data = get_task(f"mmlu_{subject}").load(DataSource(data_dir, False))
        for i, s in enumerate(data.samples[:QUESTIONS_PER_SUBJECT]):
            for fmt in ("letters", "text"):
                _GOLD[f"{fmt}_{subject}/{i}"] = int(s.target)


def main() -> None:
    global QUESTIONS_PER_SUBJECT
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=Path(os.environ.get("EVALKIT_DATA_DIR", REPO.parent / "shared/data")))
    parser.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"])
    parser.add_argument("--lm-eval-batch-size", type=int, default=8)
    parser.add_argument("--subjects", type=int, default=len(SUBJECTS), help="fewer subjects for a smoke run")
    parser.add_argument("--questions", type=int, default=20, help="questions per subject")
    parser.add_argument("--only", choices=["letters0", "letters5", "text0", "text5"], action="append",
                        help="run only these comparisons (default: letters0, letters5, text0)")
    parser.add_argument("--repeat", type=int, default=1,
                        help="run each side N times, alternating, and also report the best-of-N ratio")
    args = parser.parse_args()
    QUESTIONS_PER_SUBJECT = args.questions
    del SUBJECTS[args.subjects:]
    from evalkit.backends.embedded import hf_dir

    model_dir = hf_dir("smollm2")  # converted once; both sides load this directory
    load_gold(args.data_dir)
    with tempfile.TemporaryDirectory(prefix="evalkit-bench-") as tmp:
        work = Path(tmp)
        task_dir = work / "lm_eval_tasks"
        task_dir.mkdir()
        build_lm_eval_tasks(task_dir, args.data_dir)
        cfg = {"dtype": args.dtype, "data_dir": args.data_dir, "model_dir": str(model_dir),
               "task_dir": task_dir, "batch_size": args.lm_eval_batch_size}
        print(f"model: {model_dir} dtype={args.dtype}; {len(SUBJECTS)} subjects x {QUESTIONS_PER_SUBJECT} "
              f"questions; lm-eval batch_size={args.lm_eval_batch_size}, evalkit default batching; "
              f"{os.cpu_count()} CPUs")
        plan = [("letters0", "letters", 0, "MMLU 0-shot, letters"), ("letters5", "letters", 5, "MMLU 5-shot, letters"),
                ("text0", "text", 0, "MMLU 0-shot, full option text (multi-token choices)"),
                ("text5", "text", 5, "MMLU 5-shot, full option text (multi-token choices)")]
        for key, fmt, shots, title in plan:
            if (args.only and key not in args.only) or (not args.only and key == "text5"):
                continue
            ours, theirs = run_both(fmt, shots, work, cfg, max(1, args.repeat))
            compare(title, ours, theirs)
            if key == "letters0":
                compare_backends(ours[0], run_evalkit(fmt, shots, work, cfg, model="gguf:smollm2", run=-1))
            if key == "letters5" and cfg["dtype"] != "float32":
                peak_rss_5shot(work, cfg)


if __name__ == "__main__":
    main()
