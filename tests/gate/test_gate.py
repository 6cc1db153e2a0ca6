"""`evalkit gate` end to end on real pipeline logs: pass, fail, inconclusive, outputs, checks."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest
import xmlschema
from markdown_it import MarkdownIt
from scipy import stats
from statsmodels.stats.contingency_tables import mcnemar
from statsmodels.stats.multitest import multipletests

from tests.gate.conftest import GateRuns, gate, read_json, run_replay
from tests.helpers import evalkit, log_records
from tests.support.gate_replay import degraded_replay

XSD = Path(__file__).with_name("junit-10.xsd")


def test_identical_runs_pass_with_zero_difference(gate_runs: GateRuns, tmp_path: Path) -> None:
    code, out, err = gate("--baseline", str(gate_runs.baseline), "--candidate", str(gate_runs.baseline),
                          "--json", str(tmp_path / "r.json"))
    assert code == 0, err
    (result,) = read_json(tmp_path / "r.json")["results"]
    assert result["status"] == "pass" and result["change"] == 0.0 and result["ci"] == [0.0, 0.0]
    assert result["n"] == 228 and "gate: PASS (exit 0)" in out


def test_a_replayed_regression_fails_with_junit_and_markdown(gate_runs: GateRuns, tmp_path: Path) -> None:
    junit, md = tmp_path / "gate.xml", tmp_path / "gate.md"
    summary = tmp_path / "step_summary.md"
    summary.write_text("earlier step\n")
    code, out, err = gate("--baseline", str(gate_runs.baseline), "--candidate", str(gate_runs.candidate),
                          "--junit", str(junit), "--markdown", str(md), "--json", str(tmp_path / "r.json"),
                          env={"GITHUB_STEP_SUMMARY": str(summary)})
    assert code == 1, out + err
    (result,) = read_json(tmp_path / "r.json")["results"]
    assert result["status"] == "fail"
    assert result["change"] == pytest.approx(-len(gate_runs.changed) / 228)
    assert result["ci"][1] < 0 and result["mcnemar"]["b"] == len(gate_runs.changed) and result["mcnemar"]["c"] == 0
    # JUnit: valid against the committed schema, one failing testcase with the change and CI
    xmlschema.XMLSchema(str(XSD)).validate(str(junit))
    tree = xmlschema.XMLSchema(str(XSD)).to_dict(str(junit))
    (suite,) = tree["testsuite"]
    (case,) = suite["testcase"]
    assert case["@name"] == "mmlu_gen:acc" and suite["@failures"] == 1
    message = case["failure"][0]["@message"]
    assert f"change {result['change']:+.4f}" in message and f"[{result['ci'][0]:+.4f}, {result['ci'][1]:+.4f}]" in message
    # Markdown: a real table naming the task and metric, also appended to the step summary
    text = md.read_text()
    tokens = MarkdownIt("commonmark").enable("table").parse(text)
    cells = [t.content for t in tokens if t.type == "inline"]
    assert "table_open" in [t.type for t in tokens] and any("mmlu_gen:acc" in c for c in cells)
    assert "FAIL" in text and summary.read_text() == "earlier step\n" + text + "\n"


def test_paired_ci_mcnemar_and_holm_equal_scipy_and_statsmodels(gate_runs: GateRuns, tmp_path: Path) -> None:
    code, _, err = gate("--baseline", str(gate_runs.baseline), "--candidate", str(gate_runs.candidate),
                        "--by", "category", "--json", str(tmp_path / "r.json"))
    assert code == 1, err
    results = read_json(tmp_path / "r.json")["results"]
    base = _scores(gate_runs.baseline)
    cand = _scores(gate_runs.candidate)
    categories = {"overall": None, **{r["group"]: r["group"] for r in results if r["group"] != "overall"}}
    assert len(categories) == 5  # overall + MMLU's 4 categories
    for r in results:
        ids = sorted(base) if r["group"] == "overall" else _ids_in(gate_runs.baseline, r["group"].split(":")[1])
        a = np.array([base[i] for i in ids])
        b = np.array([cand[i] for i in ids])
        boot = stats.bootstrap((a, b), lambda x, y, axis=-1: (y - x).mean(axis=axis), paired=True,
                               vectorized=True, n_resamples=10_000, method="percentile",
                               random_state=np.random.default_rng(0))
        assert r["ci"] == pytest.approx([boot.confidence_interval.low, boot.confidence_interval.high], abs=1e-12)
        table = [[np.sum((a == 1) & (b == 1)), np.sum((a == 1) & (b == 0))],
                 [np.sum((a == 0) & (b == 1)), np.sum((a == 0) & (b == 0))]]
        assert r["mcnemar"]["p_value"] == pytest.approx(mcnemar(table, exact=True).pvalue, rel=1e-12)
    holm = multipletests([r["p_regression"] for r in results], method="holm")[1]
    assert [r["p_regression_holm"] for r in results] == pytest.approx(list(holm), rel=1e-12)


def _scores(log: Path) -> dict[str, float]:
    return {r["id"]: r["score"]["value"] for r in log_records(log) if r.get("type") == "sample"}


def _ids_in(log: Path, category: str) -> list[str]:
    from evalkit.tasks.mmlu.subjects import SUBJECT_CATEGORY

    return sorted(r["id"] for r in log_records(log)
                  if r.get("type") == "sample" and SUBJECT_CATEGORY[r["subtask"]] == category)


def test_few_samples_are_inconclusive_with_the_mde_and_the_policy_applies(gate_runs: GateRuns, tmp_path: Path) -> None:
    args = ["--baseline", str(gate_runs.baseline), "--candidate", str(gate_runs.candidate), "--min-samples", "500"]
    code, out, _ = gate(*args, "--json", str(tmp_path / "r.json"))
    (result,) = read_json(tmp_path / "r.json")["results"]
    assert code == 3 and result["status"] == "inconclusive"
    assert "minimum detectable effect at n = 228" in out and math.isfinite(result["mde"])
    assert gate(*args, "--inconclusive", "pass")[0] == 0
    assert gate(*args, "--inconclusive", "fail")[0] == 1
    # a tolerance wider than the drop: the CI lies within it, so it passes
    assert gate("--baseline", str(gate_runs.baseline), "--candidate", str(gate_runs.candidate),
                "--tolerance", "0.2")[0] == 0


def _edited(log: Path, out: Path, header_change: dict, drop: int = 0) -> Path:
    records = log_records(log)
    records[0]["task"] = {**records[0]["task"], **header_change}
    samples = [i for i, r in enumerate(records) if r.get("type") == "sample"]
    for index in sorted(samples[:drop], reverse=True):
        del records[index]
    out.write_text("".join(json.dumps(r) + "\n" for r in records))
    return out


def test_mismatched_runs_are_one_line_errors_with_exit_2(gate_runs: GateRuns, tmp_path: Path) -> None:
    base = str(gate_runs.baseline)
    version = _edited(gate_runs.candidate, tmp_path / "v2.jsonl", {"version": "2"})
    fewer = _edited(gate_runs.candidate, tmp_path / "fewer.jsonl", {}, drop=3)
    cases = [
        (str(version), "version differs (baseline '1', candidate '2')"),
        (str(fewer), "3 samples only in the baseline"),
    ]
    for candidate, expected in cases:
        code, _, err = gate("--baseline", base, "--candidate", candidate)
        assert code == 2 and expected in err and len(err.strip().splitlines()) == 1, err
    code, _, err = gate("--baseline", "no-such-baseline", "--candidate", base, "--baselines-dir", str(tmp_path))
    assert code == 2 and "no-such-baseline" in err and len(err.strip().splitlines()) == 1
    # allowed by flags: compared on what they share, the difference reported
    assert gate("--baseline", base, "--candidate", str(version), "--allow-task-mismatch")[0] == 1
    code, out, _ = gate("--baseline", base, "--candidate", str(fewer), "--allow-sample-mismatch")
    assert code == 1 and "compared 225 shared samples; 3 only in the baseline" in out


def test_errored_samples_are_a_mismatch(gate_runs: GateRuns, tmp_path: Path) -> None:
    replay = tmp_path / "partial.jsonl"
    lines = (gate_runs.root / "candidate.jsonl").read_text().splitlines()
    replay.write_text("\n".join(lines[5:]) + "\n")  # 5 samples without output: errors
    candidate = run_replay(replay, tmp_path / "run", expect=1)
    code, _, err = gate("--baseline", str(gate_runs.baseline), "--candidate", str(candidate))
    assert code == 2 and "5 samples with errors in the candidate" in err


def test_compact_baseline_has_no_benchmark_text_and_is_found_by_name(gate_runs: GateRuns, tmp_path: Path) -> None:
    store = tmp_path / "baselines"
    result = evalkit("baseline", "save", str(gate_runs.baseline), "--name", "main", "--compact",
                     "--baselines-dir", str(store))
    assert result.returncode == 0, result.stderr
    manifest = read_json(store / "main" / "manifest.json")
    assert manifest["form"] == "compact" and len(manifest["logs"]) == 1
    saved = store / "main" / manifest["logs"][0]["path"]
    text = saved.read_text()
    records = [r for r in log_records(gate_runs.baseline) if r.get("type") == "sample"]
    for record in records:
        assert record["prompt"][-60:] not in text and record["responses"][0]["text"] not in text
        assert all(choice not in text for choice in record["choices"] if len(choice) >= 12)
    for args in ([], ["--tolerance", "0.2"]):
        full = gate("--baseline", str(gate_runs.baseline), "--candidate", str(gate_runs.candidate), *args)
        by_name = gate("--baseline", "main", "--baselines-dir", str(store), "--candidate",
                       str(gate_runs.candidate), *args)
        assert by_name[0] == full[0] and by_name[1].split("\n\n")[0] == full[1].split("\n\n")[0]
    saved.write_text(text.replace('"value":1.0', '"value":0.0', 1))
    code, _, err = gate("--baseline", "main", "--baselines-dir", str(store), "--candidate", str(gate_runs.candidate))
    assert code == 2 and "changed since the baseline was saved" in err


def test_noise_floor_widens_the_tolerance(gate_runs: GateRuns, tmp_path: Path) -> None:
    noise = tmp_path / "noise.json"
    result = evalkit("gate", "calibrate", str(gate_runs.baseline), str(gate_runs.candidate), "-o", str(noise))
    assert result.returncode == 0, result.stderr
    (floor,) = read_json(noise)["floors"]
    assert floor["spread"] == pytest.approx(len(gate_runs.changed) / 228)
    code, _, _ = gate("--baseline", str(gate_runs.baseline), "--candidate", str(gate_runs.candidate),
                      "--noise-floor", str(noise), "--json", str(tmp_path / "r.json"))
    (r,) = read_json(tmp_path / "r.json")["results"]
    assert r["tolerance"] == pytest.approx(floor["spread"]) and r["noise_floor"] == floor["spread"]
    assert code != 1  # a drop no larger than the run-to-run spread is not a regression


def test_pytest_helper(gate_runs: GateRuns) -> None:
    from evalkit.gate.testing import assert_no_regression

    assert assert_no_regression(gate_runs.baseline, gate_runs.baseline).status == "pass"
    with pytest.raises(AssertionError, match="mmlu_gen:acc"):
        assert_no_regression(gate_runs.baseline, gate_runs.candidate)
    assert_no_regression(gate_runs.baseline, gate_runs.candidate, tolerance=0.2)


def test_config_file_and_bad_settings(gate_runs: GateRuns, tmp_path: Path) -> None:
    config = tmp_path / "evalkit-gate.toml"
    config.write_text('[gate]\ninconclusive = "pass"\nmin_samples = 1000\n\n[[gate.metric]]\ntask = "mmlu*"\nmetric = "acc"\n')
    assert gate("--baseline", str(gate_runs.baseline), "--candidate", str(gate_runs.candidate), "--config", str(config))[0] == 0
    config.write_text("[gate]\ntolerence = 0.1\n")
    code, _, err = gate("--baseline", str(gate_runs.baseline), "--candidate", str(gate_runs.candidate), "--config", str(config))
    assert code == 2 and "tolerence" in err and str(config) in err
    code, _, err = gate("--baseline", str(gate_runs.baseline), "--candidate", str(gate_runs.candidate), "--metric", "rouge")
    assert code == 2 and "'rouge'" in err


def test_degraded_replay_changes_only_correct_answers(gate_runs: GateRuns, tmp_path: Path) -> None:
    out = tmp_path / "again.jsonl"
    changed = degraded_replay(gate_runs.baseline, out, 0.1, seed=2)
    assert changed == gate_runs.changed
    correct = {i for i, v in _scores(gate_runs.baseline).items() if v == 1.0}
    assert set(changed) <= correct and len(changed) == round(0.1 * len(correct))
    shutil.copy(out, tmp_path / "copy.jsonl")


def test_calibrate_reruns_the_baseline_configuration(gate_runs: GateRuns, tmp_path: Path) -> None:
    mock_log = next((gate_runs.root / "mock").rglob("mmlu_gen-*.jsonl"))
    noise = tmp_path / "noise.json"
    result = evalkit("gate", "calibrate", "--rerun", str(mock_log), "--seeds", "3,4",
                     "--output-dir", str(tmp_path / "runs"), "-o", str(noise))
    assert result.returncode == 0, result.stderr
    (floor,) = read_json(noise)["floors"]
    runs = sorted((tmp_path / "runs").rglob("mmlu_gen-*.jsonl"))
    assert [p.parts[-3] for p in runs] == ["seed-3", "seed-4"]
    # greedy letter answers from a deterministic backend: no run-to-run spread
    assert floor["n"] == 228 and floor["spread"] == 0.0
    assert evalkit("gate", "calibrate", "-o", str(noise)).returncode == 2
