"""The real MT-Bench and AlpacaEval output files replayed through the mt_bench and alpaca_eval
tasks, and the run-level behaviour of replay: errors, warnings, exit codes, run-log header."""

from __future__ import annotations

import asyncio
import gzip
import json
import logging
import subprocess
import sys
from collections.abc import Collection
from pathlib import Path
from typing import Any

import pytest

from evalkit.backends.replay import ReplayBackend, create
from evalkit.cli import main
from evalkit.models import parse_model_spec
from evalkit.task import DataSource, get_task
from evalkit.types import GenerateRequest, Message, Sample
from tests.conftest import SHARED_DATA

MT_ANSWERS = sorted((SHARED_DATA / "mt_bench" / "model_answer").glob("*.jsonl.gz"))
ALPACA_OUTPUTS = sorted((SHARED_DATA / "alpaca_eval" / "results").glob("*/model_outputs.json.gz"))


def load_samples(task_name: str) -> tuple[Sample, ...]:
    return get_task(task_name).load(DataSource(SHARED_DATA, allow_hub=False)).samples


def mt_bench_requests(samples: tuple[Sample, ...]) -> list[GenerateRequest]:
    """Turn 1 and turn 2 requests, as the task's solve sends them (with a placeholder answer)."""
    out = []
    for s in samples:
        first, second = s.metadata["turns"]
        out.append(GenerateRequest((Message("user", first),), sample_id=s.id))
        out.append(GenerateRequest((Message("user", first), Message("assistant", "..."), Message("user", second)),
                                   sample_id=s.id))
    return out


def test_data_files_are_all_there() -> None:
    assert len(MT_ANSWERS) == 32
    assert len(ALPACA_OUTPUTS) == 3


def test_all_32_mt_bench_answer_files_load_and_match_80_questions_2_turns() -> None:
    samples = load_samples("mt_bench")
    assert len(samples) == 80 and {len(s.metadata["turns"]) for s in samples} == {2}
    requests = mt_bench_requests(samples)
    names: dict[str, str] = {}
    for path in MT_ANSWERS:
        backend = create(parse_model_spec(f"replay:{path}"))
        assert backend.match_samples(samples, samples) == {
            "unmatched_outputs": 0, "unmatched_examples": [], "samples_without_output": 0}
        responses = asyncio.run(backend.generate(requests))
        assert all(r.ok and isinstance(r.text, str) for r in responses), path
        with gzip.open(path, "rt") as f:
            rows = {str(row["question_id"]): row for row in map(json.loads, f)}
        expected = [t for s in samples for t in rows[s.id]["choices"][0]["turns"]]
        assert [r.text for r in responses] == expected
        names[path.name.removesuffix(".jsonl.gz")] = backend.describe()["model_name"]
        assert {row["model_id"] for row in rows.values()} == {names[path.name.removesuffix(".jsonl.gz")]}
    # the name comes from model_id in the file, which differs from the file name for three models
    assert {stem: name for stem, name in names.items() if stem != name} == {
        "rwkv-4-raven-14b": "RWKV-4-Raven-14B",
        "vicuna-13b-v1.3": "vicuna-13b-hao-0515",
        "vicuna-33b-v1.3": "vicuna-30b-gpt4",
    }


def test_all_3_alpaca_eval_output_files_load_and_match_805_instructions() -> None:
    samples = load_samples("alpaca_eval")
    assert len(samples) == 805 and len({s.id for s in samples}) == 805
    requests = [GenerateRequest((Message("user", str(s.input)),), sample_id=s.id) for s in samples]
    for path in ALPACA_OUTPUTS:
        backend = create(parse_model_spec(f"replay:{path}"))
        assert backend.match_samples(samples, samples)["unmatched_outputs"] == 0
        responses = asyncio.run(backend.generate(requests))
        with gzip.open(path, "rt") as f:
            rows = json.load(f)
        by_instruction = {row["instruction"]: row["output"] for row in rows}
        assert [r.text for r in responses] == [by_instruction[str(s.input)] for s in samples]
        assert backend.describe()["model_name"] == path.parent.name == rows[0]["generator"]


def read_log(out: Path) -> tuple[dict[str, Any], list[dict[str, Any]], dict[str, Any]]:
    (path,) = (p for p in out.rglob("*.jsonl") if p.is_file())
    records = [json.loads(line) for line in path.read_text().splitlines()]
    return records[0], [r for r in records if r["type"] == "sample"], records[-1]


def run_cli(model: str, task: str, out: Path, *extra: str) -> int:
    return main(["run", "--model", model, "--tasks", task, "--output-dir", str(out),
                 "--data-dir", str(SHARED_DATA), "--no-progress", "--offline", *extra])


def test_mt_bench_run_sends_turn_two_with_the_stored_turn_one_answer(tmp_path: Path) -> None:
    path = SHARED_DATA / "mt_bench" / "model_answer" / "vicuna-13b-v1.3.jsonl.gz"
    assert run_cli(f"replay:{path}", "mt_bench", tmp_path / "out") == 0
    header, samples, summary = read_log(tmp_path / "out")
    assert header["model"]["name"] == "vicuna-13b-hao-0515"
    assert header["backend_info"]["unmatched_outputs"] == 0
    assert len(samples) == 80 and summary["n_errors"] == 0
    record = next(s for s in samples if s["id"] == "81")
    turn1, turn2 = (r["text"] for r in record["responses"])
    assert record["requests"][1]["prompt"][1] == {"role": "assistant", "content": turn1}
    assert record["subtask"] == "writing" and turn1 and turn2
    overall = summary["results"]["overall"]
    assert overall["answered"]["n"] == 80
    lengths = [len(s["responses"][1]["text"]) for s in samples]
    assert overall["output_chars_turn2"]["value"] == pytest.approx(sum(lengths) / 80)


def test_name_override_reaches_the_run_log(tmp_path: Path) -> None:
    path = ALPACA_OUTPUTS[0]
    assert run_cli(f"replay:{path}", "alpaca_eval", tmp_path / "out", "--limit", "3",
                   "--model-args", "name=my-model") == 0
    header, samples, _ = read_log(tmp_path / "out")
    assert header["model"]["name"] == "my-model" and len(samples) == 3


def mt_bench_file(tmp_path: Path, drop: Collection[int] = (), extra: Collection[int] = ()) -> Path:
    with gzip.open(SHARED_DATA / "mt_bench" / "model_answer" / "gpt-4.jsonl.gz", "rt") as f:
        rows = [r for r in map(json.loads, f) if r["question_id"] not in drop]
    rows += [{**rows[0], "question_id": qid} for qid in extra]
    path = tmp_path / "answers.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_outputs_for_unknown_ids_are_counted_and_warned(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = mt_bench_file(tmp_path, extra=(999, 1000))
    with caplog.at_level(logging.WARNING, logger="evalkit"):
        assert run_cli(f"replay:{path}", "mt_bench", tmp_path / "out") == 0
    header, samples, summary = read_log(tmp_path / "out")
    assert header["backend_info"]["unmatched_outputs"] == 2
    assert header["backend_info"]["unmatched_examples"] == ["'999' (line 81)", "'1000' (line 82)"]
    assert summary["n_errors"] == 0 and len(samples) == 80
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "2 of 82 stored outputs matched no sample" in warnings[0]


def test_a_sample_without_output_is_an_error_not_a_score(tmp_path: Path) -> None:
    path = mt_bench_file(tmp_path, drop={81, 130})
    assert run_cli(f"replay:{path}", "mt_bench", tmp_path / "out") == 1
    header, samples, summary = read_log(tmp_path / "out")
    assert header["backend_info"]["samples_without_output"] == 2
    failed = {s["id"]: s for s in samples if s["error"]}
    assert set(failed) == {"81", "130"}
    assert failed["81"]["score"] is None
    assert failed["81"]["error"] == "request failed: no stored output for 81"
    assert len(failed["81"]["requests"]) == 1  # turn 2 is never sent without a turn-1 answer
    assert summary["n_errors"] == 2
    assert summary["results"]["overall"]["answered"]["n"] == 78
    assert summary["results"]["overall"]["errors"]["value"] == 2


def test_cli_exit_codes_and_stderr(tmp_path: Path) -> None:
    """Exit 2 with one line naming file:line for a bad file, nothing written; the warning for
    unknown ids is one stderr line at the end of a run that exits 0."""
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"task_id": "HumanEval/0", "completion": "x"}\n{"task_id": "HumanEval/1"}\n')
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "evalkit.cli", "run", "--tasks", "mt_bench", "--output-dir", str(out),
           "--data-dir", str(SHARED_DATA), "--no-progress", "--offline"]
    failed = subprocess.run([*cmd, "--model", f"replay:{bad}"], capture_output=True, text=True, timeout=120)
    assert failed.returncode == 2
    assert failed.stderr.strip() == f"evalkit: error: {bad}:2: missing field 'completion'"
    assert not out.exists()
    good = mt_bench_file(tmp_path, extra=(999,))
    ok = subprocess.run([*cmd, "--model", f"replay:{good}", "--limit", "80"], capture_output=True, text=True,
                        timeout=120)
    assert ok.returncode == 0, ok.stderr
    lines = ok.stderr.strip().splitlines()
    assert len(lines) == 1 and "1 of 81 stored outputs matched no sample" in lines[0] and "'999'" in lines[0]


def test_replay_declares_only_generate(tmp_path: Path) -> None:
    path = mt_bench_file(tmp_path)
    code = run_cli(f"replay:{path}", "mmlu", tmp_path / "out", "--limit", "1")
    assert code == 2
    assert isinstance(create(parse_model_spec(f"replay:{path}")), ReplayBackend)
