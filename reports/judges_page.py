"""The Streamlit judges page: rankings of judged models, with CIs, and the win-rate matrix.

`streamlit run reports/judges_page.py -- RUNS_DIR` (or $EVALKIT_RUNS_DIR): every judgment log
under the folder (other logs are skipped) feeds Bradley–Terry and online-Elo ratings with
bootstrap CIs and rank ranges, the model × model win-rate matrix (table and heatmap), and the
win / tie / lose table. The numbers are those of `evalkit judge report`.
"""

from __future__ import annotations

import base64
import os
import sys
from pathlib import Path

import pandas as pd
import streamlit as st

from evalkit.errors import EvalkitError
from evalkit.judges.report import JudgeReport, build_report, ranking_rows, win_rate_heatmap_png
from evalkit.judges.report_tables import JudgmentSource, load_judgment_log
from evalkit.log import find_logs

#: fewer than the CLI's 1000 keeps the first render quick
PAGE_RESAMPLES = 500
RANKING_COLUMNS = ["rank", "model", "rating", "95% CI", "rank range", "battles"]
Stamps = tuple[tuple[str, int, int], ...]


def runs_dir() -> Path:
    if os.environ.get("EVALKIT_RUNS_DIR"):
        return Path(os.environ["EVALKIT_RUNS_DIR"])
    args = [a for a in sys.argv[1:] if not a.startswith("-")]
    return Path(args[0] if args else "runs")


def log_stamps(root: Path) -> Stamps:
    """(path, size, mtime_ns) of every log: the cache key that notices changed logs."""
    try:
        paths = find_logs(root)
    except EvalkitError:
        return ()
    out = []
    for p in paths:
        try:
            stat = p.stat()
        except OSError:
            continue
        out.append((str(p), stat.st_size, stat.st_mtime_ns))
    return tuple(out)


@st.cache_resource(max_entries=8, show_spinner="Reading judgment logs…")
def report_for(stamps: Stamps, anchor: str | None) -> tuple[JudgeReport | None, int]:
    """The report over every judgment log, and how many other logs were skipped."""
    sources: list[JudgmentSource] = []
    skipped = 0
    for path, _, _ in stamps:
        try:
            sources.append(load_judgment_log(Path(path)))
        except EvalkitError:
            skipped += 1
    if not sources:
        return None, skipped
    return build_report(sources, anchor=anchor, resamples=PAGE_RESAMPLES), skipped


def ranking_frame(report: JudgeReport, method: str) -> pd.DataFrame:
    assert report.rankings is not None
    rated = report.rankings.bt if method == "Bradley–Terry" else report.rankings.elo
    return pd.DataFrame(ranking_rows(rated), columns=RANKING_COLUMNS).set_index("rank")


def matrix_frame(report: JudgeReport) -> pd.DataFrame:
    assert report.rankings is not None
    matrix = report.rankings.win_rates
    models = sorted(matrix)
    cells = [[f"{100 * matrix[r][c]:.1f}" if c in matrix[r] else "" for c in models] for r in models]
    return pd.DataFrame(cells, index=models, columns=models)


def main() -> None:
    st.set_page_config(page_title="evalkit judges", layout="wide")
    st.title("Judges: rankings and win rates")
    root = runs_dir()
    stamps = log_stamps(root)
    first = report_for(stamps, None)[0]
    models = sorted(first.rankings.win_rates) if first and first.rankings else []
    anchor = st.sidebar.selectbox("Anchor (rated 1000)", ["mean of all models", *models])
    method = st.sidebar.radio("Rating", ["Bradley–Terry", "Online Elo"])
    report, skipped = report_for(stamps, None if anchor == "mean of all models" else anchor)
    if skipped:
        st.sidebar.caption(f"{skipped} log(s) that are not judgment logs skipped")
    if report is None or report.rankings is None:
        st.info(f"No pairwise or reference judgments under {root}.")
        return
    where = f"anchor {report.anchor} = 1000" if report.anchor else "mean rating = 1000"
    st.subheader(f"{method} ratings (95% bootstrap CI, {where}; {report.rankings.battles} battles)")
    st.table(ranking_frame(report, method))
    st.subheader("Win-rate matrix (row vs column, %, ties half)")
    st.table(matrix_frame(report))
    png = win_rate_heatmap_png(report.rankings.win_rates)
    if png:
        st.image(base64.b64decode(png))
    st.subheader("Win / tie / lose (model vs baseline, all questions)")
    st.table(pd.DataFrame([{"model": r.model, "baseline": r.baseline, "win": r.wins, "tie": r.ties,
                            "lose": r.losses, "n": r.n} for r in report.win_tie_lose if r.question_set == "all"]))
    with st.expander("Judgment logs"):
        for source in report.sources:
            st.caption(source)


main()
