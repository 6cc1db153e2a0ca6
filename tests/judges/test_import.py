"""Imported judgments: AlpacaEval's 805 GPT-4 verdicts give the leaderboard's row exactly, and
FastChat judgment files (written here in gen_judgment.py's format) aggregate by FastChat's rule."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from evalkit.judges.imported import aggregate_imported
from evalkit.metrics.winrate import alpaca_eval_winrate, cluster_bootstrap_mean
from tests.conftest import SHARED_DATA
from tests.helpers import evalkit

ANNOTATIONS = SHARED_DATA / "alpaca_eval/results/gpt4/alpaca_eval_gpt4/annotations.json.gz"
LEADERBOARD = SHARED_DATA / "alpaca_eval/leaderboards/data_AlpacaEval/alpaca_eval_gpt4_leaderboard.csv"


def leaderboard_row(model: str) -> dict[str, str]:
    with LEADERBOARD.open(newline="", encoding="utf-8") as fh:
        return next(row for row in csv.DictReader(fh) if row[""] == model)


def test_alpaca_eval_annotations_equal_the_leaderboard_row() -> None:
    row = leaderboard_row("gpt4")
    results = aggregate_imported(ANNOTATIONS)["vs text_davinci_003"].overall
    assert abs(results["alpaca_eval_win_rate:gpt4"].value - float(row["win_rate"])) < 1e-9
    assert abs(results["alpaca_eval_standard_error:gpt4"].value - float(row["standard_error"])) < 1e-9
    assert results["wins:gpt4"].value == int(row["n_wins"])
    assert results["ties:gpt4"].value == int(row["n_draws"])
    assert results["losses:gpt4"].value == int(row["n_wins_base"])
    assert results["alpaca_eval_win_rate:gpt4"].n == int(row["n_total"])


def test_alpaca_eval_winrate_matches_scipy_sem_and_its_encoding() -> None:
    prefs = [2, 1, 0, 1.5, 2, 2, 1.25, float("nan"), 3]  # 0 and 1.5 draws; nan and 3 dropped
    kept = np.array([1, 0, 0.5, 0.5, 1, 1, 0.25])
    ae = alpaca_eval_winrate(prefs)
    assert ae.n_total == 7 and ae.n_draws == 2 and ae.n_wins == 3 and ae.n_wins_base == 2
    assert ae.win_rate == pytest.approx(100 * kept.mean())
    assert ae.standard_error == pytest.approx(100 * stats.sem(kept))


def test_cluster_bootstrap_resamples_questions_not_judgments() -> None:
    # two identical judgments per question: clustering must not shrink the interval
    values = np.random.default_rng(1).integers(0, 2, size=60).astype(float)
    doubled = np.repeat(values, 2)
    single = cluster_bootstrap_mean(values, seed=3)
    clustered = cluster_bootstrap_mean(doubled, [str(i) for i in np.repeat(np.arange(60), 2)], seed=3)
    naive = cluster_bootstrap_mean(doubled, seed=3)
    assert clustered == pytest.approx(single)
    assert (naive[1] - naive[0]) < (clustered[1] - clustered[0])


def write_jsonl(path: Path, rows: list[dict[str, object]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def pair_row(qid: int, turn: int, g1: str, g2: str) -> dict[str, object]:
    """A record as FastChat's gen_judgment.py (play_a_match_pair) writes it."""
    return {"question_id": qid, "model_1": "vicuna-13b", "model_2": "alpaca-13b", "g1_winner": g1,
            "g2_winner": g2, "judge": ["gpt-4", "pair-v2"], "g1_user_prompt": "...", "g1_judgment": "[[A]]",
            "g2_user_prompt": "...", "g2_judgment": "[[B]]", "turn": turn, "tstamp": 1687000000.0}


def test_fastchat_pair_file_aggregates_by_fastchat_rule(tmp_path: Path) -> None:
    rows = [
        pair_row(81, 1, "model_1", "model_1"),  # win
        pair_row(81, 2, "model_1", "model_2"),  # the orders disagree: tie
        pair_row(82, 1, "tie", "model_1"),  # a tie in one order: tie
        pair_row(82, 2, "model_2", "model_2"),  # loss
        pair_row(83, 1, "model_1", "model_1"),  # win
        pair_row(83, 2, "error", "model_1"),  # an error: left out (FastChat drops it), counted
    ]
    path = write_jsonl(tmp_path / "gpt-4_pair.jsonl", rows)
    result = aggregate_imported(path)["vicuna-13b vs alpaca-13b"]
    overall = result.overall
    # FastChat's show_result: drop errors, then tie if g1 == tie or g1 != g2
    kept = [r for r in rows if "error" not in (r["g1_winner"], r["g2_winner"])]
    wins = sum(r["g1_winner"] == r["g2_winner"] == "model_1" for r in kept)
    losses = sum(r["g1_winner"] == r["g2_winner"] == "model_2" for r in kept)
    ties = len(kept) - wins - losses
    assert (overall["wins"].value, overall["ties"].value, overall["losses"].value) == (wins, ties, losses)
    assert overall["win_rate"].value == pytest.approx(wins / len(kept))
    assert overall["win_rate_ties_half"].value == pytest.approx((wins + ties / 2) / len(kept))
    assert overall["position_consistency"].value == pytest.approx(3 / 5)
    assert overall["parse_failure_rate"].value == pytest.approx(1 / 12)
    assert result.subtasks["turn1"]["wins"].value == 2 and result.subtasks["turn2"]["losses"].value == 1


def test_fastchat_single_file_aggregates(tmp_path: Path) -> None:
    rows = [{"question_id": q, "model": m, "judge": ["gpt-4", "single-v1"], "user_prompt": "...",
             "judgment": f"Rating: [[{s}]]", "score": s, "turn": t, "tstamp": 0.0}
            for q, m, s, t in [(81, "vicuna-13b", 8, 1), (82, "vicuna-13b", 6, 1), (81, "vicuna-13b", 7, 2),
                               (81, "alpaca-13b", 4, 1), (82, "alpaca-13b", -1, 1)]]
    path = write_jsonl(tmp_path / "gpt-4_single.jsonl", rows)
    overall = aggregate_imported(path)["single"].overall
    assert overall["mean_score:vicuna-13b"].value == pytest.approx(7.0)
    assert overall["mean_score:alpaca-13b"].value == 4.0 and overall["mean_score:alpaca-13b"].n == 1
    assert overall["parse_failure_rate"].value == pytest.approx(1 / 5)  # score -1: no rating


def test_import_cli_and_a_bad_file(tmp_path: Path) -> None:
    done = evalkit("import-judgments", str(ANNOTATIONS), "--json")
    assert done.returncode == 0, done.stderr
    table = json.loads(done.stdout)["vs text_davinci_003"]["overall"]
    assert table["alpaca_eval_win_rate:gpt4"]["n"] == 805
    bad = write_jsonl(tmp_path / "x_pair.jsonl", [{**pair_row(81, 1, "model_1", "model_1"), "g2_winner": "A"}])
    failed = evalkit("import-judgments", str(bad))
    assert failed.returncode == 2
    assert failed.stderr.count("\n") == 1 and "g2_winner" in failed.stderr and str(bad) in failed.stderr
