"""`evalkit human serve|export|report` on the command line: links, bad input, exports, a report
with human-judge agreement."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from evalkit.human.store import Vote, VoteStore
from tests.helpers import evalkit
from tests.human.test_results import PICKS, judgment_log


def serve(*args: str) -> list[str]:
    return ["human", "serve", *args, "--no-launch"]


def test_serve_prints_one_link_per_annotator_and_resumes(tmp_path: Path, replay_logs: tuple[Path, ...]) -> None:
    db = tmp_path / "s.db"
    done = evalkit(*serve(*map(str, replay_logs[:2]), "--store", str(db), "--annotators", "ann1,ann2,ann3"))
    assert done.returncode == 0, done.stderr
    links = dict(line.split(": ", 1) for line in done.stdout.splitlines())
    assert set(links) == {"ann1", "ann2", "ann3", "admin"}
    assert all("token=" in url for url in links.values()) and "page=admin" in links["admin"]
    again = evalkit(*serve("--store", str(db)))  # no runs: the same study, the same tokens
    assert again.returncode == 0 and again.stdout == done.stdout
    # model names are in the store's meta, never in the links
    assert "vicuna" not in done.stdout.lower() and "alpaca" not in done.stdout.lower()


@pytest.mark.parametrize(("extra", "message"), [
    (["--design", "likert", "--scale", "4"], "--scale must be 5 or 7"),
    (["--per-item", "3"], "--per-item 3 needs at least that many annotators"),
    (["--annotators", "a,a"], "--annotators needs distinct names"),
    (["--turns", "x"], "--turns must be comma-separated numbers"),
    (["--attention", "1.5"], "--attention must be in [0, 1)"),
])
def test_bad_options_are_one_line_exit_2(tmp_path: Path, replay_logs: tuple[Path, ...], extra: list[str],
                                         message: str) -> None:
    args = ["--annotators", "a,b", *extra]
    done = evalkit(*serve(*map(str, replay_logs[:2]), "--store", str(tmp_path / "s.db"), *args))
    assert done.returncode == 2 and message in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "s.db").exists()


def test_bad_files_are_one_line_exit_2(tmp_path: Path, replay_logs: tuple[Path, ...]) -> None:
    done = evalkit(*serve(str(tmp_path / "nope.jsonl"), str(replay_logs[0]), "--annotators", "a,b",
                          "--store", str(tmp_path / "s.db")))
    assert done.returncode == 2 and "nope.jsonl" in done.stderr and len(done.stderr.strip().splitlines()) == 1
    done = evalkit("human", "report", str(tmp_path / "missing.db"))
    assert done.returncode == 2 and "missing.db: no such vote store" in done.stderr
    done = evalkit(*serve(str(replay_logs[0]), str(replay_logs[0]), "--annotators", "a,b", "--store",
                          str(tmp_path / "s.db")))
    assert done.returncode == 2 and "same model" in done.stderr


def test_export_and_report_with_judge_agreement(tmp_path: Path, replay_logs: tuple[Path, ...]) -> None:
    runs = replay_logs[:2]
    judged = judgment_log(tmp_path, runs, {0: 0, 2: 1, 4: 1, 7: 0})
    db = tmp_path / "s.db"
    assert evalkit(*serve(*map(str, runs), "--store", str(db), "--annotators", "ann1,ann2",
                          "--attention", "0.2")).returncode == 0
    store = VoteStore(db)
    order = list(dict.fromkeys(i["question"] for i in store.items().values()))
    for a in store.assignments():
        n = order.index(store.item(a.item_id)["question"])
        store.submit(Vote(f"{a.annotator}-{a.slot}", a.annotator, a.slot, a.item_id, a.shown, {"choice": PICKS[n]}))
    n_votes = len(store.votes())
    out = tmp_path / "votes.jsonl"
    assert evalkit("human", "export", str(db), "-o", str(out)).returncode == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == n_votes and {r["vote_id"] for r in rows} == {v.vote_id for v in store.votes()}
    assert sum(1 for r in rows if r["attention"]) == 4  # 2 per annotator (20% of 10)
    assert all(r["shown_models"] == [r["models"][i] for i in (0, 1)] or
               r["shown_models"] == [r["models"][i] for i in (1, 0)] for r in rows)
    out_csv = tmp_path / "votes.csv"
    assert evalkit("human", "export", str(db), "-o", str(out_csv), "--format", "csv").returncode == 0
    assert len(list(csv.DictReader(out_csv.open()))) == n_votes
    report = evalkit("human", "report", str(db), "--judgments", str(judged), "--json", "--resamples", "100")
    assert report.returncode == 0, report.stderr
    tables = json.loads(report.stdout)["tables"]
    assert {"win/tie/loss", "bt ratings", "elo ratings", "inter-annotator agreement", "attention checks",
            "human-judge agreement"} <= set(tables)
    assert [r["consistent"] for r in tables["attention checks"]] == [2, 2]  # the same picks every time
    agreement = {r["statistic"]: r for r in tables["human-judge agreement"]}
    assert agreement["agreement with ties"]["n"] == 20  # attention repeats left out
    text = evalkit("human", "report", str(db), "--judgments", str(judged), "--resamples", "100")
    assert "## human-judge agreement" in text.stdout and "agreement without ties" in text.stdout
