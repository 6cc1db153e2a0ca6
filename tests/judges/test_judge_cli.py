"""`evalkit judge` with a scripted judge: the judgment log, an always-"A" judge, bad input,
contestant logs with missing samples, and SIGKILL then resume."""

from __future__ import annotations

import collections
import json
import os
from pathlib import Path

import pytest

from evalkit.backends.mock import request_digest
from evalkit.cli import main
from evalkit.log.records import requests_from_json
from tests.conftest import SHARED_DATA
from tests.helpers import evalkit, kill_evalkit_when, log_records
from tests.judges.conftest import contestant_log


def judge_args(a: Path, b: Path, out: Path, judge: str = "mock", *extra: str) -> list[str]:
    return ["judge", str(a), str(b), "--judge", judge, "-o", str(out), "--no-progress", *extra]


def test_always_a_judge_gives_all_ties_and_no_position_consistency(contestants: tuple[Path, Path],
                                                                 tmp_path: Path) -> None:
    answers = tmp_path / "always_a.json"
    answers.write_text(json.dumps({"Assistant": "A"}))
    out = tmp_path / "judged.jsonl"
    done = evalkit(*judge_args(*contestants, out, f"mock:answers={answers}", "--limit", "5"))
    assert done.returncode == 0, done.stderr
    records = log_records(out)
    header, samples, summary = records[0], [r for r in records if r["type"] == "sample"], records[-1]
    assert header["kind"] == "stage" and header["roles"]["judge"]["fingerprint"]
    assert len(samples) == 5 * 2 * 2  # questions x turns x orders
    one = samples[0]
    assert one["prompt"] and one["responses"][0]["text"] == "A" and one["score"]["extras"]["verdict"] == "A"
    assert {s["derivation"]["order"] for s in samples} == {"ab", "ba"}
    assert {s["derivation"]["template"] for s in samples} == {"pair-v2", "pair-v2-multi-turn"}
    overall = summary["results"]["overall"]
    assert overall["ties"]["value"] == 10 and overall["wins"]["value"] == overall["losses"]["value"] == 0
    assert overall["position_consistency"]["value"] == 0.0
    assert overall["first_position_preference"]["value"] == 1.0
    assert summary["results"]["details"]["rule"].startswith("fastchat")


def test_single_grading_with_reask(contestants: tuple[Path, Path], tmp_path: Path) -> None:
    answers = tmp_path / "grades.json"  # the first answer is unreadable; the re-ask gives a rating
    answers.write_text(json.dumps({"Answer with the rating only": "Rating: [[6]]", "Assistant": "Quite good."}))
    out = tmp_path / "single.jsonl"
    done = evalkit("judge", str(contestants[0]), "--protocol", "single", "--judge", f"mock:answers={answers}",
                   "-o", str(out), "--limit", "3", "--no-progress")
    assert done.returncode == 0, done.stderr
    samples = [r for r in log_records(out) if r["type"] == "sample"]
    assert len(samples) == 6 and all(s["score"]["extras"]["attempts"] == 2 for s in samples)
    overall = log_records(out)[-1]["results"]["overall"]
    assert overall["mean_score:vicuna-13b-hao-0515"]["value"] == 6.0


@pytest.mark.parametrize(("extra", "message"), [
    (["--protocol", "best-of"], "invalid choice"),
    (["--template", "pair-v9"], "unknown judge template 'pair-v9'"),
    (["--protocol", "single", "--template", "pair-v2"], "is a pairwise template"),
])
def test_bad_options_are_one_line_exit_2(contestants: tuple[Path, Path], tmp_path: Path, extra: list[str],
                                         message: str) -> None:
    done = evalkit(*judge_args(*contestants, tmp_path / "j.jsonl", "mock", *extra))
    assert done.returncode == 2 and message in done.stderr and done.stderr.count("\n") == 1, done.stderr
    assert not (tmp_path / "j.jsonl").exists()


def test_a_judge_without_generation_fails_before_loading(contestants: tuple[Path, Path], tmp_path: Path) -> None:
    done = evalkit(*judge_args(*contestants, tmp_path / "j.jsonl", "mock:capabilities=loglikelihood"))
    assert done.returncode == 2 and "needs generate" in done.stderr and done.stderr.count("\n") == 1
    prob = evalkit(*judge_args(*contestants, tmp_path / "j.jsonl", "mock:capabilities=generate", "--verdict", "prob"))
    assert prob.returncode == 2 and "needs choice_logprobs" in prob.stderr


def test_logs_of_different_tasks_are_refused(contestants: tuple[Path, Path], tmp_path: Path) -> None:
    assert main(["run", "--model", "mock", "--tasks", "alpaca_eval", "--limit", "2", "--output-dir",
                 str(tmp_path / "ae"), "--no-progress"]) == 0
    (other,) = (tmp_path / "ae").rglob("alpaca_eval-*.jsonl")
    done = evalkit(*judge_args(contestants[0], other, tmp_path / "j.jsonl"))
    assert done.returncode == 2 and "different tasks" in done.stderr and done.stderr.count("\n") == 1


def test_missing_samples_are_skipped_per_question_and_counted(contestants: tuple[Path, Path],
                                                              tmp_path: Path) -> None:
    short = contestant_log(tmp_path, "alpaca-13b", 3)
    out = tmp_path / "j.jsonl"
    done = evalkit(*judge_args(contestants[0], short, out, "mock", "--limit", "5"))
    assert done.returncode == 0, done.stderr
    skipped = [line for line in done.stderr.splitlines() if "skipped question" in line]
    assert len(skipped) == 2 and all(str(short) in line for line in skipped)
    records = log_records(out)
    assert records[0]["unjoined_keys"] == 2
    assert {r["source_id"] for r in records if r["type"] == "sample"} == {"81", "82", "83"}


def finished(out: Path) -> list[dict]:
    if not out.exists():
        return []
    lines = out.read_bytes().split(b"\n")[:-1]  # complete lines only
    return [r for r in map(json.loads, lines) if r["type"] == "sample"]


def test_sigkill_mid_judging_then_resume(contestants: tuple[Path, Path], tmp_path: Path) -> None:
    calls, out = tmp_path / "calls.txt", tmp_path / "judged.jsonl"
    judge = f"mock:delay=0.1,calls_file={calls}"
    env = {**os.environ, "EVALKIT_CACHE_DIR": str(tmp_path / "cache")}
    args = judge_args(*contestants, out, judge)
    kill_evalkit_when(args, lambda: len(finished(out)) >= 20, env, timeout=120, poll=0.01)
    before = finished(out)
    assert 20 <= len(before) < 80, "the kill must land mid-run"

    resumed = evalkit(*args, env=env)
    assert resumed.returncode == 0, resumed.stderr
    records = log_records(out)
    ids = collections.Counter(r["id"] for r in records if r["type"] == "sample")
    assert len(ids) == 80 and set(ids.values()) == {1}, "every judgment exactly once"
    sent = collections.Counter(calls.read_text().splitlines())
    for record in before:
        for request in requests_from_json(record):
            assert sent[request_digest(request)] == 1, f"{record['id']} was judged again"

    clean = tmp_path / "clean.jsonl"
    done = evalkit(*judge_args(*contestants, clean, "mock"), env={"EVALKIT_CACHE_DIR": str(tmp_path / "c2")})
    assert done.returncode == 0, done.stderr
    assert log_records(clean)[-1]["results"] == records[-1]["results"]


def test_dry_run_prints_calls_and_sends_nothing(contestants: tuple[Path, Path], tmp_path: Path) -> None:
    calls, out = tmp_path / "calls.txt", tmp_path / "j.jsonl"
    done = evalkit(*judge_args(*contestants, out, f"mock:calls_file={calls}", "--limit", "3", "--dry-run"))
    assert done.returncode == 0, done.stderr
    assert "12 judgments of 3 questions" in done.stdout and "prompt tokens" in done.stdout
    assert not out.exists() and not calls.exists()


def test_reference_protocol_draws_the_side_per_question_from_the_seed(tmp_path: Path) -> None:
    assert main(["run", "--model", "mock", "--tasks", "alpaca_eval", "--limit", "8", "--output-dir",
                 str(tmp_path / "ae"), "--no-progress"]) == 0
    (run,) = (tmp_path / "ae").rglob("alpaca_eval-*.jsonl")
    answers = tmp_path / "a.json"
    answers.write_text(json.dumps({"Assistant": "[[A]]"}))  # always the answer shown first
    reference = SHARED_DATA / "alpaca_eval/results/text_davinci_003/model_outputs.json.gz"
    sides = {}
    for seed in ("0", "1"):
        out = tmp_path / f"ref{seed}.jsonl"
        done = evalkit("judge", str(run), "--protocol", "reference", "--reference-outputs", str(reference),
                       "--judge", f"mock:answers={answers}", "--seed", seed, "-o", str(out), "--no-progress")
        assert done.returncode == 0, done.stderr
        records = log_records(out)
        samples = [r for r in records if r["type"] == "sample"]
        assert len(samples) == 8
        for s in samples:  # the model wins exactly when it was shown first
            side = s["derivation"]["reference_side"]
            assert s["score"]["extras"]["preference"] == (1.0 if side == "A" else 2.0)
        sides[seed] = [s["derivation"]["reference_side"] for s in samples]
        wins = sum(side == "B" for side in sides[seed])
        overall = records[-1]["results"]["overall"]
        assert overall["alpaca_eval_win_rate:mock"]["value"] == pytest.approx(100 * wins / 8)
        assert records[0]["task"]["reference"]["name"] == "text_davinci_003"
    assert sides["0"] != sides["1"] and set(sides["0"]) == {"A", "B"}


def test_score_rereads_verdicts_without_calling_the_judge(contestants: tuple[Path, Path], tmp_path: Path) -> None:
    answers, calls, out = tmp_path / "a.json", tmp_path / "calls.txt", tmp_path / "j.jsonl"
    answers.write_text(json.dumps({"Assistant": "A"}))
    judged = evalkit(*judge_args(*contestants, out, f"mock:answers={answers},calls_file={calls}", "--limit", "3"))
    assert judged.returncode == 0, judged.stderr
    before, n_calls = log_records(out), len(calls.read_text().splitlines())
    assert evalkit("score", str(out)).returncode == 0
    assert log_records(out)[-1]["results"] == before[-1]["results"]
    # stored outputs read again: the same judge text, now "[[B]]" in every order (still all ties)
    out.write_text(out.read_text().replace('"text":"A"', '"text":"[[B]]"'))
    assert evalkit("score", str(out)).returncode == 0
    after = log_records(out)
    samples = [r for r in after if r["type"] == "sample"]
    assert {s["score"]["extras"]["verdict"] for s in samples} == {"B"}
    assert after[-1]["results"]["overall"]["first_position_preference"]["value"] == 0.0
    assert after[-1]["rescored"] is True and len(calls.read_text().splitlines()) == n_calls
