"""Headless Chromium on the annotation app, the leaderboard browser test's way, plus a capture
of every page's HTML and every websocket frame the browser receives (Chrome's performance
log), for the blindness checks."""

from __future__ import annotations

import base64
import json
import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from evalkit.human.cli import streamlit_command, streamlit_env
from tests.reports.test_ui_browser import (
    CHROMEDRIVER,
    CHROMIUM,
    WAIT_S,
    free_port,
    wait_until_healthy,
)

FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage", "--window-size=1400,1400")


@contextmanager
def serve(store: Path, log_dir: Path) -> Iterator[str]:
    """The app on a free port of 127.0.0.1, the way `evalkit human serve` starts it."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with (log_dir / "streamlit.log").open("wb") as log, subprocess.Popen(
            streamlit_command(store, port), env=streamlit_env(store), stdout=log, stderr=subprocess.STDOUT) as proc:
        try:
            wait_until_healthy(url, proc)
            yield url
        finally:
            proc.terminate()  # Streamlit exits on SIGTERM; leaving the block waits for it


class Capture:
    """One browser session; `seen` holds every HTML snapshot, URL and websocket frame."""

    def __init__(self, name: str) -> None:
        if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
            pytest.fail("Chromium and chromedriver are missing: run `bash .ci/setup.sh` (it installs them)")
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service

        options = webdriver.ChromeOptions()
        options.binary_location = str(CHROMIUM)
        for flag in FLAGS:
            options.add_argument(flag)
        profile = Path(os.environ.get("TMPDIR", "/tmp")) / f"evalkit-human-{os.getpid()}-{name}"
        options.add_argument(f"--user-data-dir={profile}")
        options.set_capability("goog:loggingPrefs", {"performance": "ALL"})
        self.driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
        self.name = name
        self.seen: list[str] = []
        #: the decoded websocket frames alone (also in `seen`)
        self.ws: list[str] = []

    def close(self) -> None:
        self.driver.quit()

    def snapshot(self) -> None:
        """The page's HTML and URL, and the websocket frames received since the last call."""
        self.seen.append(self.driver.page_source)
        self.seen.append(self.driver.current_url)
        for entry in self.driver.get_log("performance"):
            message = json.loads(entry["message"])["message"]
            if message.get("method") != "Network.webSocketFrameReceived":
                continue
            response = message["params"]["response"]
            payload = response.get("payloadData", "")
            # opcode 2: a binary (protobuf) frame, which Chrome hands over base64-encoded
            frame = base64.b64decode(payload).decode("utf-8", "replace") if response.get("opcode") == 2 else payload
            self.seen.append(frame)
            self.ws.append(frame)

    def body(self) -> str:
        from selenium.webdriver.common.by import By

        return str(self.driver.find_element(By.TAG_NAME, "body").text)

    def idle(self) -> bool:
        """No script run in progress and no stale element left from the previous run."""
        from selenium.webdriver.common.by import By

        busy = "[data-stale='true'], [data-testid='stStatusWidget'], [data-testid='stSkeleton']"
        return not self.driver.find_elements(By.CSS_SELECTOR, busy)

    def wait_for(self, text: str) -> None:
        """Until `text` is on the page and the page has settled (idle on two polls in a row), so
        a click goes to this run's widgets and not to ones the run is replacing."""
        from selenium.webdriver.support.ui import WebDriverWait

        calm = [0]

        def ready(_: object) -> bool:
            calm[0] = calm[0] + 1 if text in self.body() and self.idle() else 0
            return calm[0] >= 2

        WebDriverWait(self.driver, WAIT_S, poll_frequency=0.25).until(
            ready, message=f"{self.name}: text {text!r} never appeared; page: {self.body()[:300]!r}")
        self.snapshot()

    def button(self, label: str) -> object:
        """The button once it is rendered and enabled (the page streams in element by element)."""
        from selenium.webdriver.common.by import By
        from selenium.webdriver.support import expected_conditions as ec
        from selenium.webdriver.support.ui import WebDriverWait

        xpath = f"//button[.//p[normalize-space()='{label}']]"
        return WebDriverWait(self.driver, WAIT_S, poll_frequency=0.25).until(
            ec.element_to_be_clickable((By.XPATH, xpath)), message=f"no button {label!r}")

    def click_button(self, label: str) -> None:
        self.button(label).click()  # type: ignore[attr-defined]


def leaks(seen: list[str], secrets: list[str]) -> list[str]:
    """The secrets (case-insensitive) that occur anywhere in what the browser received."""
    text = "\n".join(seen).lower()
    return [s for s in secrets if s.lower() in text]
