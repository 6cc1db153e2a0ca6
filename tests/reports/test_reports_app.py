"""The Streamlit app through Streamlit's AppTest (no browser): views, skipped logs, no re-reads."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from evalkit.reports import frames
from evalkit.reports.frames import load_runs, scan_paths
from evalkit.reports.synthetic import write_synthetic_log
from tests.conftest import REPO

APP = REPO / "reports" / "app.py"
MODELS = {"model-a": 0.3, "model-b": 0.6, "model-c": 0.8}


@pytest.fixture
def runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    for model, skill in MODELS.items():
        for task in ("alpha", "beta"):
            write_synthetic_log(tmp_path / model / f"{task}.jsonl", model, task, skill, 300)
    (tmp_path / "bad.jsonl").write_text("")
    monkeypatch.setenv("EVALKIT_RUNS_DIR", str(tmp_path))
    import streamlit as st

    st.cache_resource.clear()
    yield tmp_path
    st.cache_resource.clear()


def start(runs: Path) -> AppTest:
    at = AppTest.from_file(str(APP), default_timeout=120)
    at.run()
    assert not at.exception, [e.message for e in at.exception]
    return at


def go(at: AppTest, view: str) -> None:
    at.sidebar.radio(key="view").set_value(view).run()
    assert not at.exception, [e.message for e in at.exception]


def test_leaderboard_lists_models_and_skipped_logs(runs: Path) -> None:
    at = start(runs)
    table = at.table[0].value
    assert list(table["model"]) == ["model-c", "model-b", "model-a"]
    captions = " ".join(c.value for c in at.sidebar.caption)
    assert "bad.jsonl" in captions and "empty" in captions
    assert "Aggregate = **mean**" in " ".join(c.value for c in at.caption)
    at.selectbox[0].set_value("win_rate").run()
    assert "win_rate" in at.table[0].value.columns[2] and list(at.table[0].value["model"])[0] == "model-c"


def test_interactions_reread_no_log(runs: Path) -> None:
    at = start(runs)
    before = dict(frames.READS)
    at.selectbox[0].set_value("normalized").run()
    at.selectbox[1].set_value("beta").run()
    for view in ("Task drill-down", "Calibration", "Samples", "Compare two models", "Efficiency", "Leaderboard"):
        go(at, view)
    assert frames.READS["log_parse"] == before.get("log_parse", 0)
    assert frames.READS["index_load"] == before.get("index_load", 0)


def test_sample_browser_filters_and_shows_records(runs: Path) -> None:
    at = start(runs)
    go(at, "Samples")
    shown = at.table[0].value
    assert len(shown) == 20 and shown["id"].iloc[0].startswith("subject_")
    at.selectbox(key="s_filter").set_value("incorrect (score < 1)").run()
    assert set(at.table[0].value["score"]) == {0.0}
    at.selectbox(key="s_filter").set_value("disagreements between models").run()
    run = load_runs(runs).get("model-a", "alpha")
    assert run is not None
    others = [load_runs(runs).get(m, "alpha") for m in ("model-b", "model-c")]
    disagree = {sid for i, sid in enumerate(run.ids)
                if len({run.values[i], *(o.values[i] for o in others if o is not None)}) > 1}
    assert set(at.table[0].value["id"]) <= disagree
    assert "Page (of" in at.number_input[0].label and str(len(disagree)) in at.number_input[0].label
    assert any("Synthetic question" in c.value for c in at.code)


def test_comparison_gives_the_paired_difference(runs: Path) -> None:
    at = start(runs)
    go(at, "Compare two models")
    table = at.table[0].value.set_index("task")
    a, b = (load_runs(runs).get(m, "alpha") for m in ("model-a", "model-b"))
    assert a is not None and b is not None
    expected = float(np.mean(a.values - b.values))
    assert table.loc["alpha", "difference (A − B) [95% CI]"].startswith(f"{expected:.4f}")
    assert int(table.loc["alpha", "shared samples"]) == 300


def test_efficiency_shows_tokens_per_second_and_cost(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    log = tmp_path / "m.jsonl"
    write_synthetic_log(log, "priced", "t", 0.5, 10)
    summary = {"type": "summary", "n_samples": 10, "results": {"overall": {}},
               "timings": {"wall_seconds": 2.0, "samples_per_second": 5.0},
               "engine": {"prompt_tokens": 300, "completion_tokens": 100, "cost_usd": 0.0123}}
    with log.open("a") as fh:
        fh.write(json.dumps(summary) + "\n")
    monkeypatch.setenv("EVALKIT_RUNS_DIR", str(tmp_path))
    at = start(tmp_path)
    go(at, "Efficiency")
    row = at.table[0].value.iloc[0]
    assert row["tokens_per_second"] == pytest.approx(200.0) and row["cost_usd"] == "0.0123"


def test_parallel_scan_matches_serial(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    paths = []
    for model in ("x", "y"):
        for task in ("t1", "t2"):
            paths.append(tmp_path / model / f"{task}.jsonl")
            write_synthetic_log(paths[-1], model, task, 0.5, 50)
    (tmp_path / "broken.jsonl").write_text('{"type":"header"\n')
    paths.append(tmp_path / "broken.jsonl")
    serial = scan_paths(paths, tmp_path / "index-serial")
    monkeypatch.setattr(frames, "PARALLEL_MIN_BYTES", 0)
    before = frames.READS["log_parse"]
    parallel = scan_paths(paths, tmp_path / "index-parallel", workers=2)
    assert frames.READS["log_parse"] == before + len(paths)
    for s, p in zip(serial, parallel, strict=True):
        assert type(s) is type(p)
        if isinstance(s, frames.RunData) and isinstance(p, frames.RunData):
            assert list(s.ids) == list(p.ids) and np.array_equal(s.values, p.values)
        else:
            assert s == p
