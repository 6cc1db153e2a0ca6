"""Crash and resume: SIGKILL a run mid-way, run the same command again, and check that the
log holds every sample exactly once, results equal an uninterrupted run's, and no request of a
sample finished before the kill reached the backend twice."""

from __future__ import annotations

import collections
import json
import os
from pathlib import Path

from evalkit.backends.mock import request_digest
from evalkit.log.records import requests_from_json as requests_from_record
from tests.helpers import evalkit, kill_evalkit_when, log_records

N_PER_SUBJECT = 10  # x 57 subjects = 570 samples, 2,280 requests


def run_args(out: Path, calls: Path) -> list[str]:
    return ["run", "--model", f"mock:delay=0.04,chunk=8,calls_file={calls}", "--tasks", "mmlu",
            "--limit", str(N_PER_SUBJECT), "--output-dir", str(out), "--no-progress"]


def finished_samples(out: Path) -> list[dict]:
    logs = list(out.rglob("*.jsonl"))
    if not logs:
        return []
    lines = logs[0].read_bytes().split(b"\n")[:-1]  # complete lines only
    return [r for r in map(json.loads, lines) if r["type"] == "sample"]


def test_sigkill_mid_run_then_resume(tmp_path: Path) -> None:
    out, calls = tmp_path / "runs", tmp_path / "calls.txt"
    env = {**os.environ, "EVALKIT_CACHE_DIR": str(tmp_path / "cache")}
    kill_evalkit_when(run_args(out, calls), lambda: len(finished_samples(out)) >= 150, env, timeout=120)
    before_kill = finished_samples(out)
    assert 150 <= len(before_kill) < 570, "the kill must land mid-run"
    calls_before = calls.read_text().splitlines()

    resumed = evalkit(*run_args(out, calls), env=env)
    assert resumed.returncode == 0, resumed.stderr

    records = log_records(next(out.rglob("*.jsonl")))
    ids = collections.Counter(r["id"] for r in records if r["type"] == "sample")
    assert len(ids) == 57 * N_PER_SUBJECT and set(ids.values()) == {1}, "every sample exactly once"

    calls_after = collections.Counter(calls.read_text().splitlines())
    for sample in before_kill:
        for request in requests_from_record(sample):
            assert calls_after[request_digest(request)] == 1, f"{sample['id']} was sent again"
    assert len(calls_after) > len(set(calls_before)), "the resumed run did the remaining work"

    clean_out, clean_calls = tmp_path / "clean", tmp_path / "clean_calls.txt"
    clean = evalkit(*run_args(clean_out, clean_calls), env={"EVALKIT_CACHE_DIR": str(tmp_path / "cache2")})
    assert clean.returncode == 0, clean.stderr
    resumed_results = records[-1]["results"]
    clean_results = log_records(next(clean_out.rglob("*.jsonl")))[-1]["results"]
    assert resumed_results == clean_results


def test_rerun_of_a_finished_run_sends_nothing(tmp_path: Path) -> None:
    out, calls = tmp_path / "runs", tmp_path / "calls.txt"
    assert evalkit(*run_args(out, calls)).returncode == 0
    n_calls = len(calls.read_text().splitlines())
    again = evalkit(*run_args(out, calls))
    assert again.returncode == 0
    assert len(calls.read_text().splitlines()) == n_calls
    records = log_records(next(out.rglob("*.jsonl")))
    assert sum(r["type"] == "sample" for r in records) == 57 * N_PER_SUBJECT
