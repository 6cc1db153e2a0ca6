"""A metric's ideal value (e.g. StereoSet's SS = 50): kept in the log, ranked by distance to it."""

from __future__ import annotations

import math
from pathlib import Path

from evalkit.log.io import LogWriter, read_log
from evalkit.log.records import HeaderRecord, SampleRecord, SummaryRecord
from evalkit.reports.frames import load_runs
from evalkit.reports.leaderboard import build_leaderboard
from evalkit.results import TaskResults
from evalkit.types import MetricValue, Score


def _log(root: Path, model: str, ss: float) -> Path:
    path = root / model / "ss_demo.jsonl"
    path.parent.mkdir(parents=True)
    picks = [1.0] * round(ss) + [0.0] * (100 - round(ss))  # share of stereotyped picks, in percent
    header = HeaderRecord(task={"name": "ss_demo", "version": "1", "prompt_format": "invented"},
                          model={"spec": model, "backend": "mock", "target": model, "options": {}},
                          identity=model, headline_metric="ss")
    metric = MetricValue("ss", ss, 100, ss - 9, ss + 9, "invented", ideal=50.0)
    with LogWriter(path) as writer:
        writer.append(header.to_json())
        writer.append_many([SampleRecord(id=f"s{i}", score=Score(100 * v)).to_json() for i, v in enumerate(picks)])
        writer.append(SummaryRecord(TaskResults({"ss": metric}), 100, 100, 0).to_json())
    return path


def test_ideal_round_trips_through_the_log(tmp_path: Path) -> None:
    log = read_log(_log(tmp_path, "m", 45.0))
    assert log.summary is not None and log.summary.results.overall["ss"].ideal == 50.0
    assert MetricValue("x", 1.0, 1).to_dict().get("ideal") is None  # absent unless set


def test_leaderboard_ranks_a_target_metric_by_distance_to_its_ideal(tmp_path: Path) -> None:
    for model, ss in (("far_high", 70.0), ("close_low", 46.0), ("closer_high", 53.0)):
        _log(tmp_path, model, ss)
    runs = load_runs(tmp_path, index_dir=tmp_path / "index")
    board = build_leaderboard(runs, "win_rate", sort_by="ss_demo", resamples=200)
    assert [r.model for r in board.rows] == ["closer_high", "close_low", "far_high"]
    assert board.rows[0].cells["ss_demo"].ideal == 50.0
    # the mean over tasks leaves a target metric out instead of averaging distances with accuracies
    assert all(math.isnan(r.aggregate) for r in build_leaderboard(runs, "mean", resamples=50).rows)
