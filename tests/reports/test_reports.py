"""Leaderboards from run logs, checked against an independent recomputation from the records."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from evalkit.cli import main
from evalkit.log import SCHEMA_VERSION
from evalkit.reports.frames import load_runs
from evalkit.reports.leaderboard import build_leaderboard
from evalkit.reports.synthetic import write_synthetic_log

Z = 1.959963984540054


def make_mock_logs(out: Path, data_dir: Path, seeds: tuple[int, ...] = (1, 2, 3)) -> Path:
    for seed in seeds:
        rc = main(["run", "--model", f"mock:seed={seed}", "--tasks", "mmlu,ceval", "--limit", "2",
                   "--data-dir", str(data_dir), "--output-dir", str(out), "--no-progress", "--no-cache"])
        assert rc == 0
    return out


@pytest.fixture(scope="module")
def mock_runs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tests.conftest import SHARED_DATA

    return make_mock_logs(tmp_path_factory.mktemp("runs"), SHARED_DATA)


# --- an independent recomputation: plain json + python, no evalkit code -------------------

def latest_samples(path: Path) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    lines = path.read_text(encoding="utf-8").splitlines()
    header = json.loads(lines[0])
    samples: dict[str, dict[str, Any]] = {}
    for line in lines[1:]:
        record = json.loads(line)
        if record["type"] == "sample":
            samples[record["id"]] = record
    return header, samples


def recompute(runs_dir: Path) -> dict[tuple[str, str], dict[str, Any]]:
    """(model, task) -> acc, Wilson CI, n, the per-sample scores and chance level."""
    out = {}
    for path in sorted(runs_dir.rglob("*.jsonl")):
        header, samples = latest_samples(path)
        scores = {sid: r["score"]["value"] for sid, r in samples.items() if not r["error"] and r["score"]}
        n = len(scores)
        p = sum(scores.values()) / n
        centre = (p + Z * Z / (2 * n)) / (1 + Z * Z / n)
        half = Z * math.sqrt(p * (1 - p) / n + Z * Z / (4 * n * n)) / (1 + Z * Z / n)
        chance = sum(1 / len(r["choices"]) for r in samples.values()) / len(samples)
        out[(header["model"]["spec"], header["task"]["name"])] = {
            "acc": p, "ci": (centre - half, centre + half), "n": n, "scores": scores, "chance": chance}
    return out


def win_rates(ref: dict[tuple[str, str], dict[str, Any]]) -> dict[str, float]:
    models = sorted({m for m, _ in ref})
    tasks = sorted({t for _, t in ref})
    rates: dict[str, list[float]] = {m: [] for m in models}
    for t in tasks:
        for m in models:
            others = [o for o in models if o != m]
            wins = sum(1.0 if ref[(m, t)]["acc"] > ref[(o, t)]["acc"] else
                       0.5 if ref[(m, t)]["acc"] == ref[(o, t)]["acc"] else 0.0 for o in others)
            rates[m].append(wins / len(others))
    return {m: sum(v) / len(v) for m, v in rates.items()}


def leaderboard_json(runs_dir: Path, capsys: pytest.CaptureFixture[str], *extra: str) -> dict[str, Any]:
    assert main(["leaderboard", str(runs_dir), "--format", "json", *extra]) == 0
    return json.loads(capsys.readouterr().out)


def test_leaderboard_json_matches_independent_recomputation(mock_runs: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ref = recompute(mock_runs)
    board = leaderboard_json(mock_runs, capsys)
    assert board["aggregation"]["method"] == "mean"
    assert {m["model"] for m in board["models"]} == {"mock:seed=1", "mock:seed=2", "mock:seed=3"}
    for row in board["models"]:
        for task, cell in row["tasks"].items():
            expected = ref[(row["model"], task)]
            assert cell["value"] == pytest.approx(expected["acc"], abs=1e-12)
            assert cell["n"] == expected["n"]
            assert cell["ci"] == pytest.approx(list(expected["ci"]), abs=1e-9)
        macro = np.mean([ref[(row["model"], t)]["acc"] for t in ("ceval", "mmlu")])
        assert row["aggregate"]["value"] == pytest.approx(macro, abs=1e-12)
        lo, hi = row["aggregate"]["ci"]
        assert lo <= row["aggregate"]["value"] <= hi
    values = [m["aggregate"]["value"] for m in board["models"]]
    assert values == sorted(values, reverse=True)
    assert [m["rank"] for m in board["models"]] == [1, 2, 3]


def test_win_rate_and_normalised_aggregates_match(mock_runs: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ref = recompute(mock_runs)
    expected_wr = win_rates(ref)
    board = leaderboard_json(mock_runs, capsys, "--method", "win_rate")
    assert "win rate" in board["aggregation"]["description"]
    for row in board["models"]:
        assert row["aggregate"]["value"] == pytest.approx(expected_wr[row["model"]], abs=1e-12)
    board = leaderboard_json(mock_runs, capsys, "--method", "normalized")
    for row in board["models"]:
        norm = [(ref[(row["model"], t)]["acc"] - ref[(row["model"], t)]["chance"]) / (1 - ref[(row["model"], t)]["chance"])
                for t in ("ceval", "mmlu")]
        assert row["aggregate"]["value"] == pytest.approx(np.mean(norm), abs=1e-12)


def test_adjacent_paired_difference_matches_recomputation(mock_runs: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ref = recompute(mock_runs)
    board = leaderboard_json(mock_runs, capsys)
    rows = board["models"]
    for upper, lower in zip(rows[:-1], rows[1:], strict=True):
        diffs, halfs = [], []
        for t in ("ceval", "mmlu"):
            a, b = ref[(upper["model"], t)]["scores"], ref[(lower["model"], t)]["scores"]
            d = np.array([a[s] - b[s] for s in sorted(set(a) & set(b))])
            diffs.append(d.mean())
            halfs.append(d.var(ddof=1) / d.size)
        vs_next = upper["vs_next"]
        assert vs_next["difference"] == pytest.approx(np.mean(diffs), abs=1e-12)
        # the bootstrap CI agrees with the normal approximation of the same paired design
        normal_half = Z * math.sqrt(sum(halfs)) / 2
        lo, hi = vs_next["ci"]
        assert (hi - lo) / 2 == pytest.approx(normal_half, rel=0.2)
        assert upper["not_significant_vs_next"] == (lo <= 0 <= hi)
    assert rows[-1]["vs_next"] is None


def synthetic_runs(tmp: Path, skills: dict[str, float], n: int = 3000) -> Path:
    for model, skill in skills.items():
        for task in ("alpha", "beta"):
            write_synthetic_log(tmp / model / f"{task}.jsonl", model, task, skill, n)
    return tmp


def test_rank_intervals_and_significance(tmp_path: Path) -> None:
    runs = synthetic_runs(tmp_path, {"strong": 0.9, "mid-a": 0.5, "weak": 0.1})
    for task in ("alpha", "beta"):  # mid-b: mid-a with 5 answers turned wrong and 5 turned right
        text = (runs / "mid-a" / f"{task}.jsonl").read_text().replace('"spec":"mid-a"', '"spec":"mid-b"')
        right, wrong = '"score":{"value":1.0', '"score":{"value":0.0'
        text = text.replace(right, "FLIP", 5).replace(wrong, right, 5).replace("FLIP", wrong)
        (runs / "mid-b").mkdir(exist_ok=True)
        (runs / "mid-b" / f"{task}.jsonl").write_text(text)
    board = build_leaderboard(load_runs(runs, index_dir=tmp_path / "index"), "mean", resamples=300)
    by_model = {r.model: r for r in board.rows}
    assert board.rows[0].model == "strong" and by_model["strong"].rank_interval == (1, 1)
    assert board.rows[-1].model == "weak" and by_model["weak"].rank_interval == (4, 4)
    assert by_model["mid-a"].rank_interval == (2, 3) == by_model["mid-b"].rank_interval
    assert board.rows[0].vs_next is not None and board.rows[0].vs_next.significant
    middle = board.rows[1]
    assert middle.model == "mid-a" and middle.tied_with_next  # equal means: name order
    assert middle.vs_next is not None and middle.vs_next.difference == 0.0


def test_sort_by_task_column(tmp_path: Path) -> None:
    runs = synthetic_runs(tmp_path, {"a": 0.2, "b": 0.8}, n=200)
    board = build_leaderboard(load_runs(runs), "mean", sort_by="alpha", resamples=100)
    alpha = [r.cells["alpha"].value for r in board.rows]
    assert alpha == sorted(alpha, reverse=True)
    with pytest.raises(ValueError, match="cannot sort by"):
        build_leaderboard(load_runs(runs), "mean", sort_by="nope")


def test_runs_without_summary_are_recomputed_and_marked(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    runs = synthetic_runs(tmp_path, {"a": 0.3, "b": 0.7}, n=50)
    board = leaderboard_json(runs, capsys)
    for row in board["models"]:
        for task, cell in row["tasks"].items():
            _, samples = latest_samples(runs / row["model"] / f"{task}.jsonl")
            assert cell["source"] == "samples"
            assert cell["value"] == pytest.approx(np.mean([r["score"]["value"] for r in samples.values()]))
    assert main(["leaderboard", str(runs)]) == 0
    assert "* recomputed from sample records" in capsys.readouterr().out


@pytest.mark.parametrize("fmt", ["table", "md", "csv", "html"])
def test_every_format_renders(mock_runs: Path, fmt: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["leaderboard", str(mock_runs), "--format", fmt, "--resamples", "50"]) == 0
    out = capsys.readouterr().out
    for model in ("mock:seed=1", "mock:seed=2", "mock:seed=3"):
        assert model in out
    if fmt == "html":
        assert out.count("data:image/png;base64,") >= 1 + 3  # per-subject bars + a reliability diagram per run
        assert "<table>" in out and "macro mean" in out
    if fmt == "csv":
        assert out.splitlines()[0].startswith("rank,rank_low,rank_high,model,method,aggregate")
        assert len(out.splitlines()) == 4


def test_older_run_of_same_model_and_task_is_listed_not_used(tmp_path: Path) -> None:
    write_synthetic_log(tmp_path / "old.jsonl", "m", "t", 0.5, 20)
    newer = (tmp_path / "old.jsonl").read_text().replace("2026-01-01T00:00:00", "2026-02-01T00:00:00")
    (tmp_path / "new.jsonl").write_text(newer)
    runset = load_runs(tmp_path)
    assert [r.path for r in runset.runs] == [str(tmp_path / "new.jsonl")]
    assert [s.path for s in runset.superseded] == [str(tmp_path / "old.jsonl")]


def test_index_is_reused_and_refreshed_when_a_log_changes(tmp_path: Path) -> None:
    from evalkit.reports import frames

    log = tmp_path / "runs" / "m.jsonl"
    write_synthetic_log(log, "m", "t", 0.5, 30)
    index = tmp_path / "index"
    before = frames.READS["log_parse"]
    first = load_runs(log.parent, index_dir=index).runs[0]
    second = load_runs(log.parent, index_dir=index).runs[0]
    assert frames.READS["log_parse"] == before + 1
    assert np.array_equal(first.values, second.values) and list(first.ids) == list(second.ids)
    write_synthetic_log(log, "m", "t", 0.9, 40)
    assert load_runs(log.parent, index_dir=index).runs[0].ids.size == 40
    assert frames.READS["log_parse"] == before + 2


def iter_bad_logs(good: str) -> Iterator[tuple[str, str, str]]:
    """(name, content, expected words in the reason) for each kind of bad log."""
    lines = good.splitlines(keepends=True)
    yield "corrupt.jsonl", lines[0] + '{"type": "sample", "id": ' + "\n" + "".join(lines[2:]), "not a JSON record"
    yield "version.jsonl", lines[0].replace(f'"schema_version":{SCHEMA_VERSION}', '"schema_version":99') + "".join(lines[1:]), \
        "schema_version 99 is not supported"
    yield "no_model.jsonl", lines[0].replace('"model":{', '"not_model":{') + "".join(lines[1:]), "lacks the field 'model'"
    yield "no_score.jsonl", lines[0] + lines[1].replace('"score":', '"not_score":') + "".join(lines[2:]), \
        "neither a 'score' nor an 'error'"
    yield "no_value.jsonl", lines[0] + lines[1].replace('"score":{"value":', '"score":{"v":') + "".join(lines[2:]), \
        "lacks a numeric 'value'"
    yield "truncated.jsonl", good[:-40], "truncated"
    yield "empty.jsonl", "", "empty"
    yield "not_a_log.jsonl", '{"hello": "world"}\n', "not an evalkit run log"


def test_bad_logs_are_skipped_with_reasons(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_synthetic_log(tmp_path / "good.jsonl", "good-model", "t", 0.5, 10)
    good = (tmp_path / "good.jsonl").read_text()
    expected = {}
    for name, content, words in iter_bad_logs(good):
        (tmp_path / name).write_text(content)
        expected[str(tmp_path / name)] = words
    runset = load_runs(tmp_path)
    assert [r.model for r in runset.runs] == ["good-model"]
    reasons = {s.path: s.reason for s in runset.skipped}
    assert set(reasons) == set(expected)
    for path, words in expected.items():
        assert words in reasons[path] and path in reasons[path]
    assert main(["leaderboard", str(tmp_path)]) == 0
    captured = capsys.readouterr()
    assert "good-model" in captured.out
    for path, words in expected.items():
        assert words in captured.err and Path(path).name in captured.out  # listed in the table's notes too


def test_missing_runs_dir_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["leaderboard", str(tmp_path / "nowhere")]) == 2
    captured = capsys.readouterr()
    assert "no such run log or directory" in captured.err


def test_distinct_columns_and_poisson_bootstrap_spread() -> None:
    from evalkit.reports.bootstrap import bootstrap_weights, distinct_columns, replicate_means

    matrix = np.array([[1, 0, 1, np.nan, 1], [0, 0, 0, 1, 0]], dtype=float)
    columns, freq = distinct_columns(matrix)
    assert sorted(zip(map(tuple, np.nan_to_num(columns.T, nan=9)), freq, strict=True)) == [
        ((0.0, 0.0), 1), ((1.0, 0.0), 3), ((9.0, 1.0), 1)]
    continuous = np.array([[0.5, 0.25, 0.5], [1.0, 2.0, 1.0]])
    columns, freq = distinct_columns(continuous)
    assert columns.shape == (2, 2) and sorted(freq) == [1, 2]
    rng = np.random.default_rng(1)
    scores = (rng.random((1, 4000)) < 0.3).astype(float)
    columns, weights = bootstrap_weights(scores, 2000, np.random.default_rng(2))
    replicates = replicate_means(columns, weights)[:, 0]
    p = scores.mean()
    assert replicates.mean() == pytest.approx(p, abs=0.002)
    assert replicates.std() == pytest.approx(math.sqrt(p * (1 - p) / scores.size), rel=0.1)


def test_evalkit_run_indexes_the_log_it_finishes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The reports plugin indexes each log when the run finishes it: the UI then parses none."""
    from evalkit.cli import main
    from evalkit.reports import frames

    monkeypatch.setenv("EVALKIT_CACHE_DIR", str(tmp_path / "cache"))
    out = tmp_path / "runs"
    assert main(["run", "--model", "mock", "--tasks", "mmlu_anatomy", "--limit", "4", "--output-dir", str(out),
                 "--no-progress"]) == 0
    before = frames.READS["log_parse"]
    runset = frames.load_runs(out)
    assert len(runset.runs) == 1 and frames.READS["log_parse"] == before


def _same_run(a: Any, b: Any) -> None:
    assert json.dumps(a.header, sort_keys=True) == json.dumps(b.header, sort_keys=True)
    assert json.dumps(a.summary, sort_keys=True) == json.dumps(b.summary, sort_keys=True)
    for name in ("ids", "subtasks", "extracted", "n_choices", "errored", "offsets"):
        assert getattr(a, name).tolist() == getattr(b, name).tolist(), name
    for name in ("values", "confidence"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))


def test_index_built_from_memory_equals_a_fresh_parse(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`evalkit run` indexes from the records it holds; that must equal parsing the file,
    also after a resume that retries failed samples (their latest records, new offsets)."""
    from evalkit.reports import frames

    monkeypatch.setenv("EVALKIT_CACHE_DIR", str(tmp_path / "cache"))
    out = tmp_path / "runs"
    argv = ["run", "--model", "mock:fail_rate=0.3", "--tasks", "mmlu_anatomy,mmlu_astronomy", "--limit", "6",
            "--output-dir", str(out), "--no-progress"]
    for attempt in range(2):  # the second run resumes: retries the errored samples, appends
        main(argv)
        for log in sorted(out.rglob("*.jsonl")):
            before = frames.READS["log_parse"]
            indexed = frames.scan_cached(log)  # from the index written at the end of the run
            assert frames.READS["log_parse"] == before  # the file was not parsed
            _same_run(indexed, frames.scan_log(log))
            if attempt == 1:
                lines = log.read_bytes().splitlines()
                assert len(lines) > 1 + 6 + 1  # the resume appended records and a summary
                for sid, offset in zip(indexed.ids.tolist(), indexed.offsets.tolist(), strict=True):
                    with log.open("rb") as fh:
                        fh.seek(offset)
                        assert json.loads(fh.readline())["id"] == sid
