"""The Streamlit app in a real browser: headless Chromium driven by selenium + chromedriver.

Starts `streamlit run reports/app.py` on 127.0.0.1 over fixture logs (three mock models and
one corrupt log), checks the leaderboard's models and numbers against an independent
recomputation, opens the task drill-down and the sample browser, and saves screenshots
under test-artifacts/ui/.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from evalkit.reports.cli import streamlit_command
from tests.conftest import REPO, SHARED_DATA
from tests.reports.test_reports import make_mock_logs, recompute

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
ARTIFACTS = REPO / "test-artifacts" / "ui"
READY_TIMEOUT_S = 90
WAIT_S = 60

pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until_healthy(url: str, proc: subprocess.Popen[bytes]) -> None:
    """Bounded readiness poll of Streamlit's health endpoint."""
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"streamlit exited early with status {proc.returncode}")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as resp:
                if resp.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.5)
    raise RuntimeError(f"streamlit did not become healthy within {READY_TIMEOUT_S}s")


@pytest.fixture(scope="module")
def ui_runs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    runs = make_mock_logs(tmp_path_factory.mktemp("ui_runs"), SHARED_DATA)
    (runs / "bad").mkdir()
    (runs / "bad" / "broken.jsonl").write_text('{"type": "header", "schema": "evalkit.runlog", "schema_vers\n')
    return runs


@pytest.fixture(scope="module")
def app_url(ui_runs: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    port = free_port()
    env = {**os.environ, "EVALKIT_CACHE_DIR": str(tmp_path_factory.mktemp("ui_cache"))}
    log = (tmp_path_factory.mktemp("ui_log") / "streamlit.log").open("wb")
    proc = subprocess.Popen(streamlit_command(ui_runs, port), env=env, stdout=log, stderr=subprocess.STDOUT)
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


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
        pytest.fail("Chromium and chromedriver are missing: run `bash .ci/setup.sh` (it installs them)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage", "--window-size=1600,1200"):
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={Path(os.environ.get('TMPDIR', '/tmp')) / f'evalkit-ui-{os.getpid()}'}")
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def wait_for_text(driver: object, text: str) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    def present(d: object) -> bool:
        return text in d.find_element(By.TAG_NAME, "body").text  # type: ignore[attr-defined]

    WebDriverWait(driver, WAIT_S, poll_frequency=0.25).until(present, message=f"text {text!r} never appeared")


def wait_for_image(driver: object) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    def loaded(d: object) -> bool:
        images = d.find_elements(By.CSS_SELECTOR, "[data-testid='stMain'] img")  # type: ignore[attr-defined]
        return any(img.get_property("naturalWidth") for img in images)

    WebDriverWait(driver, WAIT_S, poll_frequency=0.25).until(loaded, message="no chart image appeared")


def screenshot(driver: object, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    driver.save_screenshot(str(path))  # type: ignore[attr-defined]
    print(f"screenshot: {path}", file=sys.stderr)
    return path


def open_view(driver: object, label: str) -> None:
    from selenium.webdriver.common.by import By

    xpath = f"//section[@data-testid='stSidebar']//label[.//p[normalize-space()='{label}']]"
    driver.find_element(By.XPATH, xpath).click()  # type: ignore[attr-defined]


def leaderboard_rows(driver: object) -> dict[str, list[str]]:
    from selenium.webdriver.common.by import By

    rows = {}
    for tr in driver.find_elements(By.CSS_SELECTOR, "[data-testid='stTable'] tbody tr"):  # type: ignore[attr-defined]
        cells = [c.text for c in tr.find_elements(By.CSS_SELECTOR, "th, td")]
        rows[cells[2]] = cells
    return rows


def test_leaderboard_drilldown_and_samples_in_a_browser(browser: object, app_url: str, ui_runs: Path) -> None:
    from selenium.webdriver.common.by import By

    expected = recompute(ui_runs / "mock_mock")  # the good logs; bad/ holds the broken one
    browser.get(app_url)  # type: ignore[attr-defined]
    wait_for_text(browser, "mock:seed=3")
    wait_for_text(browser, "Aggregate = mean")
    rows = leaderboard_rows(browser)
    assert set(rows) == {"mock:seed=1", "mock:seed=2", "mock:seed=3"}
    for model, cells in rows.items():
        for col, task in ((4, "ceval"), (5, "mmlu")):
            assert cells[col].startswith(f"{expected[(model, task)]['acc']:.4f}"), (model, task, cells)
            assert f"n={expected[(model, task)]['n']}" in cells[col]
        mean = (expected[(model, "ceval")]["acc"] + expected[(model, "mmlu")]["acc"]) / 2
        assert cells[3].startswith(f"{mean:.4f}")
    body = browser.find_element(By.TAG_NAME, "body").text  # type: ignore[attr-defined]
    assert "1 log skipped" in body and "broken.jsonl" in body
    screenshot(browser, "leaderboard")

    open_view(browser, "Task drill-down")
    wait_for_text(browser, "ceval: per subject")
    wait_for_text(browser, "accountant")
    wait_for_image(browser)  # the per-subject bars with error bars
    screenshot(browser, "drilldown")

    open_view(browser, "Samples")
    wait_for_text(browser, "Sample details")
    wait_for_text(browser, "Prompt")
    first_id = sorted(k for k in expected[("mock:seed=1", "ceval")]["scores"])[0].split("/")[0]
    assert first_id in browser.find_element(By.TAG_NAME, "body").text  # type: ignore[attr-defined]
    screenshot(browser, "samples")
