"""The annotation app in headless Chromium (acceptance 1 and 2 of issue 23).

Pairwise: two annotators vote at the same time in two browser sessions on 10 items from two
MT-Bench replay logs; one reloads mid-item (with a half-typed reason), the other double-clicks;
then every vote is in the store exactly once, with the side each clicked mapped to the model it
showed, and no model name, run id or log path is in any HTML, URL or websocket frame either
browser received. Likert (sliders moved by keyboard) and ranking (radio ranks) are driven the same
way, then reported by the admin page and `evalkit human report`.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from evalkit.cli import main
from evalkit.human.store import VoteStore
from evalkit.human.study import admin_token
from evalkit.log import read_log
from tests.human.browser import Capture, leaks, serve
from tests.human.conftest import make_store

pytestmark = pytest.mark.slow
BUTTONS = ("A is better", "B is better", "Tie", "Both are bad")


def secrets_of(runs: tuple[Path, ...]) -> list[str]:
    """What identifies a model: its names, spec, run identity (whole and as in file names), paths."""
    out = ["vicuna", "alpaca", "llama-13b"]
    for path in runs:
        header = read_log(path).header
        out += [str(header.model.get("name")), header.model_spec, header.identity, header.identity[:10],
                path.stem, path.parent.name, str(path)]
    return out


def annotate(cap: Capture, url: str, token: str, n: int, *, reload_at: int = 0, double_click_at: int = 0,
             store: Path | None = None) -> list[str]:
    """Vote every item; returns the button clicked per slot."""
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    clicked = []
    cap.driver.get(f"{url}/?token={token}")
    for k in range(1, n + 1):
        cap.wait_for(f"Item {k} of {n}")
        label = BUTTONS[(k + len(token)) % 4]
        if k == reload_at:
            cap.button(label)  # the form is there
            cap.driver.find_element(By.XPATH, "//input[@aria-label='Reason (optional)']").send_keys("half a rea")
            cap.driver.refresh()
            cap.wait_for(f"Item {k} of {n}")  # the same item again: nothing lost, nothing stored
            assert store is not None and VoteStore(store).progress(cap.name)[0] == k - 1
        if k == double_click_at:
            ActionChains(cap.driver).double_click(cap.button(label)).perform()
        else:
            cap.click_button(label)
        clicked.append(label)
    cap.wait_for("All done")
    return clicked


def test_two_annotators_vote_blind_and_concurrently(tmp_path: Path, replay_logs: tuple[Path, ...]) -> None:
    runs = replay_logs[:2]
    db = tmp_path / "votes.db"
    store = make_store(db, runs, ("ann1", "ann2"), per_item=2, attention=0.0)
    secrets = secrets_of(runs)
    shown_text = " ".join(" ".join(i["questions"] + [t for a in i["answers"] for t in a]) for i in store.items().values())
    assert not leaks([shown_text], secrets), "a fixture answer names a model: the blindness check would be void"
    tokens = store.annotators()
    caps = {name: Capture(name) for name in tokens}
    try:
        with serve(db, tmp_path) as url, ThreadPoolExecutor(2) as pool:
            done = {name: pool.submit(annotate, caps[name], url, tokens[name], 10, store=db,
                                      reload_at=4 if name == "ann1" else 0,
                                      double_click_at=5 if name == "ann2" else 0) for name in tokens}
            clicked = {name: f.result() for name, f in done.items()}
            refused = caps["ann1"]
            refused.driver.get(f"{url}/?page=admin&token={tokens['ann1']}")
            refused.wait_for("Access refused")
            caps["ann2"].snapshot()
            annotator_views = [x for cap in caps.values() for x in cap.seen]
            # a positive control: the answers themselves reach the browser through the captured frames
            first_answer = next(iter(store.items().values()))["answers"][0][0][:60]
            assert any(first_answer in frame for cap in caps.values() for frame in cap.ws)
            admin = caps["ann2"]
            admin.driver.get(f"{url}/?page=admin&token={admin_token(store)}")
            admin.wait_for("win/tie/loss")
            admin_text = admin.body()
        assert leaks(annotator_views, secrets) == []
    finally:
        for cap in caps.values():
            cap.close()
    votes = VoteStore(db).votes()
    assert len(votes) == 20 and len({(v.annotator, v.slot) for v in votes}) == 20
    assignments = {(a.annotator, a.slot): a for a in VoteStore(db).assignments()}
    for v in votes:
        a = assignments[(v.annotator, v.slot)]
        label = clicked[v.annotator][v.slot]
        expected = {"A is better": str(a.shown[0]), "B is better": str(a.shown[1]), "Tie": "tie",
                    "Both are bad": "bothbad"}[label]
        assert v.answer["choice"] == expected and v.item_id == a.item_id
    model_1 = str(read_log(runs[0]).header.model.get("name"))
    assert model_1 in admin_text and "bt ratings" in admin_text  # the admin's page is not blind


def move_slider(cap: Capture, index: int, steps: int) -> None:
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    # the slider's thumb is a visually hidden range input: focus it, then the arrow keys move it
    thumb = cap.driver.find_elements(By.CSS_SELECTOR, "[data-testid='stSlider'] input[type='range']")[index]
    cap.driver.execute_script("arguments[0].focus();", thumb)
    key = Keys.ARROW_RIGHT if steps > 0 else Keys.ARROW_LEFT
    for _ in range(abs(steps)):
        ActionChains(cap.driver).send_keys(key).perform()


def pick_ranks(cap: Capture, ranks: list[int]) -> None:
    from selenium.webdriver.common.by import By

    groups = cap.driver.find_elements(By.CSS_SELECTOR, "[role='radiogroup']")
    for group, rank in zip(groups, ranks, strict=True):
        group.find_element(By.XPATH, f".//label[.//p[normalize-space()='{rank}']]").click()


def test_likert_and_ranking_through_the_browser(tmp_path: Path, replay_logs: tuple[Path, ...],
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    likert_db, ranking_db = tmp_path / "likert.db", tmp_path / "ranking.db"
    likert = make_store(likert_db, replay_logs[:2], ("ann1",), design="likert", per_item=1, limit=2,
                        criteria=("relevance", "helpfulness"), attention=0.0)
    ranking = make_store(ranking_db, replay_logs, ("ann1",), design="ranking", per_item=1, limit=2, attention=0.0)
    cap = Capture("designs")
    try:
        with serve(likert_db, tmp_path) as url:
            cap.driver.get(f"{url}/?token={likert.annotators()['ann1']}")
            for k in range(1, 5):
                cap.wait_for(f"Item {k} of 4")
                move_slider(cap, 0, 1)  # relevance 3 -> 4
                move_slider(cap, 1, -2)  # helpfulness 3 -> 1
                cap.wait_for("1 (poor)")
                cap.click_button("Submit ratings")
            cap.wait_for("All done")
            cap.driver.get(f"{url}/?page=admin&token={admin_token(likert)}")
            cap.wait_for("likert means (1-5)")
        with serve(ranking_db, tmp_path) as url:
            cap.driver.get(f"{url}/?token={ranking.annotators()['ann1']}")
            cap.wait_for("Item 1 of 2")
            cap.click_button("Submit ranking")  # nothing picked: refused, still item 1
            cap.wait_for("give each rank 1-3")
            for k, ranks in ((1, [2, 1, 3]), (2, [3, 2, 1])):
                cap.wait_for(f"Item {k} of 2")
                pick_ranks(cap, ranks)
                cap.click_button("Submit ranking")
            cap.wait_for("All done")
    finally:
        cap.close()
    ratings = [v.answer["ratings"] for v in VoteStore(likert_db).votes()]
    assert ratings == [{"relevance": 4, "helpfulness": 1}] * 4
    votes = VoteStore(ranking_db).votes()
    shown_ranks = [[2, 1, 3], [3, 2, 1]]
    for v, given in zip(votes, shown_ranks, strict=True):  # ranks are stored by model, not by position
        assert [v.answer["ranks"][i] for i in v.shown] == given
    assert main(["human", "report", str(likert_db), "--resamples", "50"]) == 0
    out = capsys.readouterr().out
    assert "likert means (1-5)" in out and "4.0000" in out and "1.0000" in out
    assert main(["human", "report", str(ranking_db), "--resamples", "50"]) == 0
    assert "mean rank (1 = best)" in capsys.readouterr().out
