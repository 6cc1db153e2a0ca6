"""The annotation app: `evalkit human serve` (or `streamlit run app.py` with $EVALKIT_HUMAN_STORE).

`?token=T` opens the annotator's queue at the first slot without a vote; `?page=admin&token=T`
opens the results (the admin token only). No token, an unknown token, or an annotator token
on the admin page: access refused, nothing else rendered.

Blind: a page renders the question and the answers in the slot's recorded order, labelled
A/B (or 1..k); model names, run paths and identities are in the store but never rendered, and
widget keys carry only slot numbers. Each shown slot gets a vote id (kept in the session), so a
double click stores once; a reload shows the same slot again (it has no vote yet) and the store
refuses a second vote for a slot, so nothing is duplicated or lost.
"""

from __future__ import annotations

import os
import time
import uuid
from pathlib import Path
from typing import Any

import pandas as pd
import streamlit as st

from evalkit.human.results import Results, compute_results
from evalkit.human.store import ADMIN, ANNOTATOR, Assignment, Vote, VoteStore
from evalkit.human.study import StudyConfig, study_config

PAIR_CHOICES = (("A is better", "left"), ("B is better", "right"), ("Tie", "tie"), ("Both are bad", "bothbad"))
ANSWER_HEIGHT = 360


def open_store(path: str) -> VoteStore:
    """One connection per browser session: sessions run in threads of their own, and a shared
    connection would interleave their transactions."""
    if st.session_state.get("store_path") != path:
        st.session_state["store"] = VoteStore(Path(path))
        st.session_state["store_path"] = path
    store: VoteStore = st.session_state["store"]
    return store


def refuse(why: str) -> None:
    st.error(f"Access refused: {why}")
    st.stop()


def vote_id(slot: int) -> str:
    """One id per shown slot and page session: a double click resends the same id."""
    key = f"vote_id_{slot}"
    if key not in st.session_state:
        st.session_state[key] = uuid.uuid4().hex
        st.session_state[f"shown_at_{slot}"] = time.time()
    return str(st.session_state[key])


def submit(store: VoteStore, a: Assignment, answer: dict[str, Any], reason: str = "") -> None:
    store.submit(Vote(vote_id(a.slot), a.annotator, a.slot, a.item_id, a.shown, answer, reason,
                      float(st.session_state.get(f"shown_at_{a.slot}", time.time()))))


def show_answer(text: str, config: StudyConfig) -> None:
    # equal-height scroll boxes hide how long each answer is
    box = st.container(height=ANSWER_HEIGHT, border=True) if config.equal_height else st.container(border=True)
    box.markdown(text)


def show_question(item: dict[str, Any]) -> None:
    for i, q in enumerate(item["questions"]):
        st.markdown(f"**Question{f' (turn {i + 1})' if len(item['questions']) > 1 else ''}:** {q}")


def pairwise_page(store: VoteStore, a: Assignment, item: dict[str, Any], config: StudyConfig) -> None:
    turn = int(item["turn"])
    columns = st.columns(2)
    for col, side, index in zip(columns, "AB", a.shown, strict=True):
        with col:
            st.subheader(f"Response {side}")
            show_answer(item["answers"][index][turn - 1], config)

    def on_choice(choice: str) -> None:
        picked = {"left": str(a.shown[0]), "right": str(a.shown[1])}.get(choice, choice)
        submit(store, a, {"choice": picked}, str(st.session_state.get(f"reason_{a.slot}", "")))

    with st.form(key=f"form_{a.slot}"):
        st.text_input("Reason (optional)", key=f"reason_{a.slot}")
        buttons = st.columns(len(PAIR_CHOICES))
        for col, (label, choice) in zip(buttons, PAIR_CHOICES, strict=True):
            col.form_submit_button(label, on_click=on_choice, args=(choice,))


def likert_page(store: VoteStore, a: Assignment, item: dict[str, Any], config: StudyConfig) -> None:
    show_answer(item["answers"][0][int(item["turn"]) - 1], config)
    levels = list(range(1, config.scale + 1))
    ends = {1: "1 (poor)", config.scale: f"{config.scale} (excellent)"}

    def on_submit() -> None:
        ratings = {c: int(st.session_state[f"likert_{a.slot}_{k}"]) for k, c in enumerate(config.criteria)}
        submit(store, a, {"ratings": ratings})

    with st.form(key=f"form_{a.slot}"):
        for k, criterion in enumerate(config.criteria):
            st.select_slider(criterion.capitalize(), options=levels, value=levels[len(levels) // 2],
                             format_func=lambda x: ends.get(x, str(x)), key=f"likert_{a.slot}_{k}")
        st.form_submit_button("Submit ratings", on_click=on_submit)


def ranking_page(store: VoteStore, a: Assignment, item: dict[str, Any], config: StudyConfig) -> None:
    turn, k = int(item["turn"]), len(a.shown)
    for position, index in enumerate(a.shown):
        st.subheader(f"Response {position + 1}")
        show_answer(item["answers"][index][turn - 1], config)

    def on_submit() -> None:
        given = [st.session_state.get(f"rank_{a.slot}_{p}") for p in range(k)]
        if sorted(x for x in given if x is not None) != list(range(1, k + 1)):
            st.session_state["rank_error"] = f"give each rank 1-{k} to exactly one response"
            return
        ranks = [0] * k
        for position, index in enumerate(a.shown):
            ranks[index] = int(given[position])  # type: ignore[arg-type]
        st.session_state.pop("rank_error", None)
        submit(store, a, {"ranks": ranks})

    if st.session_state.get("rank_error"):
        st.error(st.session_state["rank_error"])
    with st.form(key=f"form_{a.slot}"):
        st.caption("Rank the responses: 1 = best")
        for p in range(k):
            st.radio(f"Rank of response {p + 1}", list(range(1, k + 1)), index=None, horizontal=True,
                     key=f"rank_{a.slot}_{p}")
        st.form_submit_button("Submit ranking", on_click=on_submit)


PAGES = {"pairwise": pairwise_page, "likert": likert_page, "ranking": ranking_page}


def annotator_page(store: VoteStore, name: str) -> None:
    config = study_config(store)
    done, total = store.progress(name)
    st.progress(done / total if total else 1.0, text=f"{done} of {total} done")
    a = store.next_assignment(name)
    if a is None:
        st.success("All done: thank you!")
        return
    item = store.item(a.item_id)
    vote_id(a.slot)
    st.caption(f"Item {a.slot + 1} of {total}")
    show_question(item)
    PAGES[config.design](store, a, item, config)


def admin_page(store: VoteStore) -> None:
    st.title("Human evaluation: results")
    results: Results = compute_results(store, resamples=200)
    st.caption(f"design: {results.design} · {results.n_votes} votes · " + " · ".join(results.notes))
    for title, rows in results.tables.items():
        st.subheader(title)
        if rows:
            st.table(pd.DataFrame(rows))
        else:
            st.caption("none")


def main() -> None:
    st.set_page_config(page_title="Human evaluation", layout="wide")
    store = open_store(os.environ.get("EVALKIT_HUMAN_STORE", "human.db"))
    token = st.query_params.get("token")
    who = store.who(token)
    if not token:
        refuse("this page needs your token link")
    if who is None:
        refuse("unknown token")
    assert who is not None
    name, role = who
    if st.query_params.get("page") == "admin":
        if role != ADMIN:
            refuse("the results page needs the admin token")
        admin_page(store)
    elif role == ANNOTATOR:
        annotator_page(store, name)
    else:
        admin_page(store)


main()
