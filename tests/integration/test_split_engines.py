"""An embedded model on two engines in one run: generation on llama.cpp, log-likelihoods on
transformers (evalkit.backends.split). The log and `evalkit show` say which engine did what,
each kind is cached under its own engine's fingerprint, and a rerun sends nothing."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from evalkit.cli import main
from evalkit.errors import ConfigError
from evalkit.models import create_backend, parse_model_spec

TASKS = "humaneval,mmlu_anatomy"


def _run(model: str, out: Path, cache: Path, data_dir: Path, tasks: str = TASKS) -> int:
    return main(["run", "--model", model, "--tasks", tasks, "--limit", "1", "--data-dir", str(data_dir),
                 "--output-dir", str(out), "--cache-dir", str(cache), "--no-progress", "--offline", "--overwrite",
                 *([] if model.startswith("gguf:") else ["--model-args", "dtype=float32"]), *(["--no-chat"] if "humaneval" in tasks else [])])


def _records(out: Path) -> dict[str, list[dict[str, Any]]]:
    logs = {p.name.split("-")[0]: p for p in out.rglob("*.jsonl")}
    return {task: [json.loads(line) for line in p.read_text(encoding="utf-8").splitlines()] for task, p in logs.items()}


@pytest.mark.slow
def test_one_run_two_engines_logged_shown_and_cached(tmp_path: Path, data_dir: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    out, cache = tmp_path / "runs", tmp_path / "cache"
    assert _run("smollm2", out, cache, data_dir) == 0
    logs = _records(out)
    assert set(logs) == {"humaneval", "mmlu_anatomy"}
    gen, ll = logs["humaneval"][0]["model_fingerprint"], logs["mmlu_anatomy"][0]["model_fingerprint"]
    assert gen["routes"] == {"generate": "gguf"} and gen["engines"]["gguf"]["backend"] == "gguf"
    assert ll["routes"] == {"loglikelihood": "hf"} and ll["engines"]["hf"]["backend"] == "hf"
    # each task's summary counts its own requests: generations for one, log-likelihoods for the other
    first = {task: logs[task][-1]["engine"] for task in logs}
    assert set(first["humaneval"]["by_kind"]) == {"generate"} and first["humaneval"]["sent"] > 0
    assert set(first["mmlu_anatomy"]["by_kind"]) == {"loglikelihood"} and first["mmlu_anatomy"]["sent"] > 0

    capsys.readouterr()
    assert main(["show", str(out)]) == 0
    shown = capsys.readouterr().out
    assert "engines: generate on gguf" in shown and "engines: loglikelihood on hf" in shown

    assert _run("smollm2", out, cache, data_dir) == 0  # --overwrite: every request again, from the cache
    again = _records(out)
    for task in logs:
        stats = again[task][-1]["engine"]
        assert stats["sent"] == 0 and stats["cache_hits"] == stats["requests"] == first[task]["requests"]
    for task in logs:
        assert [r.get("responses") for r in again[task] if r["type"] == "sample"] == \
            [r.get("responses") for r in logs[task] if r["type"] == "sample"]

    # the generate answers are cached under llama.cpp's own fingerprint: gguf:smollm2 finds them
    assert _run("gguf:smollm2", tmp_path / "gguf", cache, data_dir, "humaneval") == 0
    solo = _records(tmp_path / "gguf")["humaneval"][-1]["engine"]
    assert solo["sent"] == 0 and solo["cache_hits"] == solo["requests"] > 0


def test_routes_follow_options_and_refuse_stray_ones() -> None:
    backend: Any = create_backend(parse_model_spec("smollm2", {"generate_with": "hf"}))
    assert backend.routes["generate"] == "hf" and backend.routes["loglikelihood"] == "hf"
    assert parse_model_spec("embedded:smollm2").backend == "embedded"
    with pytest.raises(ConfigError, match="gen_batch_size: generation runs on llama.cpp"):
        create_backend(parse_model_spec("smollm2", {"gen_batch_size": "8"}))
    with pytest.raises(ConfigError, match="n_ctx: options of the gguf engine"):
        create_backend(parse_model_spec("smollm2", {"generate_with": "hf", "n_ctx": "2048"}))
    with pytest.raises(ConfigError, match="expected auto, hf or gguf"):
        create_backend(parse_model_spec("smollm2", {"score_with": "vllm"}))
    with pytest.raises(ConfigError, match="not an embedded language model"):
        parse_model_spec("embedded:nope")
