"""The seed papers' report tables and the rankings, from judgments: hand-computed fixtures,
then judgment logs made by `evalkit judge` (a scripted judge over five MT-Bench contestants
replayed from the shipped answers) and rendered by `evalkit judge report`."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import cohen_kappa_score

from evalkit.cli import main
from evalkit.judges.judgments import PairJudgment, ReferenceJudgment, SingleJudgment
from evalkit.judges.report_tables import (
    agreements,
    battles_of,
    length_controlled,
    score_ratios,
    win_tie_lose,
)
from evalkit.log.io import read_log
from evalkit.metrics.ranking import log_strengths
from tests.judges.conftest import contestant_log
from tests.unit.test_ranking import sklearn_log_strengths

# ranked best first; the scripted judge prefers the earlier model
MODELS = ["gpt-3.5-turbo", "vicuna-13b-v1.3", "koala-13b", "alpaca-13b", "llama-13b"]
RATINGS = [9, 7, 6, 4, 2]
QUESTIONS = 4
PREFIX = 40


def pair(q: str, turn: int, order: str, verdict: str | None, m1: str = "x", m2: str = "y",
         category: str = "writing") -> PairJudgment:
    return PairJudgment(q, turn, category, m1, m2, order, verdict)


def test_win_tie_lose_by_hand() -> None:
    judgments = [
        pair("q1", 1, "ab", "A"), pair("q1", 1, "ba", "B"),  # x wins in both orders: a win
        pair("q2", 1, "ab", "A"), pair("q2", 1, "ba", "A"),  # the orders disagree: a tie
        pair("q3", 1, "ab", "B"), pair("q3", 1, "ba", "A", category="math"),  # y wins: a loss
        pair("q4", 2, "ab", "tie"), pair("q4", 2, "ba", "tie", category="math"),  # a tie
        pair("q5", 1, "ab", None), pair("q5", 1, "ba", "A"),  # unreadable: no outcome
    ]
    rows = {r.question_set: (r.wins, r.ties, r.losses) for r in win_tie_lose(judgments)}
    assert rows["all"] == (1, 2, 1)
    assert rows["turn1"] == (1, 1, 1) and rows["turn2"] == (0, 1, 0)
    assert rows["writing"] == (1, 2, 1) and "math" not in rows  # a pair's category is its first order's
    refs = [ReferenceJudgment(f"r{i}", "koala", "m", "base", p) for i, p in enumerate([2.0, 1.0, 1.5, 0.0, 2.0])]
    ref_rows = {r.question_set: (r.wins, r.ties, r.losses) for r in win_tie_lose(refs)}
    assert ref_rows == {"all": (2, 2, 1), "koala": (2, 2, 1)}
    assert len(battles_of(judgments + refs)) == 4 + 5


def test_relative_score_and_beat_rate_by_hand() -> None:
    # (question, turn): model, baseline ratings
    scores = {("q1", 1): (8, 10), ("q1", 2): (6, 6), ("q2", 1): (9, 7), ("q3", 1): (3, 9)}
    judgments = []
    for (q, t), (m, b) in scores.items():
        judgments += [SingleJudgment(q, t, "coding" if q == "q3" else "writing", "model", float(m)),
                      SingleJudgment(q, t, "coding" if q == "q3" else "writing", "chatgpt", float(b))]
    judgments.append(SingleJudgment("q4", 1, "writing", "model", None))  # unread: left out
    rows = {r.category: r for r in score_ratios(judgments, ["chatgpt"], resamples=200)}
    overall = rows["all"]
    assert overall.model_total == 26 and overall.baseline_total == 32 and overall.n == 4
    assert overall.ratio == pytest.approx(100 * 26 / 32)  # Vicuna: 81.25% of ChatGPT
    assert overall.beat_rate == pytest.approx(1 / 4) and overall.tie_rate == pytest.approx(1 / 4)
    assert overall.ci_low <= overall.ratio <= overall.ci_high
    assert rows["writing"].ratio == pytest.approx(100 * 23 / 23) and rows["coding"].ratio == pytest.approx(100 / 3)


def test_length_controlled_rows_name_the_variant() -> None:
    refs = [ReferenceJudgment(f"r{i}", "", "m", "base", p, 100, 100) for i, p in enumerate([2.0, 1.0, 2.0, 0.0])]
    (row,) = length_controlled(refs, resamples=50)
    assert row.variant == "glm_no_difficulty"
    assert row.lc_win_rate == pytest.approx(100 * (1 + 0 + 1 + 0.5) / 4, abs=1e-6)  # equal lengths: the raw rate
    (full,) = length_controlled(refs, {f"r{i}": float(i) for i in range(4)}, resamples=50)
    assert full.variant == "glm"


# ---------------------------------------------------------------------------------------------
# judgment logs from `evalkit judge`


def esc(text: str) -> str:
    """The mock judge matches keys in the JSON text of the prompt: newlines and quotes escaped."""
    return json.dumps(text, ensure_ascii=False)[1:-1]


def answers_of(log: Path) -> dict[str, list[str]]:
    return {sid: [r.text or "" for r in rec.responses] for sid, rec in sorted(read_log(log).samples.items())}


def prefixes(answers: dict[str, dict[str, list[str]]], question: str) -> dict[str, str]:
    """Each model's first answer to `question`, cut at the shortest length (≥ 40) at which no
    two models' cuts are equal (two answers may open alike: "Subject: Request for ...")."""
    firsts = {m: answers[m][question][0] for m in MODELS}
    length = PREFIX
    while len({a[:length] for a in firsts.values()}) < len(firsts):
        length += 10
    return {m: a[:length] for m, a in firsts.items()}


def pair_script(answers: dict[str, dict[str, list[str]]], reversed_question: str, tie_question: str) -> dict[str, str]:
    """The judge picks the better-ranked model in both orders, except on `reversed_question`
    (the worse one wins) and `tie_question` (a tie: its question text is matched first)."""
    script = {tie_text(answers, tie_question): "[[C]]"}
    for question in sorted(answers[MODELS[0]]):
        order = MODELS[::-1] if question == reversed_question else MODELS
        cut = prefixes(answers, question)
        for model in order:
            first = cut[model]
            for side in ("A", "B"):
                script[esc(f"[The Start of Assistant {side}'s Answer]\n{first}")] = f"[[{side}]]"
                script[esc(f"### Assistant {side}:\n{first}")] = f"[[{side}]]"
    return script


def tie_text(answers: dict[str, dict[str, list[str]]], question: str) -> str:
    record = read_log(LOGS[MODELS[0]]).samples[question]
    return esc(str(record.input if isinstance(record.input, str) else json.dumps(record.input))[:PREFIX])


LOGS: dict[str, Path] = {}


@pytest.fixture(scope="module")
def judged(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("judged")
    for model in MODELS:
        LOGS[model] = contestant_log(out, model, QUESTIONS)
    answers = {m: answers_of(LOGS[m]) for m in MODELS}
    questions = sorted(answers[MODELS[0]])
    tie_q, reversed_q = questions[0], questions[-1]
    logs = {}
    for name, rev in (("main", reversed_q), ("second", questions[1])):
        script = out / f"pair-{name}.json"
        script.write_text(json.dumps(pair_script(answers, rev, tie_q)))
        pairs = [(i, (i + 1) % len(MODELS)) for i in range(len(MODELS))] if name == "main" else [(0, 1)]
        for i, k in pairs:
            logs[f"{name}-{i}{k}"] = judge(out, [LOGS[MODELS[i]], LOGS[MODELS[k]]], f"mock:answers={script}",
                                           f"{name}-{i}{k}.jsonl")
    single = {tie_text(answers, tie_q): "Rating: [[5]]"}
    for model, rating in zip(MODELS, RATINGS, strict=True):
        for question in questions:
            first = prefixes(answers, question)[model]
            single[esc(f"[The Start of Assistant's Answer]\n{first}")] = f"Rating: [[{rating}]]"
            single[esc(f"### Assistant A:\n{first}")] = f"Rating: [[{rating}]]"
    (out / "single.json").write_text(json.dumps(single))
    logs["single"] = judge(out, [LOGS[m] for m in MODELS[:2]], f"mock:answers={out / 'single.json'}",
                           "single.jsonl", "--protocol", "single")
    return logs


def judge(out: Path, runs: list[Path], spec: str, name: str, *extra: str) -> Path:
    # no cache: the mock fingerprints its script as a sorted set, and the two pair scripts differ only in order
    assert main(["judge", *map(str, runs), "--judge", spec, "-o", str(out / name), "--no-progress", "--no-cache",
                 *extra]) == 0
    return out / name


def report_json(logs: list[Path], capsys: pytest.CaptureFixture[str], *extra: str) -> dict:
    capsys.readouterr()
    assert main(["judge", "report", *map(str, logs), "--format", "json", "--resamples", "200", *extra]) == 0
    return json.loads(capsys.readouterr().out)


def test_rankings_from_judgment_logs(judged: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    ring = [p for k, p in judged.items() if k.startswith("main-")]
    report = report_json(ring, capsys)
    bt = report["rankings"]["bt"]
    names = [r["name"] for r in bt]
    assert len(names) == 5
    assert [n.split("-")[0] for n in names] == [m.split("-")[0] for m in MODELS]  # the judge's order
    battles = []
    from evalkit.judges.report_tables import load_judgment_log

    for path in ring:
        battles += battles_of(load_judgment_log(path).judgments)
    assert len(battles) == 5 * QUESTIONS * 2
    ours, ref = log_strengths(battles), sklearn_log_strengths(battles)
    for name in ours:
        assert ours[name] == pytest.approx(ref[name], abs=1e-6)
    assert sorted(ours, key=ours.__getitem__, reverse=True) == names
    assert np.mean([r["rating"] for r in bt]) == pytest.approx(1000.0)
    assert all(r["ci_low"] <= r["rating"] <= r["ci_high"] for r in bt)
    # each edge of the ring: the better model scores (4 wins + 2 ties/2) / 8 = 5/8
    matrix = report["rankings"]["win_rates"]
    rank = {name: i for i, name in enumerate(names)}  # the recovered order is the judge's
    for row, cols in matrix.items():
        assert len(cols) == 2
        for col, value in cols.items():
            assert value == pytest.approx(0.625 if rank[row] < rank[col] else 0.375)


def test_win_tie_lose_from_a_judgment_log(judged: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    report = report_json([judged["main-01"]], capsys)
    rows = {r["question_set"]: (r["wins"], r["ties"], r["losses"]) for r in report["win_tie_lose"]}
    # 4 questions x 2 turns: the tie question 2 ties, two normal ones 4 wins, the reversed one 2 losses
    assert rows["all"] == (4, 2, 2) and rows["turn1"] == (2, 1, 1) and rows["writing"] == (4, 2, 2)


def test_relative_score_from_a_judgment_log(judged: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    report = report_json([judged["single"]], capsys)
    rows = [r for r in report["score_ratios"] if r["category"] == "all"]
    worse = next(r for r in rows if r["baseline"] == rows[0]["baseline"] and r["model"] != r["baseline"])
    by_model = {(r["model"], r["baseline"]): r for r in rows}
    assert len(by_model) == 2
    (second_vs_first,) = [r for r in rows if r["model_total"] < r["baseline_total"]]
    # 8 items: the tie question's 2 rated 5 each, the other 6 rated 7 (vicuna) and 9 (gpt-3.5)
    assert second_vs_first["model_total"] == 5 * 2 + 7 * 6 and second_vs_first["baseline_total"] == 5 * 2 + 9 * 6
    assert second_vs_first["ratio"] == pytest.approx(100 * 52 / 64)
    assert second_vs_first["beat_rate"] == 0 and second_vs_first["tie_rate"] == pytest.approx(2 / 8)
    assert worse["n"] == 8


def test_agreement_between_two_judgment_logs(judged: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    report = report_json([judged["main-01"], judged["second-01"]], capsys)
    (row,) = report["agreements"]
    # the second judge reverses question 2 instead of question 4: 4 of 8 items differ
    assert row["n"] == 8 and row["agreement_with_ties"] == pytest.approx(4 / 8)
    assert row["n_without_ties"] == 6 and row["agreement_without_ties"] == pytest.approx(2 / 6)
    from evalkit.judges.report_tables import load_judgment_log, pair_labels

    a = pair_labels(load_judgment_log(judged["main-01"]).judgments)
    b = pair_labels(load_judgment_log(judged["second-01"]).judgments)
    keys = sorted(a)
    assert row["cohen_kappa"] == pytest.approx(cohen_kappa_score([a[k] for k in keys], [b[k] for k in keys]))
    assert not agreements([])


@pytest.mark.parametrize("fmt,marker", [("table", "Bradley–Terry"), ("md", "| rank |"), ("html", "<img alt=")])
def test_report_formats(judged: dict[str, Path], capsys: pytest.CaptureFixture[str], fmt: str, marker: str) -> None:
    capsys.readouterr()
    assert main(["judge", "report", str(judged["main-01"]), str(judged["single"]), "--format", fmt,
                 "--resamples", "50"]) == 0
    text = capsys.readouterr().out
    assert marker in text and "HuatuoGPT" in text and "Vicuna relative score" in text


def test_report_bad_input(judged: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    contestant = LOGS[MODELS[0]]
    cases = [
        ([str(tmp_path / "missing.jsonl")], "no such run log"),
        ([str(contestant)], "not a judgment log"),
        ([str(judged["main-01"]), "--anchor", "nobody"], "--anchor 'nobody'"),
        ([str(judged["main-01"]), "--difficulty", str(tmp_path / "none.csv")], "--difficulty"),
        ([], "give one or more judgment logs"),
    ]
    for args, message in cases:
        capsys.readouterr()
        assert main(["judge", "report", *args]) == 2
        err = capsys.readouterr().err
        assert message in err and len(err.strip().splitlines()) == 1, err
    assert not math.isnan(1.0)
