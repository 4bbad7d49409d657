"""End to end: `tradeoff dashboard` on a seeded store, driven in a real headless Chromium."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import Spawn
from tests.support.processes import stop, tradeoff_argv

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not (os.path.exists(CHROMIUM) and os.path.exists(CHROMEDRIVER)),
        reason="needs Debian's chromium and chromium-driver (apt-get install chromium "
        "chromium-driver)",
    ),
]
WAIT_S = 60


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def dashboard_url(seeded_db: Path, tmp_path: Path, spawn: Spawn) -> Iterator[str]:
    """`tradeoff dashboard` as a user runs it, on a free port of 127.0.0.1."""
    port = free_port()
    log = (tmp_path / "streamlit.log").open("w")
    process = spawn(
        tradeoff_argv(
            "dashboard", "--port", str(port), "--address", "127.0.0.1", "--db", str(seeded_db)
        ),
        stdout=log,
        stderr=subprocess.STDOUT,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + WAIT_S
        while True:
            try:
                if httpx.get(f"{url}/_stcore/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                log.flush()
                pytest.fail(f"dashboard did not start: {(tmp_path / 'streamlit.log').read_text()}")
            time.sleep(0.2)
        yield url
    finally:
        stop(process, timeout_s=20)  # the CLI and the streamlit server it started
        log.close()


@pytest.fixture
def browser(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[object]:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    monkeypatch.setenv("SE_OFFLINE", "true")  # never let Selenium Manager fetch a driver
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--window-size=1400,1100",
        f"--user-data-dir={tmp_path / 'chromium-profile'}",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def test_moving_the_accuracy_control_changes_the_recommendation(
    dashboard_url: str, browser: object, tmp_path: Path
) -> None:
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.remote.webdriver import WebDriver
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    assert isinstance(browser, WebDriver)
    wait = WebDriverWait(browser, WAIT_S)
    browser.get(dashboard_url)
    # A rendered element, not Streamlit's loading skeleton: the recommendation box with text.
    box = (By.CSS_SELECTOR, ".st-key-recommendation")
    wait.until(ec.text_to_be_present_in_element(box, "Recommended:"))
    wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, "[data-testid='stVegaLiteChart']")))
    before = browser.find_element(*box).text
    assert "Recommended: medium" in before and "less cost" in before
    browser.save_screenshot(str(tmp_path / "tradeoffs-before.png"))

    # Drag the slider's thumb past the right end: 100% of the baseline's accuracy.
    control = ".st-key-acc_share"
    thumb = browser.find_element(
        By.CSS_SELECTOR, f"{control} [data-testid='stSliderThumbValue']"
    ).find_element(By.XPATH, "..")
    ActionChains(browser).click_and_hold(thumb).move_by_offset(400, 0).release().perform()
    wait.until(ec.text_to_be_present_in_element(box, "Recommended: large"))
    after = browser.find_element(*box).text
    assert after != before
    assert "keeps 100% of large's accuracy (95% CI 100%–100%) at 0% less cost" in after
    value = browser.find_element(By.CSS_SELECTOR, f"{control} input[type='range']")
    assert value.get_attribute("value") == "100"
    shot = tmp_path / "tradeoffs-after.png"
    browser.save_screenshot(str(shot))
    assert shot.stat().st_size > 10_000
