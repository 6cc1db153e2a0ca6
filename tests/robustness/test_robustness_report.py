"""The robustness report on mock runs: its paired numbers against an independent computation
from the two logs' per-sample records (numpy, statsmodels, scipy), contrast sensitivity with
a model that ignores the perturbation, circular evaluation, counterfactual swaps, prompt-format
spread, and the one-line errors that come before any model loads."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from scipy import stats as scipy_stats
from statsmodels.stats.contingency_tables import mcnemar

from evalkit.backends.mock import MockBackend
from evalkit.cli import main
from evalkit.types import LoglikelihoodRequest, Response
from tests.robustness.support import (
    original_option,
    robustness_json,
    run_cli,
    run_tasks,
    samples_of,
)

SUBJECTS = ["-T", "subjects=anatomy|astronomy|virology"]


@pytest.fixture(scope="module")
def mock_runs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("runs")
    tasks = "mmlu,mmlu@typos(rate=0.1,seed=1),mmlu@option_shuffle,mmlu@circular"
    assert main(["run", "--model", "mock", "--tasks", tasks, "--output-dir", str(out), "--no-progress",
                 "--limit", "20", *SUBJECTS]) == 0
    return out


def _independent(clean: list[dict[str, Any]], perturbed: list[dict[str, Any]]) -> dict[str, Any]:
    by_id = {r["id"]: r for r in clean}
    pairs = [(by_id[p["source_id"]], p) for p in perturbed]
    a = np.array([c["score"]["value"] for c, _ in pairs])
    b = np.array([p["score"]["value"] for _, p in pairs])
    table = [[int(((a == 1) & (b == 1)).sum()), int(((a == 1) & (b == 0)).sum())],
             [int(((a == 0) & (b == 1)).sum()), int(((a == 0) & (b == 0)).sum())]]
    boot = scipy_stats.bootstrap((a, b), lambda x, y, axis=-1: np.mean(y - x, axis=axis), paired=True,
                                 vectorized=True, n_resamples=4000, method="percentile", random_state=7)
    same = sum(original_option(c) == original_option(p) for c, p in pairs)
    return {"n": len(pairs), "clean": a.mean(), "perturbed": b.mean(), "delta": (b - a).mean(),
            "mcnemar_p": mcnemar(table, exact=True).pvalue, "invariance": same / len(pairs),
            "ci": (boot.confidence_interval.low, boot.confidence_interval.high)}


@pytest.mark.parametrize("task", ["mmlu@typos(rate=0.1,seed=1)", "mmlu@option_shuffle"])
def test_paired_numbers_match_an_independent_computation(
        capsys: pytest.CaptureFixture[str], mock_runs: Path, task: str) -> None:
    row = robustness_json(capsys, mock_runs)[task]
    want = _independent(samples_of(mock_runs, "mmlu"), samples_of(mock_runs, task))
    assert want["n"] == 60 and row["delta"]["n"] == 60
    assert row["clean"]["value"] == pytest.approx(want["clean"])
    assert row["perturbed"]["value"] == pytest.approx(want["perturbed"])
    assert row["delta"]["value"] == pytest.approx(want["delta"])
    assert row["mcnemar_p"]["value"] == pytest.approx(want["mcnemar_p"])
    assert row["invariance"]["value"] == pytest.approx(want["invariance"])
    # another bootstrap (scipy's, another seed): the same interval up to resampling noise
    assert row["delta"]["ci"] == pytest.approx(want["ci"], abs=0.04)
    assert row["mcnemar_p_holm"] >= row["mcnemar_p"]["value"]


def test_perturbed_samples_pair_and_record_the_transformation(mock_runs: Path) -> None:
    clean = {r["id"]: r for r in samples_of(mock_runs, "mmlu")}
    typos = samples_of(mock_runs, "mmlu@typos(rate=0.1,seed=1)")
    assert {r["source_id"] for r in typos} == set(clean)
    for r in typos:
        assert r["id"] == r["source_id"] + "@typos"
        d = r["derivation"]
        assert d["perturbation"] == "typos" and d["params"] == {"seed": 1, "rate": 0.1, "choices": False}
        assert d["original"]["input"] == clean[r["source_id"]]["input"]
        assert d["changed"] == (r["input"] != clean[r["source_id"]]["input"])
    assert sum(r["derivation"]["changed"] for r in typos) > 50


def test_the_stage_log_is_shown_by_evalkit_show(capsys: pytest.CaptureFixture[str], mock_runs: Path) -> None:
    robustness_json(capsys, mock_runs)
    stage_logs = sorted((mock_runs / "robustness" / "mock_mock").glob("*.jsonl"))
    assert len(stage_logs) == 3
    shown = json.loads(run_cli(capsys, "show", str(stage_logs[0]), "--json"))
    (entry,) = shown["logs"]
    assert {"clean", "perturbed", "delta", "mcnemar_p", "invariance"} <= set(entry["results"]["overall"])


def test_circular_accuracy(mock_runs: Path) -> None:
    from evalkit.log.io import read_log

    (log_path,) = [p for p in (mock_runs / "mock_mock").glob("mmlu@circular-*.jsonl")]
    overall = read_log(log_path).summary.results.overall  # type: ignore[union-attr]
    records = samples_of(mock_runs, "mmlu@circular")
    by_q: dict[str, list[dict[str, Any]]] = {}
    for r in records:
        by_q.setdefault(r["source_id"], []).append(r)
    assert len(by_q) == 60 and all(len(v) == 4 for v in by_q.values())
    circular = sum(all(r["score"]["value"] == 1 for r in v) for v in by_q.values()) / 60
    plain = np.mean([r["score"]["value"] for r in records if r["id"].endswith("@rot0")])
    assert overall["circular_acc"].value == pytest.approx(circular)
    assert overall["acc_rot0"].value == pytest.approx(plain)
    assert overall["circular_acc"].value <= overall["acc_rot0"].value
    picks = [overall[f"pick_{x}"].value for x in "ABCD"]
    counts = np.bincount([r["score"]["extracted"] for r in records], minlength=4) / len(records)
    assert picks == pytest.approx(list(counts)) and sum(picks) == pytest.approx(1)
    clean = samples_of(mock_runs, "mmlu")
    rot0 = {r["source_id"]: r for r in records if r["id"].endswith("@rot0")}
    assert all(rot0[c["id"]]["score"]["value"] == c["score"]["value"] for c in clean)  # rotation 0 = clean


def _ignores_the_input(self: MockBackend, requests: list[LoglikelihoodRequest]) -> Any:
    """A model that ignores its prompt: every question gets the same letter."""
    async def answer() -> list[Response]:
        return [Response(logprob=-1.0 - 0.1 * (ord(r.continuation.strip()[0]) % 4), is_greedy=False)
                for r in requests]
    return answer()


def test_contrast_sensitivity(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                              monkeypatch: pytest.MonkeyPatch) -> None:
    tasks = "mmlu,mmlu@none_of_the_above"
    run_tasks(capsys, tmp_path / "real", "mock", tasks, "--limit", "10", *SUBJECTS)
    row = robustness_json(capsys, tmp_path / "real")["mmlu@none_of_the_above"]
    clean = {r["id"]: r for r in samples_of(tmp_path / "real", "mmlu")}
    contrast = samples_of(tmp_path / "real", "mmlu@none_of_the_above")
    changed = sum(clean[r["source_id"]]["score"]["extracted"] != r["score"]["extracted"] for r in contrast)
    assert row["sensitivity"]["value"] == pytest.approx(changed / 30) and changed > 0
    assert "invariance" not in row

    monkeypatch.setattr(MockBackend, "loglikelihood", _ignores_the_input)
    run_tasks(capsys, tmp_path / "blind", "mock", tasks, "--limit", "10", *SUBJECTS, "--no-cache")
    blind = robustness_json(capsys, tmp_path / "blind")["mmlu@none_of_the_above"]
    assert blind["sensitivity"]["value"] == 0.0 and blind["sensitivity"]["n"] == 30


def test_counterfactual_gender_swap(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    run_tasks(capsys, tmp_path, "mock", "mmlu,mmlu@gender_swap", "--limit", "25",
              "-T", "subjects=human_sexuality|sociology")
    row = robustness_json(capsys, tmp_path)["mmlu@gender_swap"]
    clean = {r["id"]: r for r in samples_of(tmp_path, "mmlu")}
    swapped = [r for r in samples_of(tmp_path, "mmlu@gender_swap") if r["derivation"]["changed"]]
    assert row["changed_n"]["value"] == len(swapped) > 0
    pairs = [(clean[r["source_id"]], r) for r in swapped]
    assert row["delta_changed"]["value"] == pytest.approx(
        np.mean([p["score"]["value"] - c["score"]["value"] for c, p in pairs]))
    assert row["delta_changed"]["n"] == len(swapped) and row["delta_changed"]["ci"][0] is not None
    moved = sum(c["score"]["extracted"] != p["score"]["extracted"] for c, p in pairs)
    assert row["prediction_changed"]["value"] == pytest.approx(moved / len(swapped))


FORMATS = ("lm_eval", "helm", "opencompass", "brackets", "continuation")


def test_format_spread(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    tasks = ",".join(f"mmlu@format(name={f})" for f in FORMATS)
    for model in ("mock:seed=1", "mock:seed=2"):
        run_tasks(capsys, tmp_path, model, tasks, "--limit", "10", *SUBJECTS)
    (table,) = json.loads(run_cli(capsys, "format-spread", str(tmp_path), "--json"))
    assert sorted(table["formats"]) == sorted(FORMATS)
    values = {m: [v["value"] for v in table["values"][m].values()] for m in table["values"]}
    assert set(values) == {"mock:seed=1", "mock:seed=2"}
    for model, got in values.items():
        spread = table["spread"][model]
        assert spread["min"] == min(got) and spread["max"] == max(got)
        assert spread["std"] == pytest.approx(np.std(got, ddof=1))
    diffs = [table["values"]["mock:seed=1"][f]["value"] - table["values"]["mock:seed=2"][f]["value"]
             for f in table["formats"]]
    flips_expected = sum(1 for i in range(5) for j in range(i + 1, 5) if diffs[i] * diffs[j] < 0)
    assert len(table["order_flips"]) == flips_expected
    text = run_cli(capsys, "format-spread", str(tmp_path))
    assert "under 5 prompt formats" in text and "order flips" in text
