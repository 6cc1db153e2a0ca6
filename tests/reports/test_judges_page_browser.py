"""The Streamlit judges page in a real browser (the leaderboard's mechanism: headless Chromium,
selenium, chromedriver): over judgment logs made by `evalkit judge`, the ranking with its CIs
and the win-rate matrix match an independent recomputation."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from evalkit.judges.report_tables import battles_of, load_judgment_log
from evalkit.metrics.ranking import rank_with_ci, win_rate_matrix
from tests.judges.test_report_tables import judged  # noqa: F401  (the judgment-log fixture)
from tests.reports.test_ui_browser import (
    browser,
    free_port,
    screenshot,
    wait_for_image,
    wait_for_text,
    wait_until_healthy,
)

__all__ = ["browser"]
pytestmark = pytest.mark.slow
PAGE = Path(__file__).resolve().parents[2] / "reports" / "judges_page.py"


@pytest.fixture(scope="module")
def page_url(judged: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:  # noqa: F811
    port = free_port()
    runs = judged["main-01"].parent
    log = (tmp_path_factory.mktemp("judges_page") / "streamlit.log").open("wb")
    command = [sys.executable, "-m", "streamlit", "run", str(PAGE), "--server.address", "127.0.0.1",
               "--server.port", str(port), "--server.headless", "true", "--browser.gatherUsageStats", "false",
               "--", str(runs)]
    proc = subprocess.Popen(command, env={**os.environ, "EVALKIT_RUNS_DIR": str(runs)}, stdout=log,
                            stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_healthy(url, proc)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def table_rows(driver: object, index: int) -> list[list[str]]:
    from selenium.webdriver.common.by import By

    tables = driver.find_elements(By.CSS_SELECTOR, "[data-testid='stTable']")  # type: ignore[attr-defined]
    return [[c.text for c in tr.find_elements(By.CSS_SELECTOR, "th, td")]
            for tr in tables[index].find_elements(By.CSS_SELECTOR, "tbody tr")]


def test_ranking_with_cis_and_win_rate_matrix(browser: object, page_url: str,  # noqa: F811
                                              judged: dict[str, Path]) -> None:  # noqa: F811
    logs = sorted(Path(judged["main-01"].parent).glob("*.jsonl"))
    battles = battles_of(*(load_judgment_log(p).judgments for p in logs))
    expected = rank_with_ci(battles, resamples=500, seed=0)  # the page's resamples and seed
    matrix = win_rate_matrix(battles)
    browser.get(page_url)  # type: ignore[attr-defined]
    wait_for_text(browser, "Bradley–Terry ratings")
    wait_for_text(browser, expected[-1].name)
    ranking = table_rows(browser, 0)
    assert [row[1] for row in ranking] == [r.name for r in expected]
    for row, r in zip(ranking, expected, strict=True):
        assert row[0] == str(r.rank) and row[2] == f"{r.rating:.1f}"
        assert row[3] == f"[{r.ci_low:.1f}, {r.ci_high:.1f}]" and row[4] == f"{r.rank_low}–{r.rank_high}"
    cells = {row[0]: row[1:] for row in table_rows(browser, 1)}
    models = sorted(matrix)
    assert set(cells) == set(models)
    for model in models:
        want = [f"{100 * matrix[model][c]:.1f}" if c in matrix[model] else "" for c in models]
        assert [c.strip() for c in cells[model]] == want  # an empty cell renders as a space
    wait_for_image(browser)  # the heatmap
    screenshot(browser, "judges_page")
