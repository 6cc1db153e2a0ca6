"""Leaderboard → text: a terminal table, Markdown, CSV, JSON (HTML lives in html.py)."""

from __future__ import annotations

import csv
import io
import json
import math

from evalkit.reports.frames import RunSet
from evalkit.reports.leaderboard import Cell, Leaderboard, Row

NOT_SIGNIFICANT = "≈"


def fmt(value: float | None, digits: int = 4) -> str:
    if value is None or not math.isfinite(value):
        return "—"
    return f"{value:.{digits}f}"


def fmt_ci(low: float | None, high: float | None, digits: int = 4) -> str:
    if low is None or high is None or not (math.isfinite(low) and math.isfinite(high)):
        return ""
    return f"[{fmt(low, digits)}, {fmt(high, digits)}]"


def cell_text(cell: Cell | None) -> str:
    if cell is None:
        return "—"
    mark = "*" if cell.source != "summary" else ""
    return f"{fmt(cell.value)}{mark} {fmt_ci(cell.ci_low, cell.ci_high)} n={cell.n}".strip()


def header(board: Leaderboard) -> list[str]:
    return ["rank", "rank 95%", "model", f"{board.method} [95% CI]", *board.tasks, "vs next"]


def row_cells(board: Leaderboard, row: Row) -> list[str]:
    vs_next = ""
    if row.vs_next is not None:
        d = row.vs_next
        vs_next = (f"{NOT_SIGNIFICANT} " if row.tied_with_next else "> ") + \
            f"{fmt(d.difference)} {fmt_ci(d.ci_low, d.ci_high)}"
    return [
        str(row.rank), f"{row.rank_interval[0]}–{row.rank_interval[1]}", row.model,
        f"{fmt(row.aggregate)} {fmt_ci(*row.aggregate_ci)}".strip(),
        *[cell_text(row.cells.get(t)) for t in board.tasks], vs_next,
    ]


def footnotes(board: Leaderboard) -> list[str]:
    lines = [
        f"aggregate: {board.description}",
        f"rows sorted by {board.sort_by}; rank 95%: paired Poisson bootstrap over samples ({board.resamples} resamples)",
        f"vs next: paired difference to the next row on the samples both answered, 95% CI; "
        f"{NOT_SIGNIFICANT} = not significant",
    ]
    if board.method == "win_rate":
        lines.append("for win rate, vs next tests the mean over tasks of the paired differences")
    if any(c.source != "summary" for r in board.rows for c in r.cells.values()):
        lines.append("* recomputed from sample records (the run has no current summary)")
    lines += board.notes
    lines += [f"skipped: {s.reason}" for s in board.skipped]
    lines += [f"not used: {s.path}: {s.reason}" for s in board.superseded]
    return lines


EFFICIENCY_HEADER = ["model", "task", "wall s", "req/s", "prompt tok/s", "gen tok/s", "latency p50 s",
                     "latency p95 s", "kWh", "CO2e kg", "cost $"]


def efficiency_rows(runset: RunSet | None) -> list[list[str]]:
    """One row per used run: the efficiency panel of its summary (— where a run has none)."""
    if runset is None or not runset.runs:
        return []
    rows = []
    for run in runset.runs:
        panel = (run.summary or {}).get("efficiency") or {}
        tokens, latency = panel.get("tokens") or {}, panel.get("latency_seconds") or {}
        energy = panel.get("energy") or {}
        values = [panel.get("wall_seconds"), (panel.get("requests") or {}).get("per_second"),
                  tokens.get("prompt_per_second"), tokens.get("completion_per_second"), latency.get("p50"),
                  latency.get("p95"), energy.get("kwh"), energy.get("co2e_kg"), panel.get("cost_usd")]
        rows.append([run.model, run.task, *(_short(v) for v in values)])
    return rows


def _short(value: object) -> str:
    return f"{value:.3g}" if isinstance(value, (int, float)) and not isinstance(value, bool) else "—"


def _aligned(rows: list[list[str]]) -> list[str]:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return lines


def render_table(board: Leaderboard, runset: RunSet | None = None) -> str:
    lines = _aligned([header(board), *[row_cells(board, r) for r in board.rows]])
    efficiency = efficiency_rows(runset)
    tail = ["", "efficiency per run (energy: Strubell et al.'s formula; `evalkit show LOG` names its inputs)",
            *_aligned([EFFICIENCY_HEADER, *efficiency])] if efficiency else []
    return "\n".join([*lines, "", *footnotes(board), *tail])


def render_markdown(board: Leaderboard, runset: RunSet | None = None) -> str:
    def line(cells: list[str]) -> str:
        return "| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |"

    def table(head: list[str], rows: list[list[str]]) -> list[str]:
        return [line(head), "|" + "|".join("---" for _ in head) + "|", *[line(r) for r in rows]]

    out = table(header(board), [row_cells(board, r) for r in board.rows])
    efficiency = efficiency_rows(runset)
    tail = ["", "Efficiency per run:", "", *table(EFFICIENCY_HEADER, efficiency)] if efficiency else []
    return "\n".join([*out, "", *[f"- {n}" for n in footnotes(board)], *tail])


def render_csv(board: Leaderboard) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    cols = ["rank", "rank_low", "rank_high", "model", "method", "aggregate", "aggregate_ci_low", "aggregate_ci_high"]
    for t in board.tasks:
        cols += [f"{t}:value", f"{t}:ci_low", f"{t}:ci_high", f"{t}:n"]
    writer.writerow([*cols, "vs_next_difference", "vs_next_significant"])
    for r in board.rows:
        values: list[object] = [r.rank, *r.rank_interval, r.model, board.method, r.aggregate, *r.aggregate_ci]
        for t in board.tasks:
            c = r.cells.get(t)
            values += [c.value, c.ci_low, c.ci_high, c.n] if c else ["", "", "", ""]
        values += [r.vs_next.difference, r.vs_next.significant] if r.vs_next else ["", ""]
        writer.writerow(["" if isinstance(v, float) and not math.isfinite(v) else v for v in values])
    return buf.getvalue()


def render(board: Leaderboard, fmt_name: str, runset: RunSet) -> str:
    if fmt_name == "json":
        return json.dumps(board.to_dict(), indent=2, ensure_ascii=False)
    if fmt_name == "csv":
        return render_csv(board)
    if fmt_name == "md":
        return render_markdown(board, runset)
    if fmt_name == "html":
        from evalkit.reports.html_report import render_html

        return render_html(board, runset)
    return render_table(board, runset)
