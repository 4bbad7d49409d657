"""End to end: `tradeoff dashboard` on a seeded store, driven in a real headless Chromium.

Every page is opened and photographed (full height) into a folder the run names: the
`TRADEOFF_SCREENSHOTS` folder when set (CI keeps it as an artifact; benchmarks/results/
screenshots/ holds a set for reviewers), else `screenshots/` in pytest's temporary folder,
printed at the end of the run.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import Spawn
from tests.support.processes import stop, tradeoff_argv
from tradeoff.evals.store import Store
from tradeoff.policies.artifact import load_artifact

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
SCREENSHOTS_ENV = "TRADEOFF_SCREENSHOTS"
# url path -> what the page shows once it has drawn itself
PAGES = {
    "": "Recommended:",
    "models_tasks": "Consistency:",
    "policy_detail": "Serve it",
    "loop": "Versions and what each promotion changed",
    "traffic": "Buckets of",
    "requests": "requests match",
    "review": "requests wait for a review",
    "eval_browser": "items match",
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def screenshots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    chosen = os.environ.get(SCREENSHOTS_ENV)
    folder = Path(chosen) if chosen else tmp_path_factory.mktemp("screenshots", numbered=False)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


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
def browser(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
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
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    driver.execute_cdp_cmd(
        "Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads)}
    )
    driver.downloads = downloads  # type: ignore[attr-defined]
    try:
        yield driver
    finally:
        driver.quit()


def wait_for(browser: Any, text: str) -> None:
    """Until the page shows `text` and every chart on it is drawn."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    wait = WebDriverWait(browser, WAIT_S)
    main = (By.CSS_SELECTOR, "[data-testid='stMain']")
    wait.until(ec.text_to_be_present_in_element(main, text))
    wait.until(
        lambda d: all(
            chart.find_elements(By.CSS_SELECTOR, "canvas, svg")
            for chart in d.find_elements(By.CSS_SELECTOR, "[data-testid='stVegaLiteChart']")
            if chart.is_displayed()  # a chart in a tab not chosen is drawn when chosen
        )
    )
    time.sleep(1.0)  # the rest of the run and Vega's last paint


def photograph(browser: Any, folder: Path, name: str) -> Path:
    """The whole page, however long: the window is stretched to it first."""
    height = browser.execute_script(
        "return document.querySelector('[data-testid=\"stMain\"]').scrollHeight"
    )
    browser.set_window_size(1400, max(1100, int(height) + 120))
    time.sleep(0.5)
    path = folder / f"{name}.png"
    browser.save_screenshot(str(path))
    browser.set_window_size(1400, 1100)
    assert path.stat().st_size > 20_000, path
    return path


def metric_values(browser: Any) -> dict[str, tuple[str, str]]:
    """{label: (value, delta)} of every st.metric on the page."""
    from selenium.webdriver.common.by import By

    out = {}
    for metric in browser.find_elements(By.CSS_SELECTOR, "[data-testid='stMetric']"):
        label = metric.find_element(By.CSS_SELECTOR, "[data-testid='stMetricLabel']").text
        value = metric.find_element(By.CSS_SELECTOR, "[data-testid='stMetricValue']").text
        deltas = metric.find_elements(By.CSS_SELECTOR, "[data-testid='stMetricDelta']")
        out[label.strip()] = (value.strip(), deltas[0].text.strip() if deltas else "")
    return out


def test_every_page_draws_and_is_photographed(
    dashboard_url: str, browser: Any, screenshots: Path
) -> None:
    for path, ready in PAGES.items():
        browser.get(f"{dashboard_url}/{path}")
        wait_for(browser, ready)
        photograph(browser, screenshots, path or "tradeoffs")
        errors = browser.find_elements("css selector", "[data-testid='stException']")
        assert not errors, (path, [e.text for e in errors])
    print(f"\nscreenshots of every page: {screenshots}")


def test_moving_the_accuracy_control_changes_the_recommendation(
    dashboard_url: str, browser: Any, screenshots: Path
) -> None:
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    wait = WebDriverWait(browser, WAIT_S)
    browser.get(dashboard_url)
    box = (By.CSS_SELECTOR, ".st-key-recommendation")
    wait_for(browser, "Recommended:")
    before = browser.find_element(*box).text
    assert "Recommended: keep large" in before and "on average only" in before

    # Drag the slider's thumb far left: 50% of the baseline's accuracy.
    control = ".st-key-acc_share"
    thumb = browser.find_element(
        By.CSS_SELECTOR, f"{control} [data-testid='stSliderThumbValue']"
    ).find_element(By.XPATH, "..")
    ActionChains(browser).click_and_hold(thumb).move_by_offset(-400, 0).release().perform()
    wait.until(ec.text_to_be_present_in_element(box, "Recommended: small"))
    after = browser.find_element(*box).text
    assert re.search(r"small keeps \d+% of large's accuracy \(95% CI \d+%–\d+%\)", after)
    value = browser.find_element(By.CSS_SELECTOR, f"{control} input[type='range']")
    assert value.get_attribute("value") == "50"
    wait_for(browser, "Recommended: small")
    photograph(browser, screenshots, "tradeoffs-at-50-percent")


def test_policy_detail_offers_the_serve_command_and_the_files(
    dashboard_url: str, browser: Any, seeded_db: Path
) -> None:
    from selenium.webdriver.common.by import By

    browser.get(f"{dashboard_url}/policy_detail")
    # The command's code block may draw after the panel's caption (whose inline code names
    # the policy too): wait for the command itself, and read the code block, not the caption.
    wait_for(browser, "tradeoff serve --policy")
    panel = browser.find_element(By.CSS_SELECTOR, ".st-key-serve_detail")
    command = panel.find_element(By.CSS_SELECTOR, "[data-testid='stCode'] code").text.strip()
    match = re.fullmatch(
        rf"tradeoff serve --policy (\S+) --config models\.yaml --db {re.escape(str(seeded_db))}",
        command,
    )
    assert match, command
    name = match.group(1)
    with Store(seeded_db).connect(read_only=True) as con:
        version = con.execute(
            "SELECT e.version FROM policy_events e WHERE e.name = ? AND e.event = 'promoted' "
            "ORDER BY e.seq DESC LIMIT 1",
            [name],
        ).fetchone()[0]
    buttons = [
        b
        for b in panel.find_elements(By.CSS_SELECTOR, "[data-testid='stDownloadButton'] button")
        if b.text  # not the help tooltip's
    ]
    assert [b.text for b in buttons] == [
        f"Download the policy file ({name}-v{version}.json)",
        "Download a models.yaml stub",
    ]
    for button in buttons:
        button.click()
    downloads: Path = browser.downloads
    deadline = time.monotonic() + WAIT_S
    wanted = [downloads / f"{name}-v{version}.json", downloads / "models.yaml"]

    def downloaded() -> bool:
        # Chromium reserves a download's name with an empty file, writes a .crdownload beside
        # it and renames that over it when done: done = no .crdownload and both non-empty.
        partial = any(p.name.endswith(".crdownload") for p in downloads.iterdir())
        return not partial and all(p.exists() and p.stat().st_size > 0 for p in wanted)

    while not downloaded():
        assert time.monotonic() < deadline, list(downloads.iterdir())
        time.sleep(0.2)
    artifact = load_artifact(downloads / f"{name}-v{version}.json")
    assert (artifact.name, artifact.policy_version) == (name, version)
    stub = (downloads / "models.yaml").read_text()
    assert all(f"model_name: {m}" in stub for m in artifact.models), stub
    assert json.loads(artifact.to_json())["name"] == name


def test_traffic_savings_are_the_request_logs_own(
    dashboard_url: str, browser: Any, seeded_db: Path
) -> None:
    """Savings over the requests that have a baseline, pass-through traffic beside them."""
    browser.get(f"{dashboard_url}/traffic")
    wait_for(browser, "Buckets of")
    with Store(seeded_db).connect(read_only=True) as con:
        rows = con.execute("SELECT policy, cost_usd, baseline_cost_usd FROM requests").fetchall()
    assert any(policy is None for policy, _, _ in rows)  # pass-through traffic is present
    paired = [(c, b) for _, c, b in rows if c is not None and b is not None]
    spend, base = sum(c for c, _ in paired), sum(b for _, b in paired)
    shown = metric_values(browser)
    assert shown["Saved vs baseline"][0] == f"${base - spend:,.4f}"
    assert shown["Saved vs baseline"][1] == f"{1 - spend / base:.1%} less"
    assert shown["Pass-through spend"][0] == (
        f"${sum(c or 0 for p, c, _ in rows if p is None):,.4f}"
    )
    assert shown["Requests"][0] == f"{len(rows):,}"


def test_the_review_page_lists_the_queue_oldest_first(
    dashboard_url: str, browser: Any, screenshots: Path
) -> None:
    from selenium.webdriver.common.by import By

    browser.get(f"{dashboard_url}/review")
    wait_for(browser, "3 requests wait for a review")
    wait_for(browser, "Submit verdict")  # the form, last on the page, is drawn too
    wait_for(browser, "Integrate x^2 from 0 to 3.")
    photograph(browser, screenshots, "review")
    main = browser.find_element(By.CSS_SELECTOR, "[data-testid='stMain']").text
    assert "Submit verdict" in main and "Corrected answer" in main
    # The oldest waiting request is the one offered for a verdict, its prompt and draft shown.
    assert "Integrate x^2 from 0 to 3." in main and "Draft answer (by" in main
    grid = browser.find_element(By.CSS_SELECTOR, "[data-testid='stDataFrame']")
    assert grid.size["height"] > 100 and grid.size["width"] > 600  # drawn, not collapsed
