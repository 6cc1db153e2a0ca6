"""The embedded SmolLM2 through the CLI on both local backends, and their agreement.

57 MMLU questions (one per subject) and 52 C-Eval questions (one per subject), 0-shot,
with `hf:smollm2` (transformers, fp32) and `gguf:smollm2` (llama.cpp, Q4_1). The two run
the same weights (hf: dequantised from the same GGUF), so their per-token log-likelihoods
agree closely and so do their answers. The bench repeats the check on 200 questions.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from evalkit.cli import main

TASKS = "mmlu,ceval"


def run_cli(model: str, out: Path, data_dir: Path, *extra: str) -> dict[str, dict[str, Any]]:
    code = main(["run", "--model", model, "--tasks", TASKS, "--limit", "1", "--data-dir", str(data_dir),
                 "--output-dir", str(out), "--no-progress", "--offline", "--no-cache", *extra])
    assert code == 0
    samples: dict[str, dict[str, Any]] = {}
    logs = sorted(out.rglob("*.jsonl"))
    assert len(logs) == 2
    for log in logs:
        for line in log.read_text(encoding="utf-8").splitlines():
            rec = json.loads(line)
            if rec["type"] == "sample":
                samples[f"{log.name.split('-')[0]}/{rec['id']}"] = rec
    return samples


@pytest.fixture(scope="module")
def both_runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], dict[str, Any]]:
    # module scope runs before conftest's per-test environment: same data-dir rule, no cache
    data_dir = Path(os.environ.get("EVALKIT_DATA_DIR") or Path(__file__).resolve().parents[3] / "shared" / "data")
    hf = run_cli("hf:smollm2", tmp_path_factory.mktemp("hf"), data_dir, "--model-args", "dtype=float32")
    gguf = run_cli("gguf:smollm2", tmp_path_factory.mktemp("gguf"), data_dir)
    return hf, gguf


@pytest.mark.slow
def test_both_backends_score_every_item(both_runs: tuple[dict[str, Any], dict[str, Any]]) -> None:
    for samples in both_runs:
        assert sum(k.startswith("mmlu/") for k in samples) == 57
        assert sum(k.startswith("ceval/") for k in samples) == 52
        assert all(not s["error"] and s["score"] is not None for s in samples.values())
        assert all(r["logprob"] < 0 for s in samples.values() for r in s["responses"])


@pytest.mark.slow
def test_gguf_and_hf_agree(both_runs: tuple[dict[str, Any], dict[str, Any]]) -> None:
    hf, gguf = both_runs
    assert hf.keys() == gguf.keys()
    diffs = []
    for key in hf:
        for a, b in zip(hf[key]["responses"], gguf[key]["responses"], strict=True):
            diffs.append(abs(a["logprob"] - b["logprob"]) / max(a["num_tokens"], b["num_tokens"]))
    mean_diff = sum(diffs) / len(diffs)
    acc_hf = sum(s["score"]["value"] for s in hf.values()) / len(hf)
    acc_gguf = sum(s["score"]["value"] for s in gguf.values()) / len(gguf)
    print(f"mean per-token |ll diff| {mean_diff:.4f} nats; accuracy hf {acc_hf:.4f} gguf {acc_gguf:.4f}")
    assert mean_diff <= 0.3
    assert abs(acc_hf - acc_gguf) <= 0.02 + 1e-9
