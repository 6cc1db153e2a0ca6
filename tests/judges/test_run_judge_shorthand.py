"""`evalkit run --tasks mt_bench --judge SPEC`: the run, then the same judgment log `evalkit judge`
writes; its options are checked before any model loads; a rerun makes no call twice."""

from __future__ import annotations

import json
from pathlib import Path

from evalkit.backends.mock import request_digest
from evalkit.log.records import requests_from_json
from tests.conftest import SHARED_DATA
from tests.helpers import evalkit, log_records
from tests.judges.conftest import contestant_log

VICUNA = f"replay:{SHARED_DATA / 'mt_bench' / 'model_answer' / 'vicuna-13b-v1.3.jsonl.gz'}"


def _judge_spec(tmp_path: Path, reply: str) -> tuple[str, Path]:
    answers = tmp_path / "judge_answers.json"
    answers.write_text(json.dumps({"Assistant": reply}))
    calls = tmp_path / "judge_calls.txt"
    return f"mock:answers={answers},calls_file={calls}", calls


def _run(tmp_path: Path, judge: str, *extra: str) -> tuple[int, str, str]:
    done = evalkit("run", "--model", VICUNA, "--tasks", "mt_bench", "--limit", "3", "--output-dir",
                   str(tmp_path / "runs"), "--cache-dir", str(tmp_path / "cache"), "--no-progress",
                   "--judge", judge, *extra)
    return done.returncode, done.stdout, done.stderr


def test_run_then_single_grading_equals_evalkit_judge(tmp_path: Path) -> None:
    judge, calls = _judge_spec(tmp_path, "Solid answer. Rating: [[7]]")
    code, out, err = _run(tmp_path, judge)
    assert code == 0, err
    (judged,) = sorted((tmp_path / "runs" / "judge").glob("mt_bench-single-*.jsonl"))
    records = log_records(judged)
    samples = [r for r in records if r["type"] == "sample"]
    assert len(samples) == 3 * 2  # questions x turns
    assert all(s["score"]["extras"]["rating"] == 7 for s in samples)
    assert "judge · single" in out and str(judged) in out
    first_calls = calls.read_text().splitlines()
    assert len(first_calls) == 6
    # the same judging by `evalkit judge` on the run's log writes the same judgment log path
    (run_log,) = [p for p in (tmp_path / "runs").rglob("mt_bench-*.jsonl") if p.parent.name != "judge"]
    again = evalkit("judge", str(run_log), "--protocol", "single", "--judge", judge, "--output-dir",
                    str(tmp_path / "runs"), "--cache-dir", str(tmp_path / "cache"), "--no-progress")
    assert again.returncode == 0, again.stderr
    assert sorted((tmp_path / "runs" / "judge").glob("*.jsonl")) == [judged]
    # rerunning the shorthand resumes both: no judge request is sent twice
    code, _, err = _run(tmp_path, judge)
    assert code == 0, err
    assert calls.read_text().splitlines() == first_calls
    assert set(first_calls) == {request_digest(q) for s in samples for q in requests_from_json(s)}


def test_pairwise_against_a_baseline_log(tmp_path: Path) -> None:
    baseline = contestant_log(tmp_path / "base", "alpaca-13b", 3)
    judge, _ = _judge_spec(tmp_path, "[[A]]")
    code, out, err = _run(tmp_path, judge, "--judge-baseline", str(baseline))
    assert code == 0, err
    (judged,) = sorted((tmp_path / "runs" / "judge").glob("mt_bench-pairwise-*.jsonl"))
    summary = log_records(judged)[-1]
    assert summary["n_samples"] == 3 * 2 * 2  # questions x turns x orders
    assert summary["results"]["overall"]["position_consistency"]["value"] == 0.0


def test_bad_judge_options_fail_before_the_run(tmp_path: Path) -> None:
    cases = [
        (["--judge", "mock:capabilities=loglikelihood"], "needs generate"),
        (["--judge", "mock", "--judge-protocol", "pairwise"], "needs --judge-baseline"),
        (["--judge", "mock", "--judge-baseline", str(tmp_path / "nope.jsonl")], "nope.jsonl"),
        (["--judge", "mock", "--judge-reference", str(tmp_path / "none.json")], "no such file"),
        (["--judge-protocol", "single"], "needs --judge SPEC"),
    ]
    for extra, message in cases:
        done = evalkit("run", "--model", VICUNA, "--tasks", "mt_bench", "--limit", "2", "--output-dir",
                       str(tmp_path / "runs"), "--no-progress", *extra)
        assert done.returncode == 2 and message in done.stderr and done.stderr.count("\n") == 1, (extra, done.stderr)
        assert not (tmp_path / "runs").exists()  # nothing ran


def test_a_task_that_generates_nothing_is_not_judged(tmp_path: Path) -> None:
    done = evalkit("run", "--model", "mock", "--tasks", "mmlu_astronomy", "--limit", "2", "--output-dir",
                   str(tmp_path / "runs"), "--no-progress", "--judge", "mock")
    assert done.returncode == 0, done.stderr
    assert "not judged: mmlu_astronomy generates no text" in done.stderr
    assert not (tmp_path / "runs" / "judge").exists()
