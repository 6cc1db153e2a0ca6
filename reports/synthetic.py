"""Synthetic run logs for demos, tests and the UI benchmark (written fast, by templating).

Each "model" has a skill; each sample a difficulty shared by every model, so models are
correlated on the same samples as real ones are (which is what paired tests exploit).
"""

from __future__ import annotations

import json
import zlib
from pathlib import Path

import numpy as np

from evalkit import registry
from evalkit.log import SCHEMA, SCHEMA_VERSION

LETTERS = ("A", "B", "C", "D")


def _header(model: str, task: str, n_samples: int) -> str:
    return json.dumps({
        "type": "header", "schema": SCHEMA, "schema_version": SCHEMA_VERSION,
        "created_at": "2026-01-01T00:00:00+0000",
        "task": {"name": task, "version": "1", "prompt_format": "synthetic (letters)"},
        "model": {"spec": model, "backend": "synthetic", "target": model, "options": {}},
        "model_fingerprint": {"backend": "synthetic", "model": model},
        "identity": f"{model}-{task}", "config": {"limit": None, "num_fewshot": 0, "seed": 0},
        "headline_metric": "acc", "n_samples_planned": n_samples,
    }, separators=(",", ":"))


def _sample_line(sid: str, subtask: str, gold: int, pred: int, probs: np.ndarray) -> str:
    choices = ",".join(f'"option {c}"' for c in LETTERS)
    prompt = f"Synthetic question {sid}?\\nA. option A\\nB. option B\\nC. option C\\nD. option D\\nAnswer:"
    requests = ",".join(
        f'{{"kind":"loglikelihood","context":"$prompt","continuation":" {c}"}}' for c in LETTERS)
    logprobs = np.log(probs)
    responses = ",".join(f'{{"logprob":{lp:.4f},"is_greedy":false,"num_tokens":1}}' for lp in logprobs)
    prob_list = ",".join(f"{p:.6f}" for p in probs)
    value = 1.0 if pred == gold else 0.0
    return (
        f'{{"type":"sample","id":"{sid}","subtask":"{subtask}","input":"Synthetic question {sid}?",'
        f'"target":{gold},"choices":[{choices}],"metadata":{{}},"shots":[],"prompt":"{prompt}",'
        f'"requests":[{requests}],"responses":[{responses}],'
        f'"score":{{"value":{value},"extracted":{pred},"extras":{{"gold":{gold},"probs":[{prob_list}],'
        f'"acc_norm":{value}}}}},"error":null}}'
    )


def write_synthetic_log(path: Path, model: str, task: str, skill: float, n_samples: int,
                        n_subtasks: int = 10, seed: int = 0, index: bool = False) -> None:
    """One log of `n_samples` 4-choice samples; P(correct) rises with `skill` (0..1).

    No summary record is written: readers must recompute from the samples (as for an
    unfinished run), which is also what keeps the generator simple and honest.
    """
    task_rng = np.random.default_rng(zlib.crc32(task.encode()) + seed)
    difficulty = task_rng.normal(0.0, 1.0, n_samples)
    gold = task_rng.integers(0, 4, n_samples)
    rng = np.random.default_rng(zlib.crc32(f"{model}/{task}".encode()) + seed)
    p_correct = 1.0 / (1.0 + np.exp(-(4.0 * skill - 2.0 - difficulty)))
    correct = rng.random(n_samples) < p_correct
    wrong_pick = (gold + rng.integers(1, 4, n_samples)) % 4
    pred = np.where(correct, gold, wrong_pick)
    logits = rng.normal(0.0, 1.0, (n_samples, 4))
    logits[np.arange(n_samples), pred] += 2.0
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    lines = [_header(model, task, n_samples)]
    for i in range(n_samples):
        subtask = f"subject_{i % n_subtasks:02d}"
        lines.append(_sample_line(f"{subtask}/{i}", subtask, int(gold[i]), int(pred[i]), probs[i]))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    if index:
        registry.notify_log_finished(path)  # as `evalkit run` does when it finishes a log


def write_synthetic_runs(out_dir: Path, n_models: int, n_tasks: int, n_samples: int) -> list[Path]:
    """n_models × n_tasks logs under out_dir/<model>/<task>.jsonl; returns their paths."""
    paths = []
    for m in range(n_models):
        model = f"synthetic-model-{m:02d}"
        skill = 0.3 + 0.5 * m / max(1, n_models - 1)
        for t in range(n_tasks):
            path = out_dir / model / f"task_{t:02d}.jsonl"
            write_synthetic_log(path, model, f"task_{t:02d}", skill, n_samples)
            paths.append(path)
    return paths
