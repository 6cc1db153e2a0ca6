"""End to end through the CLI: the full MMLU and C-Eval sets, results that agree with an
independent recomputation from the per-sample records, re-scoring, and the cache."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest

from evalkit.log import SCHEMA_VERSION
from tests.helpers import evalkit, log_records, show_json


@pytest.fixture(scope="module")
def full_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("runs")
    cache = tmp_path_factory.mktemp("cache")
    result = evalkit("run", "--model", "mock", "--tasks", "mmlu,ceval", "--output-dir", str(out),
                     "--no-progress", env={"EVALKIT_CACHE_DIR": str(cache)})
    assert result.returncode == 0, result.stderr
    return out


def test_full_mmlu_and_ceval_are_scored(full_run: Path) -> None:
    logs = {e["task"]: e for e in show_json(full_run)["logs"]}
    assert logs["mmlu"]["n_samples"] == 14042 and logs["mmlu"]["complete"]
    assert logs["ceval"]["n_samples"] == 1346 and logs["ceval"]["complete"]
    assert len(logs["mmlu"]["results"]["subtasks"]) == 57
    assert len(logs["ceval"]["results"]["subtasks"]) == 52
    assert set(logs["mmlu"]["results"]["categories"]) == {"stem", "humanities", "social_sciences", "other"}
    assert set(logs["ceval"]["results"]["categories"]) == {"STEM", "Social Science", "Humanities", "Other"}
    for entry in logs.values():
        overall = entry["results"]["overall"]
        for metric in ("acc_micro", "acc_macro", "ece_equal_width_15", "ece_equal_mass_10",
                       "brier_top_label", "brier_multiclass"):
            low, high = overall[metric]["ci"]
            assert overall[metric]["n"] == entry["n_samples"]
            assert low <= overall[metric]["value"] <= high, metric
        for subject in entry["results"]["subtasks"].values():
            assert subject["acc"]["n"] > 0 and len(subject["acc"]["ci"]) == 2


def test_aggregates_match_recomputation_from_samples(full_run: Path) -> None:
    log_path = next(full_run.rglob("mmlu-*.jsonl"))
    records = log_records(log_path)
    samples = [r for r in records if r["type"] == "sample"]
    summary = records[-1]["results"]
    correct = np.array([r["score"]["value"] for r in samples])
    assert summary["overall"]["acc_micro"]["value"] == pytest.approx(correct.mean())
    by_subject: dict[str, list[float]] = defaultdict(list)
    for r in samples:
        by_subject[r["subtask"]].append(r["score"]["value"])
        probs = r["score"]["extras"]["probs"]
        lls = [resp["logprob"] for resp in r["responses"]]
        assert r["score"]["extracted"] == int(np.argmax(lls))
        assert probs == pytest.approx(np.exp(lls) / np.exp(lls).sum(), abs=1e-7)
    macro = np.mean([np.mean(v) for v in by_subject.values()])
    assert summary["overall"]["acc_macro"]["value"] == pytest.approx(macro)
    for subject, values in by_subject.items():
        assert summary["subtasks"][subject]["acc"]["value"] == pytest.approx(np.mean(values))
        assert summary["subtasks"][subject]["acc"]["n"] == len(values)


def test_log_keeps_prompt_request_response_and_score(full_run: Path) -> None:
    records = log_records(next(full_run.rglob("ceval-*.jsonl")))
    header, sample = records[0], records[1]
    assert header["schema"] == "evalkit.runlog" and header["schema_version"] == SCHEMA_VERSION
    assert header["task"]["prompt_format"] == "lm-eval ceval-valid (letters)"
    assert header["model_fingerprint"]["backend"] == "mock" and "numpy" in header["packages"]
    assert sample["prompt"].startswith("以下是中国关于") and sample["prompt"].endswith("答案：")
    assert [r["continuation"] for r in sample["requests"]] == [" A", " B", " C", " D"]
    assert all("logprob" in r for r in sample["responses"])
    assert sample["error"] is None and sample["score"]["value"] in (0.0, 1.0)


def test_rerun_is_served_from_cache_and_rescore_reproduces(tmp_path: Path) -> None:
    args = ["run", "--model", "mock", "--tasks", "mmlu_anatomy", "--output-dir", str(tmp_path / "a"), "--no-progress"]
    assert evalkit(*args).returncode == 0
    again = evalkit(*args[:-3], "--output-dir", str(tmp_path / "b"), "--no-progress")
    assert again.returncode == 0
    summary = log_records(next((tmp_path / "b").rglob("*.jsonl")))[-1]
    assert summary["engine"]["sent"] == 0 and summary["engine"]["cache_hits"] == 135 * 4
    before = show_json(tmp_path / "a")["logs"][0]["results"]["overall"]
    assert evalkit("score", str(tmp_path / "a")).returncode == 0
    after = show_json(tmp_path / "a")["logs"][0]["results"]["overall"]
    assert after["acc"]["value"] == before["acc"]["value"]
    assert after["ece_equal_width_15"]["value"] == pytest.approx(before["ece_equal_width_15"]["value"])


def test_rescore_uses_stored_responses_not_the_model(tmp_path: Path) -> None:
    import json

    assert evalkit("run", "--model", "mock", "--tasks", "mmlu_anatomy", "--output-dir", str(tmp_path),
                   "--no-progress").returncode == 0
    log_path = next(tmp_path.rglob("*.jsonl"))
    records = log_records(log_path)
    # make every stored response favour the gold answer: a re-score must then be perfect
    for r in records:
        if r["type"] == "sample":
            for i, resp in enumerate(r["responses"]):
                resp["logprob"] = 0.0 if i == r["target"] else -5.0
    log_path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
    assert evalkit("score", str(log_path)).returncode == 0
    assert show_json(log_path)["logs"][0]["results"]["overall"]["acc"]["value"] == 1.0


def test_limit_is_per_subject_for_mmlu(tmp_path: Path) -> None:
    assert evalkit("run", "--model", "mock", "--tasks", "mmlu,race_high", "--limit", "3", "--output-dir",
                   str(tmp_path), "--no-progress").returncode == 2  # no RACE data here: clean error
    result = evalkit("run", "--model", "mock", "--tasks", "mmlu", "--limit", "3", "--output-dir", str(tmp_path),
                     "--no-progress")
    assert result.returncode == 0, result.stderr
    entry = show_json(tmp_path)["logs"][0]
    assert entry["n_samples"] == 57 * 3
    assert all(s["acc"]["n"] == 3 for s in entry["results"]["subtasks"].values())
