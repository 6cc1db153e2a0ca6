"""Log-to-log stages: joins on sample id and source id, append-as-you-go, resume after SIGKILL."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from evalkit.log.io import LogWriter, read_log
from evalkit.log.records import HeaderRecord, SampleRecord, SummaryRecord
from evalkit.results import TaskResults
from evalkit.stages import StageInput, joined_keys
from evalkit.types import Score
from tests.helpers import evalkit, log_records

REPO = Path(__file__).resolve().parents[2]
N = 12


def write_log(path: Path, name: str, records: list[SampleRecord]) -> Path:
    header = HeaderRecord(task={"name": name, "version": "1", "prompt_format": "invented"},
                          model={"spec": f"mock:{name}", "backend": "mock", "target": "mock", "options": {}},
                          identity=f"id-{name}")
    with LogWriter(path) as writer:
        writer.append(header.to_json())
        writer.append_many([r.to_json() for r in records])
        writer.append(SummaryRecord(TaskResults({}), len(records), len(records), 0).to_json())
    return path


@pytest.fixture
def inputs(tmp_path: Path) -> tuple[Path, Path, Path]:
    def rec(sid: str, answer: int, source: str = "") -> SampleRecord:
        derivation = {"perturbation": "uppercase"} if source else {}
        return SampleRecord(id=sid, subtask="s", score=Score(1.0, answer), source_id=source, derivation=derivation)

    a = write_log(tmp_path / "a.jsonl", "clean", [rec(f"q{i}", i % 4) for i in range(N)])
    b = write_log(tmp_path / "b.jsonl", "again", [rec(f"q{i}", i % 4 if i % 3 else 0) for i in range(N)])
    # two perturbations of every even question, one of every odd one, plus one whose source is unknown
    derived = [rec(f"q{i}~{j}", i % 4 if j == 0 else (i + 1) % 4, f"q{i}") for i in range(N) for j in range(2 - i % 2)]
    c = write_log(tmp_path / "c.jsonl", "perturbed", [*derived, rec("x~0", 1, "x")])
    return a, b, c


def test_join_rule(inputs: tuple[Path, Path, Path]) -> None:
    a, b, c = (read_log(p) for p in inputs)
    keys, joined, skipped = joined_keys([StageInput("a", a), StageInput("b", b), StageInput("c", c, "source")])
    assert keys == [f"q{i}" for i in range(N)]
    assert [r.id for r in joined["q0"]["c"]] == ["q0~0", "q0~1"] and [r.id for r in joined["q1"]["c"]] == ["q1~0"]
    assert skipped == 1  # "x" has no clean sample


def _start(inputs: tuple[Path, Path, Path], out: Path, calls: Path, delay: float) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "tests.support.stage_demo", *map(str, inputs), str(out),
                             str(calls), str(delay)], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def test_stage_resumes_after_sigkill_without_repeating_work(inputs: tuple[Path, Path, Path], tmp_path: Path) -> None:
    out, calls = tmp_path / "derived.jsonl", tmp_path / "calls.txt"
    proc = _start(inputs, out, calls, delay=0.15)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        done = [r for r in (log_records(out) if out.exists() else []) if r.get("type") == "sample"]
        if len(done) >= 4:
            break
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    before = {r["id"] for r in log_records(out) if r.get("type") == "sample"}
    assert 4 <= len(before) < N, "the stage finished before it could be killed"
    proc = _start(inputs, out, calls, delay=0.0)
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 0, stderr.decode()
    work = calls.read_text().split()
    assert all(work.count(k) == 1 for k in before), "a key finished before the kill was processed again"
    log = read_log(out)
    assert sorted(log.samples) == sorted(f"q{i}" for i in range(N))
    assert log.header.kind == "stage" and [i["label"] for i in log.header.inputs] == ["a", "b", "c"]
    assert log.header.extra["unjoined_keys"] == 1
    assert log.samples["q0"].joined == {"a": "q0", "b": "q0"}
    assert log.summary is not None and log.summary.n_samples == N
    # agree == 1 exactly when b keeps a's answer (i % 3 != 0, or a's answer is 0 anyway) and every
    # perturbation does (odd i: its one perturbation keeps it; even i: the second one changes it)
    expected = sum(1 for i in range(N) if (i % 3 != 0 or i % 4 == 0) and i % 2 == 1)
    agree = log.summary.results.overall["agree"]
    assert agree.n == N and agree.value == expected / N
    # a third run has nothing left to do
    proc = _start(inputs, out, calls, delay=0.0)
    proc.communicate(timeout=120)
    assert calls.read_text().split() == work
    shown = evalkit("show", str(out), "--json")
    assert shown.returncode == 0, shown.stderr
    entry = json.loads(shown.stdout)["logs"][0]
    assert entry["task"] == "agreement_demo" and entry["model"] == "stage:agreement_demo"
    assert entry["results"]["overall"]["agree"]["n"] == N
