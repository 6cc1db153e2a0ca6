"""The static HTML report: leaderboard, per-subject bars, reliability diagrams (PNG inline).

Not named html.py: Streamlit puts this folder on sys.path, where that would shadow the stdlib.
"""

from __future__ import annotations

from html import escape

from evalkit.reports.frames import RunSet
from evalkit.reports.leaderboard import Leaderboard
from evalkit.reports.plots import figure_png_base64, reliability_figure, subject_bars, subject_table
from evalkit.reports.render import (
    EFFICIENCY_HEADER,
    NOT_SIGNIFICANT,
    efficiency_rows,
    footnotes,
    header,
    row_cells,
)

STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em; color: #222; }
table { border-collapse: collapse; margin: 1em 0; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 4px 8px; text-align: left; }
th { background: #f0f0f0; }
tr.tied td { background: #fff8e1; }
.note { color: #555; font-size: 0.85em; }
img { max-width: 100%; }
.grid { display: flex; flex-wrap: wrap; gap: 1em; }
"""


def render_html(board: Leaderboard, runset: RunSet) -> str:
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'><title>evalkit leaderboard</title>",
        f"<style>{STYLE}</style></head><body>",
        "<h1>evalkit leaderboard</h1>",
        f"<p>Aggregate: <b>{escape(board.method)}</b> — {escape(board.description)}</p>",
        _table(board),
        "<ul class='note'>" + "".join(f"<li>{escape(n)}</li>" for n in footnotes(board)) + "</ul>",
        _efficiency_table(runset),
    ]
    for task in board.tasks:
        parts.append(f"<h2 id='task-{escape(task)}'>{escape(task)}</h2>")
        parts.append(_subject_section(runset, task))
        parts.append(_reliability_section(runset, task))
    parts.append("</body></html>")
    return "\n".join(parts)


def _table(board: Leaderboard) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in header(board))
    body = []
    for row in board.rows:
        cls = " class='tied'" if row.tied_with_next else ""
        cells = "".join(f"<td>{escape(c)}</td>" for c in row_cells(board, row))
        body.append(f"<tr{cls}>{cells}</tr>")
    legend = f"<p class='note'>Highlighted rows: {NOT_SIGNIFICANT} the difference to the next row is not significant.</p>"
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>{legend}"


def _efficiency_table(runset: RunSet) -> str:
    rows = efficiency_rows(runset)
    if not rows:
        return ""
    head = "".join(f"<th>{escape(h)}</th>" for h in EFFICIENCY_HEADER)
    body = "".join("<tr>" + "".join(f"<td>{escape(c)}</td>" for c in r) + "</tr>" for r in rows)
    return f"<h2>Efficiency per run</h2><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _subject_section(runset: RunSet, task: str) -> str:
    table = subject_table(runset, task)
    if table.empty or table["subtask"].nunique() < 2:
        return "<p class='note'>No per-subject breakdown (a single subtask).</p>"
    fig = subject_bars(table, f"{task}: accuracy per subject")
    return f"<h3>Per subject</h3><img alt='per-subject accuracy of {escape(task)}' " \
           f"src='data:image/png;base64,{figure_png_base64(fig)}'>"


def _reliability_section(runset: RunSet, task: str) -> str:
    images = []
    for run in (r for r in runset.runs if r.task == task):
        fig = reliability_figure(run)
        if fig is not None:
            images.append(f"<img alt='reliability diagram {escape(run.model)}' width='360' "
                          f"src='data:image/png;base64,{figure_png_base64(fig)}'>")
    if not images:
        return "<p class='note'>No confidences in these runs: no reliability diagram.</p>"
    return "<h3>Reliability diagrams (15 equal-width bins)</h3><div class='grid'>" + "".join(images) + "</div>"
