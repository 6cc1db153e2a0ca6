"""`evalkit judge report`: every table of judges/report_tables.py for a set of judgment logs,
rendered as a terminal table, Markdown, JSON or one self-contained HTML page (with the
win-rate matrix as a heatmap)."""

from __future__ import annotations

import base64
import dataclasses
import html
import io
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from evalkit.errors import ConfigError
from evalkit.judges.report_tables import (
    AgreementRow,
    JudgmentSource,
    LengthControlledRow,
    Rankings,
    ScoreRatioRow,
    WinTieLoseRow,
    agreements,
    battles_of,
    length_controlled,
    rankings,
    score_ratios,
    win_tie_lose,
)
from evalkit.metrics.ranking import RatedModel

FORMATS = ("table", "md", "json", "html")
Table = tuple[str, list[str], list[list[str]]]  # title, header, rows


@dataclass(frozen=True)
class JudgeReport:
    sources: list[str]
    rankings: Rankings | None
    win_tie_lose: list[WinTieLoseRow]
    score_ratios: list[ScoreRatioRow]
    length_controlled: list[LengthControlledRow]
    agreements: list[AgreementRow]
    anchor: str | None


def build_report(sources: Sequence[JudgmentSource], *, baselines: Sequence[str] | None = None,
                 difficulty: Mapping[str, float] | None = None, anchor: str | None = None,
                 resamples: int = 1000, seed: int = 0) -> JudgeReport:
    judgments = [j for s in sources for j in s.judgments]
    sets = [s.judgments for s in sources]
    return JudgeReport(
        sources=[f"{s.path} (judge {s.judge}, {len(s.judgments)} judgments)" for s in sources],
        rankings=rankings(battles_of(*sets), resamples=resamples, seed=seed, anchor=anchor),
        win_tie_lose=win_tie_lose(*sets),
        score_ratios=score_ratios(judgments, baselines, resamples=resamples, seed=seed),
        length_controlled=length_controlled(judgments, difficulty, resamples=resamples, seed=seed),
        agreements=agreements(sources) if len(sources) > 1 else [],
        anchor=anchor,
    )


def _f(value: float, digits: int = 1) -> str:
    return "—" if value is None or math.isnan(value) else f"{value:.{digits}f}"


def _pct(part: int, n: int) -> str:
    return f"{part} ({100 * part / n:.1f}%)" if n else str(part)


def ranking_rows(rated: Sequence[RatedModel]) -> list[list[str]]:
    return [[str(r.rank), r.name, _f(r.rating), f"[{_f(r.ci_low)}, {_f(r.ci_high)}]", f"{r.rank_low}–{r.rank_high}",
             str(r.battles)] for r in rated]


def tables(report: JudgeReport) -> list[Table]:
    out: list[Table] = []
    anchor = f"anchor {report.anchor} = 1000" if report.anchor else "mean rating = 1000"
    if report.rankings:
        head = ["rank", "model", "rating", "95% CI", "rank range", "battles"]
        out.append((f"Bradley–Terry (MLE, ties half, Elo points, {anchor}; {report.rankings.battles} battles)", head,
                    ranking_rows(report.rankings.bt)))
        out.append((f"Online Elo (K=4, in log order; {anchor})", head, ranking_rows(report.rankings.elo)))
        models = sorted(report.rankings.win_rates)
        out.append(("Win-rate matrix (row vs column, ties half)", ["model", *models],
                    [[m, *(_f(100 * report.rankings.win_rates[m][c]) if c in report.rankings.win_rates[m] else ""
                           for c in models)] for m in models]))
    if report.win_tie_lose:
        out.append(("HuatuoGPT-style win / tie / lose (model vs baseline, per question set)",
                    ["model", "baseline", "question set", "win", "tie", "lose", "n"],
                    [[r.model, r.baseline, r.question_set, _pct(r.wins, r.n), _pct(r.ties, r.n), _pct(r.losses, r.n),
                      str(r.n)] for r in report.win_tie_lose]))
    if report.score_ratios:
        out.append(("Vicuna relative score (Σ model rating / Σ baseline rating, %) and Phoenix performance ratio "
                    "(the same) with beat rate",
                    ["model", "baseline", "category", "relative score", "95% CI", "totals", "beat rate", "95% CI",
                     "tie rate", "n"],
                    [[r.model, r.baseline, r.category, _f(r.ratio), f"[{_f(r.ci_low)}, {_f(r.ci_high)}]",
                      f"{r.model_total:g} / {r.baseline_total:g}", _f(100 * r.beat_rate),
                      f"[{_f(100 * r.beat_ci_low)}, {_f(100 * r.beat_ci_high)}]", _f(100 * r.tie_rate), str(r.n)]
                     for r in report.score_ratios]))
    if report.length_controlled:
        out.append(("AlpacaEval length-controlled win rate (%)",
                    ["model", "baseline", "LC win rate", "SE", "bootstrap 95% CI", "win rate", "n", "variant"],
                    [[r.model, r.baseline, _f(r.lc_win_rate, 2), _f(r.standard_error, 2),
                      f"[{_f(r.ci_low, 2)}, {_f(r.ci_high, 2)}]", _f(r.win_rate, 2), str(r.n), r.variant]
                     for r in report.length_controlled]))
    if report.agreements:
        out.append(("Agreement between judgment logs (MT-Bench's w/ tie and w/o tie; Cohen's κ)",
                    ["first", "second", "n", "agreement w/ tie", "w/o tie", "n w/o tie", "Cohen's κ"],
                    [[r.first, r.second, str(r.n), _f(r.agreement_with_ties, 3), _f(r.agreement_without_ties, 3),
                      str(r.n_without_ties), _f(r.cohen_kappa, 3)] for r in report.agreements]))
    return out


def _plain(title: str, head: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in [head, *rows]]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join([title, *lines])


def _markdown(title: str, head: list[str], rows: list[list[str]]) -> str:
    def line(cells: list[str]) -> str:
        return "| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |"
    return "\n".join([f"### {title}", "", line(head), line(["---"] * len(head)), *map(line, rows)])


def _html_table(title: str, head: list[str], rows: list[list[str]]) -> str:
    cells = "".join(f"<th>{html.escape(h)}</th>" for h in head)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in r) + "</tr>" for r in rows)
    return f"<h2>{html.escape(title)}</h2><table><thead><tr>{cells}</tr></thead><tbody>{body}</tbody></table>"


def to_json(report: JudgeReport) -> dict[str, Any]:
    return dataclasses.asdict(report)


def render(report: JudgeReport, fmt: str) -> str:
    parts = tables(report)
    sources = "\n".join(f"- {s}" for s in report.sources)
    if fmt == "json":
        return json.dumps(to_json(report), indent=2, default=str, allow_nan=True)
    if fmt == "md":
        return "\n\n".join([f"## Judge report\n\n{sources}", *(_markdown(*t) for t in parts)]) + "\n"
    if fmt == "html":
        return _html_page(report, parts)
    return "\n\n".join([f"judge report\n{sources}", *(_plain(*t) for t in parts)])


def _html_page(report: JudgeReport, parts: list[Table]) -> str:
    heatmap = ""
    if report.rankings:
        png = win_rate_heatmap_png(report.rankings.win_rates)
        if png:
            heatmap = f'<h2>Win-rate matrix</h2><img alt="win-rate matrix" src="data:image/png;base64,{png}">'
    sources = "".join(f"<li>{html.escape(s)}</li>" for s in report.sources)
    style = "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:2px 6px}"
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>judge report</title><style>{style}</style>"
            f"</head><body><h1>Judge report</h1><ul>{sources}</ul>{''.join(_html_table(*t) for t in parts)}"
            f"{heatmap}</body></html>\n")


def win_rate_heatmap(matrix: Mapping[str, Mapping[str, float]]) -> Any:
    """A matplotlib Figure of the matrix (row's win rate vs column, %), or None without matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        from matplotlib.figure import Figure
    except ImportError:
        return None
    models = sorted(matrix)
    values = [[100 * matrix[r][c] if c in matrix[r] else math.nan for c in models] for r in models]
    fig = Figure(figsize=(1.2 + 0.7 * len(models), 1 + 0.6 * len(models)))
    ax = fig.subplots()
    image = ax.imshow(values, cmap="RdBu", vmin=0, vmax=100)
    ax.set_xticks(range(len(models)), models, rotation=45, ha="right")
    ax.set_yticks(range(len(models)), models)
    for i, row in enumerate(values):
        for k, v in enumerate(row):
            if not math.isnan(v):
                ax.text(k, i, f"{v:.0f}", ha="center", va="center", fontsize=8)
    ax.set_title("win rate of row vs column (%)")
    fig.colorbar(image, ax=ax)
    fig.tight_layout()
    return fig


def win_rate_heatmap_png(matrix: Mapping[str, Mapping[str, float]]) -> str | None:
    fig = win_rate_heatmap(matrix)
    if fig is None:
        return None
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def read_difficulty(path: Path) -> dict[str, float]:
    """Per-question difficulty: a JSON object {question id: value}, or a CSV with a header
    naming `instruction_difficulty` and `id` (evalkit's question id) or `instruction` (its text,
    keyed like the alpaca_eval task: a hash of the instruction)."""
    import csv

    from evalkit.types import stable_hash

    if not path.is_file():
        raise ConfigError(f"--difficulty {path}: no such file")
    try:
        if path.suffix == ".json":
            raw = json.loads(path.read_text(encoding="utf-8"))
            if not isinstance(raw, dict):
                raise ConfigError(f"--difficulty {path}: expected a JSON object {{question id: difficulty}}")
            return {str(k): float(v) for k, v in raw.items()}
        with path.open(newline="", encoding="utf-8") as fh:
            rows = list(csv.DictReader(fh))
        if not rows or "instruction_difficulty" not in rows[0] or not ({"id", "instruction"} & set(rows[0])):
            raise ConfigError(f"--difficulty {path}: a CSV needs columns instruction_difficulty and id or instruction")
        return {(row["id"] if "id" in row else stable_hash(row["instruction"], 12)): float(row["instruction_difficulty"])
                for row in rows}
    except (ValueError, TypeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"--difficulty {path}: {exc}") from None
