"""Study set-up and results on fixture votes, each number against an independent computation:
win/tie/loss by hand, BT/Elo by `evalkit.metrics.ranking` on battles built here, Krippendorff's
α by the `krippendorff` package, Fleiss' κ by statsmodels, Cohen's κ by scikit-learn."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import krippendorff
import numpy as np
import pytest
from sklearn.metrics import cohen_kappa_score
from statsmodels.stats.inter_rater import fleiss_kappa

from evalkit.cli import main
from evalkit.human.judge_agreement import human_judge_table
from evalkit.human.results import compute_results
from evalkit.human.store import Vote, VoteStore
from evalkit.log import read_log
from evalkit.metrics.ranking import Battle, rank_with_ci
from tests.human.conftest import MODELS, make_store

ANNOTATORS = ("ann1", "ann2", "ann3")
#: a fixed preference per question number: which model a rater picks (by its index), or a tie
PICKS = ["0", "0", "1", "tie", "0", "bothbad", "1", "0", "0", "tie"]


def row(table: list[dict[str, object]], **match: object) -> dict[str, object]:
    (found,) = [r for r in table if all(r[k] == v for k, v in match.items())]
    return found


def vote_all(store: VoteStore, answer: callable) -> list[Vote]:  # type: ignore[valid-type]
    """Every slot of every annotator voted by `answer(annotator, n, item)` (n: question's index)."""
    items = store.items()
    order = list(dict.fromkeys(i["question"] for i in items.values()))
    votes = []
    for a in store.assignments():
        item = items[a.item_id]
        v = Vote(f"{a.annotator}-{a.slot}", a.annotator, a.slot, a.item_id, a.shown,
                 answer(a.annotator, order.index(item["question"]), item))
        assert store.submit(v)
        votes.append(v)
    return votes


def test_assignment_is_balanced_shuffled_recorded_and_reproducible(tmp_path: Path,
                                                                   replay_logs: tuple[Path, ...]) -> None:
    store = make_store(tmp_path / "s.db", replay_logs[:2], ANNOTATORS, per_item=2, attention=0.2, seed=5)
    assignments = store.assignments()
    plain = [a for a in assignments if a.attention is None]
    per_item = Counter(a.item_id for a in plain)
    assert set(per_item.values()) == {2} and len(per_item) == 10
    for item in per_item:  # K different annotators
        assert len({a.annotator for a in plain if a.item_id == item}) == 2
    loads = Counter(a.annotator for a in plain)
    assert max(loads.values()) - min(loads.values()) <= 1
    checks = [a for a in assignments if a.attention]
    assert checks and all(a.attention.split(":")[0] in ("duplicate", "swapped") for a in checks)
    for c in checks:  # a repeat comes after the slot it repeats, swapped ones reversed
        (first,) = [a for a in plain if a.annotator == c.annotator and a.item_id == c.item_id]
        assert first.slot < c.slot
        assert c.shown == (tuple(reversed(first.shown)) if c.attention.startswith("swapped") else first.shown)
    sides = Counter(a.shown for a in plain)
    assert set(sides) == {(0, 1), (1, 0)}  # both sides drawn
    again = make_store(tmp_path / "t.db", replay_logs[:2], ANNOTATORS, per_item=2, attention=0.2, seed=5)
    assert again.assignments() == assignments  # the draws follow from the seed
    other = make_store(tmp_path / "u.db", replay_logs[:2], ANNOTATORS, per_item=2, attention=0.2, seed=6)
    assert other.assignments() != assignments


def test_ranking_rounds_give_every_system_the_same_number_of_rounds(tmp_path: Path,
                                                                     replay_logs: tuple[Path, ...]) -> None:
    from evalkit.human.assign import ranking_rounds

    systems = [f"s{i}" for i in range(7)]
    rounds = ranking_rounds(systems, 5, seed=1)
    assert len(rounds) == 7 and all(len(set(r)) == 5 for r in rounds)
    assert set(Counter(s for r in rounds for s in r).values()) == {5}
    store = make_store(tmp_path / "r.db", replay_logs, ANNOTATORS, design="ranking", per_item=1)
    assert {len(i["models"]) for i in store.items().values()} == {3}


def test_pairwise_results_equal_independent_computations(tmp_path: Path, replay_logs: tuple[Path, ...]) -> None:
    store = make_store(tmp_path / "s.db", replay_logs[:2], ANNOTATORS, per_item=3)
    flip = {"ann3": {2, 4}}  # ann3 disagrees on two questions
    def answer(annotator: str, n: int, item: dict[str, object]) -> dict[str, str]:
        pick = PICKS[n]
        if n in flip.get(annotator, ()):
            pick = {"0": "1", "1": "0"}.get(pick, "0")
        return {"choice": pick}

    votes = vote_all(store, answer)
    items = store.items()
    results = compute_results(store, resamples=200)
    m1, m2 = items[votes[0].item_id]["models"]
    labels = {v.vote_id: v.answer["choice"] for v in votes}
    wins = sum(1 for x in labels.values() if x == "0")
    losses = sum(1 for x in labels.values() if x == "1")
    ties = len(labels) - wins - losses
    wtl = row(results.tables["win/tie/loss"], model_1=m1, model_2=m2)
    assert (wtl["wins"], wtl["ties"], wtl["losses"], wtl["n"]) == (wins, ties, losses, 30)
    assert wtl["win_rate"] == pytest.approx(wins / 30)
    assert wtl["win_rate_ties_half"] == pytest.approx((wins + ties / 2) / 30)
    low, high = wtl["win_rate_ties_half_ci"]
    assert low < wtl["win_rate_ties_half"] < high
    battles = [Battle(m1, m2, {"0": 1.0, "1": 0.0}.get(labels[v.vote_id], 0.5)) for v in votes]
    expected = rank_with_ci(battles, method="bt", resamples=200, seed=0)
    assert [(r["model"], r["rating"]) for r in results.tables["bt ratings"]] == [(r.name, r.rating) for r in expected]
    # agreement among annotators: reliability data built here, from the raw votes
    units = sorted(items)
    data = np.full((3, len(units)), np.nan)
    code = {"0": 0, "1": 1, "tie": 2, "bothbad": 3}
    for v in votes:
        data[ANNOTATORS.index(v.annotator), units.index(v.item_id)] = code[v.answer["choice"]]
    stats = {r["statistic"]: r["value"] for r in results.tables["inter-annotator agreement"]}
    assert stats["Krippendorff's alpha (nominal)"] == pytest.approx(
        krippendorff.alpha(reliability_data=data, level_of_measurement="nominal"), abs=1e-9)
    table = np.array([[int((data[:, u] == c).sum()) for c in range(4)] for u in range(len(units))])
    assert stats["Fleiss' kappa (items with 3 votes: 10)"] == pytest.approx(fleiss_kappa(table), abs=1e-12)


def test_likert_and_ranking_results(tmp_path: Path, replay_logs: tuple[Path, ...]) -> None:
    likert = make_store(tmp_path / "l.db", replay_logs[:2], ANNOTATORS, design="likert", per_item=2,
                        criteria=("relevance", "helpfulness"), scale=7)
    votes = vote_all(likert, lambda a, n, item: {"ratings": {"relevance": 1 + (n + len(a)) % 7,
                                                              "helpfulness": 1 + n % 5}})
    items = likert.items()
    results = compute_results(likert, resamples=200)
    means = results.tables["likert means (1-7)"]
    for model in {i["models"][0] for i in items.values()}:
        mine = [v.answer["ratings"]["relevance"] for v in votes if items[v.item_id]["models"][0] == model]
        assert row(means, criterion="relevance", model=model)["mean"] == pytest.approx(np.mean(mine))
    units = sorted(items)
    data = np.full((3, len(units)), np.nan)
    for v in votes:
        data[ANNOTATORS.index(v.annotator), units.index(v.item_id)] = v.answer["ratings"]["relevance"]
    stats = {r["statistic"]: r["value"] for r in results.tables["inter-annotator agreement"]}
    assert stats["Krippendorff's alpha (ordinal), relevance"] == pytest.approx(
        krippendorff.alpha(reliability_data=data, level_of_measurement="ordinal"), abs=1e-9)

    ranking = make_store(tmp_path / "r.db", replay_logs, ANNOTATORS, design="ranking", per_item=1)
    votes = vote_all(ranking, lambda a, n, item: {"ranks": [1 + (k + n) % 3 for k in range(3)]})
    items = ranking.items()
    table = compute_results(ranking, resamples=200).tables["mean rank (1 = best)"]
    for model in MODELS:
        ranks = [r for v in votes for m, r in zip(items[v.item_id]["models"], v.answer["ranks"], strict=True)
                 if m.startswith(model.split("-")[0])]
        (got,) = [r for r in table if r["model"].startswith(model.split("-")[0])]
        assert got["mean_rank"] == pytest.approx(np.mean(ranks)) and got["n"] == len(ranks)


def judgment_log(tmp_path: Path, runs: tuple[Path, Path], winners: dict[int, int]) -> Path:
    """A real judgment log by `evalkit judge` with a scripted mock judge: on turn 1 of question
    n it prefers the answer of model winners[n] in both orders; everything else is a tie."""
    assert len(set(winners.values())) == 2
    logs = [read_log(r) for r in runs]
    ids = list(logs[0].samples)
    script = {}
    for n, model in winners.items():
        answer = (logs[model].samples[ids[n]].responses[0].text or "")[:80]
        for side, verdict in (("A", "[[A]]"), ("B", "[[B]]")):  # the mock matches the JSON of the messages
            script[json.dumps(f"Assistant {side}'s Answer]\n{answer}", ensure_ascii=False)[1:-1]] = verdict
    script["Assistant"] = "[[C]]"
    answers = tmp_path / "judge.json"
    answers.write_text(json.dumps(script))
    out = tmp_path / "judged.jsonl"
    assert main(["judge", str(runs[0]), str(runs[1]), "--judge", f"mock:answers={answers}", "-o", str(out),
                 "--no-progress", "--cache-dir", str(tmp_path / "cache")]) == 0
    return out


def raw_verdicts(path: Path) -> dict[str, str]:
    """Turn 1's label per question straight from the log's JSON, by FastChat's rule: a model wins
    when both orders pick it; a tie otherwise."""
    picks: dict[str, dict[str, str]] = {}
    for line in path.read_text().splitlines():
        r = json.loads(line)
        if r["type"] != "sample" or r["derivation"]["turn"] != 1:
            continue
        d, verdict = r["derivation"], r["score"]["extras"]["verdict"]
        first, second = (d["model_1"], d["model_2"]) if d["order"] == "ab" else (d["model_2"], d["model_1"])
        picks.setdefault(r["source_id"] or r["id"].split("|")[0], {})[d["order"]] = \
            {"A": first, "B": second}.get(verdict, "tie")
    return {q: p["ab"] if p["ab"] == p["ba"] else "tie" for q, p in picks.items()}


def test_human_judge_agreement_from_a_judgment_log(tmp_path: Path, replay_logs: tuple[Path, ...]) -> None:
    runs = replay_logs[:2]
    winners = {0: 0, 1: 0, 2: 1, 4: 1, 6: 1, 7: 0}  # question index -> the judge's winner
    judged = judgment_log(tmp_path, runs, winners)
    store = make_store(tmp_path / "s.db", runs, ("ann1", "ann2"), per_item=2)
    votes = vote_all(store, lambda a, n, item: {"choice": PICKS[n]})
    items = store.items()
    names = items[votes[0].item_id]["models"]
    verdicts = raw_verdicts(judged)
    human, judge = [], []
    for v in votes:
        item = items[v.item_id]
        human.append({"0": names[0], "1": names[1], "tie": "tie", "bothbad": "tie"}[v.answer["choice"]])
        judge.append(verdicts[item["question"]])
    assert {names[0], names[1], "tie"} <= set(judge)  # the scripted judge decided both ways and tied
    table = {r["statistic"]: r for r in human_judge_table(votes, items, judged)}
    same = sum(h == j for h, j in zip(human, judge, strict=True))
    assert table["agreement with ties"]["value"] == pytest.approx(same / 20) and table["agreement with ties"]["n"] == 20
    decided = [(h, j) for h, j in zip(human, judge, strict=True) if "tie" not in (h, j)]
    assert table["agreement without ties"]["value"] == pytest.approx(sum(h == j for h, j in decided) / len(decided))
    assert table["Cohen's kappa (both bad = tie)"]["value"] == pytest.approx(cohen_kappa_score(human, judge))
