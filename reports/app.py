"""The Streamlit leaderboard app: `evalkit ui RUNS_DIR` (or `streamlit run app.py -- RUNS_DIR`).

Logs are read once: the scans (st.cache_resource) are cached under every log's path, size and
mtime, and leaderboards under those stamps plus the chosen options, so interactions re-read
nothing; a changed or new log is picked up on the next interaction (the others then come
from the on-disk index, see frames.py).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import streamlit as st

from evalkit.errors import RunLogError
from evalkit.log import find_logs
from evalkit.metrics.paired import macro_paired_difference
from evalkit.reports import frames
from evalkit.reports.bootstrap import task_matrix
from evalkit.reports.leaderboard import METHODS, Leaderboard, build_leaderboard
from evalkit.reports.plots import figure_png, reliability_figure, subject_bars, subject_table
from evalkit.reports.render import NOT_SIGNIFICANT, fmt, fmt_ci, header, row_cells

VIEWS = ("Leaderboard", "Task drill-down", "Calibration", "Samples", "Compare two models", "Efficiency")
PAGE_SIZE = 20
#: fewer than the CLI's 1000 keeps the first render of 100 large runs within seconds
UI_RESAMPLES = 500
Stamps = tuple[tuple[str, int, int], ...]


def runs_dir() -> Path:
    """$EVALKIT_RUNS_DIR (set by `evalkit ui`), else the script argument, else ./runs."""
    if os.environ.get("EVALKIT_RUNS_DIR"):
        return Path(os.environ["EVALKIT_RUNS_DIR"])
    args = [a for a in sys.argv[1:] if not a.startswith("-")]
    return Path(args[0] if args else "runs")


def log_stamps(root: Path) -> tuple[Stamps, str | None]:
    """(path, size, mtime_ns) of every log: the cache key that notices changed logs."""
    try:
        paths = find_logs(root)
    except RunLogError as exc:
        return (), str(exc)
    stamps = []
    for p in paths:
        try:
            st_ = p.stat()
        except OSError:
            continue
        stamps.append((str(p), st_.st_size, st_.st_mtime_ns))
    return tuple(stamps), None


@st.cache_resource(max_entries=8, show_spinner="Reading run logs…")
def runset_for(stamps: Stamps) -> frames.RunSet:
    """Every log, from the on-disk index where it is current; cached under the logs' stamps."""
    return frames.combine(frames.scan_paths([Path(path) for path, _, _ in stamps]))


@st.cache_resource(max_entries=32, show_spinner="Computing leaderboard…")
def board_for(stamps: Stamps, method: str, sort_by: str) -> Leaderboard:
    return build_leaderboard(runset_for(stamps), method, sort_by=sort_by, resamples=UI_RESAMPLES)


@st.cache_resource(max_entries=64, show_spinner=False)
def disagreement_ids(stamps: Stamps, task: str) -> frozenset[str]:
    """Samples of `task` on which the models that answered them do not all score the same."""
    runs = [r for r in runset_for(stamps).runs if r.task == task]
    matrix = task_matrix(task, runs)
    with np.errstate(all="ignore"):
        answered = np.sum(~np.isnan(matrix.values), axis=0)
        spread = np.nanmax(np.where(np.isnan(matrix.values), -np.inf, matrix.values), axis=0) - \
            np.nanmin(np.where(np.isnan(matrix.values), np.inf, matrix.values), axis=0)
    return frozenset(matrix.sample_ids[(answered >= 2) & (spread > 0)].tolist())


@st.cache_resource(max_entries=64, show_spinner="Paired bootstrap…")
def comparison(stamps: Stamps, model_a: str, model_b: str) -> pd.DataFrame:
    runset = runset_for(stamps)
    rows = []
    for task in runset.tasks:
        run_a, run_b = runset.get(model_a, task), runset.get(model_b, task)
        if run_a is None or run_b is None:
            continue
        matrix = task_matrix(task, [run_a, run_b])
        a, b = matrix.values
        both = ~(np.isnan(a) | np.isnan(b))
        diff = macro_paired_difference([(a, b)], [1.0], resamples=UI_RESAMPLES)
        rows.append({
            "task": task, "shared samples": int(both.sum()),
            f"{model_a}": fmt(float(a[both].mean()) if both.any() else None),
            f"{model_b}": fmt(float(b[both].mean()) if both.any() else None),
            "difference (A − B) [95% CI]": f"{fmt(diff.difference)} {fmt_ci(diff.ci_low, diff.ci_high)}",
            "significant": "yes" if diff.significant else "no",
            "only A right": int(np.sum(both & (a > b))), "only B right": int(np.sum(both & (b > a))),
        })
    return pd.DataFrame(rows)


def show_skipped(runset: frames.RunSet, root_error: str | None) -> None:
    skipped = list(runset.skipped)
    if root_error:
        skipped.insert(0, frames.SkippedLog(str(runs_dir()), root_error))
    if skipped:
        with st.sidebar.expander(f"⚠ {len(skipped)} log{'' if len(skipped) == 1 else 's'} skipped", expanded=True):
            for s in skipped:
                st.caption(s.reason)
    if runset.superseded:
        with st.sidebar.expander(f"{len(runset.superseded)} older runs not used"):
            for s in runset.superseded:
                st.caption(f"{s.path}: {s.reason}")


def view_leaderboard(stamps: Stamps, runset: frames.RunSet) -> None:
    cols = st.columns(2)
    method = cols[0].selectbox("Aggregation method", list(METHODS), format_func=lambda m: f"{m}: {METHODS[m]}")
    sort_by = cols[1].selectbox("Sort by", ["aggregate", *runset.tasks])
    board = board_for(stamps, method, sort_by)
    st.caption(f"Aggregate = **{method}**: {board.description}")
    table = pd.DataFrame([row_cells(board, r) for r in board.rows], columns=header(board))
    st.table(table.set_index("rank"))
    st.caption(f"rank 95%: paired bootstrap over samples within tasks ({board.resamples} resamples). "
               f"vs next: paired difference to the next row on the samples both answered; "
               f"{NOT_SIGNIFICANT} = not significant (95% CI includes 0). Cells: value [95% CI] n.")
    for note in board.notes:
        st.caption(note)


@st.cache_resource(max_entries=256, show_spinner=False)
def subject_table_for(stamps: Stamps, task: str) -> pd.DataFrame:
    return subject_table(runset_for(stamps), task)


@st.cache_resource(max_entries=256, show_spinner="Drawing…")
def subject_bars_png(stamps: Stamps, task: str) -> bytes:
    return figure_png(subject_bars(subject_table_for(stamps, task), f"{task}: accuracy per subject"))


@st.cache_resource(max_entries=1024, show_spinner="Drawing…")
def reliability_png(stamps: Stamps, model: str, task: str) -> bytes | None:
    run = runset_for(stamps).get(model, task)
    fig = reliability_figure(run) if run is not None else None
    return figure_png(fig) if fig is not None else None


def category_table(runset: frames.RunSet, task: str) -> pd.DataFrame:
    """Category × model cells of the headline metric, as each run's summary reports them."""
    cells: dict[str, dict[str, str]] = {}
    for run in (r for r in runset.runs if r.task == task):
        groups = ((run.summary or {}).get("results") or {}).get("categories") or {}
        for name, metrics in groups.items():
            m = metrics.get(run.headline_metric) if isinstance(metrics, dict) else None
            if isinstance(m, dict):
                ci = m.get("ci") or [None, None]
                cells.setdefault(str(name), {})[run.model] = f"{fmt(m.get('value'))} {fmt_ci(*ci)} n={m.get('n')}"
    return pd.DataFrame.from_dict(cells, orient="index").sort_index()


def view_drilldown(stamps: Stamps, runset: frames.RunSet) -> None:
    task = st.selectbox("Task", runset.tasks, key="drill_task")
    table = subject_table_for(stamps, task).copy()
    if table.empty:
        st.info("No scored samples for this task.")
        return
    table["cell"] = [f"{fmt(v)} {fmt_ci(lo, hi)} n={n}" for v, lo, hi, n in
                     zip(table["value"], table["ci_low"], table["ci_high"], table["n"], strict=True)]
    categories = category_table(runset, task)
    if not categories.empty:
        st.subheader(f"{task}: per category (from the run summaries)")
        st.table(categories)
    st.subheader(f"{task}: per subject")
    st.table(table.pivot(index="subtask", columns="model", values="cell"))
    if table["subtask"].nunique() > 1:
        st.image(subject_bars_png(stamps, task))


def view_calibration(stamps: Stamps, runset: frames.RunSet) -> None:
    task = st.selectbox("Task", runset.tasks, key="cal_task")
    runs = [r for r in runset.runs if r.task == task]
    cols = st.columns(min(3, max(1, len(runs))))
    for i, run in enumerate(runs):
        png = reliability_png(stamps, run.model, task)
        with cols[i % len(cols)]:
            if png is None:
                st.caption(f"{run.model}: no confidences recorded")
                continue
            st.image(png)
            ece = ((run.summary or {}).get("results") or {}).get("overall", {}).get("ece_equal_width_15")
            if isinstance(ece, dict):
                st.caption(f"ECE (15 equal-width bins): {fmt(ece.get('value'))} {fmt_ci(*(ece.get('ci') or [None, None]))}")


def _sample_filter_mask(stamps: Stamps, run: frames.RunData, kind: str, subtask: str) -> np.ndarray:
    mask = np.ones(run.ids.size, dtype=bool)
    if subtask != "(all)":
        mask &= run.subtasks == subtask
    if kind == "incorrect (score < 1)":
        mask &= ~np.isnan(run.values) & (run.values < 1)
    elif kind == "failed requests":
        mask &= run.errored
    elif kind == "disagreements between models":
        mask &= np.isin(run.ids, list(disagreement_ids(stamps, run.task)))
    return mask


def view_samples(stamps: Stamps, runset: frames.RunSet) -> None:
    cols = st.columns(4)
    task = cols[0].selectbox("Task", runset.tasks, key="s_task")
    models = [m for m in runset.models if runset.get(m, task) is not None]
    model = cols[1].selectbox("Model", models, key="s_model")
    run = runset.get(model, task)
    if run is None:
        return
    kind = cols[2].selectbox("Show", ["all", "incorrect (score < 1)", "failed requests",
                                      "disagreements between models"], key="s_filter")
    subtask = cols[3].selectbox("Subtask", ["(all)", *sorted(set(run.subtasks.tolist()))], key="s_subtask")
    positions = np.flatnonzero(_sample_filter_mask(stamps, run, kind, subtask))
    pages = max(1, -(-positions.size // PAGE_SIZE))
    page = st.number_input(f"Page (of {pages}; {positions.size} samples)", 1, pages, 1, key="s_page")
    shown = positions[(page - 1) * PAGE_SIZE: page * PAGE_SIZE]
    records = frames.fetch_records(run, shown.tolist())
    st.table(pd.DataFrame([_sample_row(r) for r in records]))
    if records:
        chosen = st.selectbox("Sample details", [r.get("id", "") for r in records], key="s_detail")
        record = next(r for r in records if r.get("id") == chosen)
        st.markdown("**Prompt**")
        st.code(str(record.get("prompt") or record.get("input") or ""), language=None)
        st.markdown("**Responses**")
        st.code(_responses_text(record), language=None)


def _sample_row(record: dict[str, Any]) -> dict[str, Any]:
    score = record.get("score") or {}
    return {"id": record.get("id"), "subtask": record.get("subtask", ""), "target": str(record.get("target")),
            "extracted": str(score.get("extracted")), "score": score.get("value"),
            "error": record.get("error") or ""}


def _responses_text(record: dict[str, Any]) -> str:
    lines = []
    for request, response in zip(record.get("requests") or [], record.get("responses") or [], strict=False):
        what = request.get("continuation") or request.get("kind", "")
        if response.get("text") is not None:
            lines.append(f"{what!s}: {response['text']}")
        elif response.get("logprob") is not None:
            lines.append(f"{what!s}: logprob {response['logprob']:.4f}")
        else:
            lines.append(f"{what!s}: {response.get('error') or response}")
    return "\n".join(lines) or "(no responses)"


def view_compare(stamps: Stamps, runset: frames.RunSet) -> None:
    models = runset.models
    if len(models) < 2:
        st.info("Two models are needed for a comparison.")
        return
    cols = st.columns(2)
    model_a = cols[0].selectbox("Model A", models, index=0, key="c_a")
    model_b = cols[1].selectbox("Model B", models, index=1, key="c_b")
    if model_a == model_b:
        st.info("Pick two different models.")
        return
    table = comparison(stamps, model_a, model_b)
    st.caption("Paired comparison on the samples both models answered: difference of mean scores, "
               f"95% paired bootstrap CI ({UI_RESAMPLES} resamples).")
    st.table(table)


def view_efficiency(runset: frames.RunSet) -> None:
    table = frames.runs_frame(runset)
    if table.empty:
        return
    table["cost_usd"] = table["cost_usd"].map(lambda c: "unknown" if c is None or pd.isna(c) else f"{c:.4f}")
    st.caption("tokens/s = (prompt + completion tokens) / wall seconds of the run; cost when the backend recorded it; "
               "latency percentiles per request; energy and CO2e by Strubell et al.'s formula with measured or "
               "assumed inputs (`evalkit show RUN` names each input's source).")
    st.table(table.drop(columns=["path"]))


def main() -> None:
    st.set_page_config(page_title="evalkit leaderboard", layout="wide")
    st.title("evalkit leaderboard")
    stamps, root_error = log_stamps(runs_dir())
    runset = runset_for(stamps)
    show_skipped(runset, root_error)
    if not runset.runs:
        st.warning(f"No readable run logs under {runs_dir()}.")
        return
    view = st.sidebar.radio("View", VIEWS, key="view")
    st.sidebar.caption(f"{len(runset.runs)} runs · {len(runset.models)} models · {len(runset.tasks)} tasks")
    if view == "Leaderboard":
        view_leaderboard(stamps, runset)
    elif view == "Task drill-down":
        view_drilldown(stamps, runset)
    elif view == "Calibration":
        view_calibration(stamps, runset)
    elif view == "Samples":
        view_samples(stamps, runset)
    elif view == "Compare two models":
        view_compare(stamps, runset)
    else:
        view_efficiency(runset)


main()
