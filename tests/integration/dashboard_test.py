"""The dashboard in a real browser: Debian's headless Chromium driven by
Selenium (chromedriver) against the four real services on the bundled
sample data. An operator runs the pipeline from the page (the token is asked
for, a wrong one refused with the API's message), sees the run and its
three steps with their times, finds a dead-lettered event and replays it
from the page. DASHBOARD_SCREENSHOT=path writes a screenshot after the run
(docs/img/dashboard.png)."""
import os
import re
import shutil
import urllib.error
import urllib.request

import pytest

from conftest import SOURCE_DIR
from orchestrator_test import call
from pipeline_test import SAMPLE

webdriver = pytest.importorskip("selenium.webdriver")
from selenium.common.exceptions import (NoSuchElementException,  # noqa: E402
                                        StaleElementReferenceException)
from selenium.webdriver.chrome.options import Options  # noqa: E402
from selenium.webdriver.chrome.service import Service as DriverService  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support import expected_conditions  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

TOKEN = "dashboard-token"
SCREENSHOT = os.environ.get("DASHBOARD_SCREENSHOT")
if SCREENSHOT:  # relative to the source tree, wherever ctest runs
    SCREENSHOT = os.path.join(SOURCE_DIR, SCREENSHOT)
# The closed network: without the background-networking flags Chromium
# spends seconds on update checks and sync that never answer.
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                  "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync",
                  "--disable-dev-shm-usage", "--window-size=1280,900"]
TIME = re.compile(r"^\d+(\.\d)? (ms|s)$|^\d+ min \d+ s$")


@pytest.fixture
def browser(tmp_path):
    chromium, driver = shutil.which("chromium"), shutil.which("chromedriver")
    assert chromium and driver, "chromium and chromium-driver are not installed " \
        "(tests/run-all.sh installs them)"
    opts = Options()
    opts.binary_location = chromium
    for flag in CHROMIUM_FLAGS + [f"--user-data-dir={tmp_path / 'profile'}"]:
        opts.add_argument(flag)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    os.environ["SE_OFFLINE"] = "true"  # Selenium Manager: never download a driver
    drv = webdriver.Chrome(service=DriverService(driver), options=opts)
    drv.set_page_load_timeout(30)
    try:
        yield drv
    finally:
        drv.quit()


@pytest.fixture
def services(stack, odata_server):
    srv = odata_server(SAMPLE, "--quiet")
    # One try per attempt, so a source that fails dead-letters within seconds.
    stack.start("odata-sync-worker", {"ODATA_URL": srv.url(), "ODATA_MAX_RETRIES": "0",
                                      "ODATA_MAX_RETRY_WAIT_S": "1"})
    stack.start("virtual-entities-generator")
    stack.start("graph-builder")
    orch = stack.start("orchestrator", {"RETRY_DELAYS_S": "1,2", "SCHEDULE_INTERVAL_S": "0",
                                        "API_TOKEN": TOKEN})
    return srv, orch


def until(drv, what, predicate, timeout=60):
    return WebDriverWait(drv, timeout, poll_frequency=0.2).until(
        lambda d: predicate(d), message=f"waiting for {what}")


def text_of(drv, css):
    """The text of the first match; "" while a poll redraws it."""
    try:
        els = drv.find_elements(By.CSS_SELECTOR, css)
        return els[0].text if els else ""
    except StaleElementReferenceException:
        return ""


def click(drv, css):
    """Clicks the first match, again if a poll redrew it meanwhile."""
    until(drv, f"{css} to be clicked", lambda d: _click(d, css))


def _click(drv, css):
    try:
        drv.find_element(By.CSS_SELECTOR, css).click()
        return True
    except (StaleElementReferenceException, NoSuchElementException):
        return False


def console_errors(drv, allowed=()):
    """SEVERE browser log entries, except the allowed substrings."""
    return [e["message"] for e in drv.get_log("browser")
            if e["level"] == "SEVERE" and not any(a in e["message"] for a in allowed)]


def submit_token(drv, value):
    field = drv.find_element(By.ID, "token-input")
    field.clear()
    field.send_keys(value)
    drv.find_element(By.ID, "token-submit").click()


def test_files_are_served_with_their_type_and_policy(stack):
    orch = stack.start("orchestrator", {"SCHEDULE_INTERVAL_S": "0"})
    opener = urllib.request.build_opener(type("NoRedirect", (urllib.request.HTTPRedirectHandler,),
                                              {"redirect_request": lambda *a, **k: None}))
    try:
        opener.open(orch.url("/"))
        raise AssertionError("/ did not redirect")
    except urllib.error.HTTPError as e:
        assert e.code == 302 and e.headers["Location"] == "/ui/"
    for path, ctype in (("/ui/", "text/html"), ("/ui/app.js", "text/javascript"),
                        ("/ui/app.css", "text/css"), ("/ui/favicon.svg", "image/svg+xml")):
        with urllib.request.urlopen(orch.url(path)) as r:
            assert r.headers["Content-Type"].startswith(ctype), path
            assert "script-src 'self'" in r.headers["Content-Security-Policy"]
            assert r.headers["Cache-Control"] == "no-cache" and r.headers["ETag"]
            etag = r.headers["ETag"]
        req = urllib.request.Request(orch.url(path), headers={"If-None-Match": etag})
        try:
            urllib.request.urlopen(req)
            raise AssertionError(f"{path}: no 304 for its own ETag")
        except urllib.error.HTTPError as e:
            assert e.code == 304
    # The API's JSON answers stay as they were around the dashboard.
    for path in ("/ui/nope.js", "/nope", "/api/v1/nope"):
        status, body, hdrs = call(orch, "GET", path)
        assert status == 404 and body["error"]["code"] == "not_found", path
    status, body, _ = call(orch, "POST", "/ui/")
    assert status == 405
    assert call(orch, "GET", "/healthz")[0] == 200


def test_run_dead_letter_and_replay_in_the_browser(stack, services, browser):
    srv, orch = services
    drv = browser
    # A dead letter whose text is markup: the page must show it as text.
    stack.produce("pipeline.dead-letter", {"n": 1},
                  headers={"x-error": "<b id=injected>bold</b>", "x-worker": "test"})

    drv.get(orch.url("/"))
    assert drv.current_url.endswith("/ui/") and drv.title == "Transit graph pipeline"
    until(drv, "the first poll", lambda d: text_of(d, "#updated").startswith("updated"))
    assert "No run yet." in text_of(drv, "#now-state")
    assert console_errors(drv) == []

    # Run the pipeline: the token is asked for, a wrong one is refused with
    # the API's message, the right one starts the run.
    click(drv, "#run-button")
    dialog = until(drv, "the token prompt", lambda d: d.find_element(By.ID, "token-dialog")
                   if d.find_element(By.ID, "token-dialog").is_displayed() else None)
    assert "needs Authorization" in dialog.find_element(By.ID, "token-reason").text
    assert drv.switch_to.active_element.get_attribute("id") == "token-input"
    submit_token(drv, "not-the-token")
    until(drv, "the refusal", lambda d: "the bearer token is wrong" in text_of(d, "#token-reason"))
    submit_token(drv, TOKEN)
    until(drv, "the run to start", lambda d: "Running the pipeline" in text_of(d, "#notice"))
    assert not drv.find_element(By.ID, "token-dialog").is_displayed()
    run_id = drv.find_element(By.CSS_SELECTOR, "#notice a").get_attribute("title")
    status, runs, _ = call(orch, "GET", "/api/v1/runs?limit=1")
    assert runs["runs"][0]["runId"] == run_id and runs["runs"][0]["trigger"] == "api"
    # Not ticked "remember": nothing is stored in the browser.
    assert drv.execute_script("return localStorage.length") == 0

    # The runs view: the run and its three steps with their times.
    click(drv, "nav a[data-view=runs]")
    row = f"tr[data-run-id='{run_id}']"
    until(drv, "the run to succeed", lambda d: text_of(d, f"{row} .badge") == "succeeded", 120)
    steps = drv.find_elements(By.CSS_SELECTOR, f"{row} .steps-inline li")
    assert [s.get_attribute("data-worker") for s in steps] == [
        "odata-sync-worker", "virtual-entities-generator", "graph-builder"]
    for s in steps:
        assert TIME.match(s.find_element(By.CLASS_NAME, "step-time").text), s.text
    assert len(drv.find_elements(By.CSS_SELECTOR, f"{row} .timeline .bar")) == 3

    # Its detail: every step's time and message, the graph's validation.
    click(drv, f"{row} a")
    until(drv, "the run's detail", lambda d: len(d.find_elements(By.CSS_SELECTOR,
                                                                 "#run-detail tr[data-worker]")) == 3)
    detail = drv.find_element(By.ID, "run-detail").text
    assert "OData sync completed" in detail and "Graph built successfully" in detail
    assert re.search(r"\d+ error\(s\), \d+ warning\(s\)", detail)

    # A source that fails: the forced run's first step dead-letters after
    # its three attempts, and shows up on the page.
    srv.control(mode="fail", status=500)
    status, body, _ = call(orch, "POST", "/api/v1/workers/execute?force=true",
                           headers={"Authorization": f"Bearer {TOKEN}", "Prefer": "respond-async"})
    assert status == 202, body
    failed_run = body["runId"]
    click(drv, "nav a[data-view=dead-letters]")
    dead = "#dl-list tbody tr:first-child"
    until(drv, "the dead letter", lambda d: "odata-sync-worker" in text_of(d, dead), 90)
    assert "500" in text_of(drv, f"{dead} .error-text")
    assert text_of(drv, "#dl-count") == "2"
    # The markup arrived as text.
    assert "<b id=injected>bold</b>" in text_of(drv, "#dl-list")
    assert drv.find_elements(By.ID, "injected") == []
    status, run, _ = call(orch, "GET", f"/api/v1/runs/{failed_run}")
    assert run["run"]["status"] == "failed", run

    # Replay from the page, the source healthy again: the run is reopened
    # and ends well.
    srv.control(mode="normal")
    click(drv, f"{dead} button.replay")
    until(drv, "the replay", lambda d: "replayed to" in text_of(d, "#notice"))
    assert stack.topic("pipeline.trigger") in text_of(drv, "#notice")
    click(drv, "#notice a")
    # The detail on the page is the replayed run's, and it says succeeded
    # once the API does.
    until(drv, "the replayed run to succeed",
          lambda d: failed_run in text_of(d, "#h-run")
          and call(orch, "GET", f"/api/v1/runs/{failed_run}")[1]["run"]["status"] == "succeeded"
          and text_of(d, "#run-detail .badge") == "succeeded", 120)
    status, run, _ = call(orch, "GET", f"/api/v1/runs/{failed_run}")
    assert run["run"]["status"] == "succeeded" and run["run"]["trigger"] == "retry", run

    # Both runs in the list, the replayed one with its steps again.
    click(drv, "nav a[data-view=runs]")
    until(drv, "both runs", lambda d: len(d.find_elements(By.CSS_SELECTOR,
                                                          "#runs-list .timeline")) == 2)
    until(drv, "the replayed run's bars", lambda d: len(d.find_elements(
        By.CSS_SELECTOR, f"tr[data-run-id='{failed_run}'] .bar")) == 3)
    if SCREENSHOT:
        os.makedirs(os.path.dirname(SCREENSHOT), exist_ok=True)
        drv.save_screenshot(SCREENSHOT)

    # A second graph version (graph-builder alone, forced), then the older
    # one rolled back to from the page, through the browser's confirmation.
    status, body, _ = call(orch, "POST", "/api/v1/workers/graph-builder/execute?force=true&wait=60",
                           headers={"Authorization": f"Bearer {TOKEN}"})
    assert status == 200 and body["success"] is True, body
    status, graphs, _ = call(orch, "GET", "/api/v1/graphs")
    older = [g["version"] for g in graphs["graphs"] if not g["active"]][0]
    click(drv, "nav a[data-view=graphs]")
    click(drv, f"#graphs-list tr[data-version='{older}'] button")
    WebDriverWait(drv, 10).until(expected_conditions.alert_is_present()).accept()
    until(drv, "the rollback's notice", lambda d: older in text_of(d, "#notice"))
    status, graphs, _ = call(orch, "GET", "/api/v1/graphs")
    assert [g["version"] for g in graphs["graphs"] if g["active"]] == [older], graphs
    until(drv, "the live badge on the older version",
          lambda d: "live" in text_of(d, f"#graphs-list tr[data-version='{older}']"))

    # A phone's width: nothing wider than the screen.
    drv.set_window_size(390, 844)
    assert drv.execute_script(
        "return document.documentElement.scrollWidth <= window.innerWidth + 1")

    # The only errors the browser saw: the API's 401s to the token prompt.
    assert console_errors(drv, allowed=("status of 401",)) == []
