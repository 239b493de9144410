"""The live demo page in a real headless browser (Debian's chromium through chromedriver):
it signs in with a dev token, lists the analyses and shows a new one from the stream
without polling. The screenshot in docs/images/ comes from this test
(`SAVE_DEMO_SCREENSHOT=docs/images/events-demo.png`)."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.common.exceptions import TimeoutException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from flokraft_devstack.issuer import TestIssuer
from flokraft_devstack.processes import ManagedProcess
from flokraft_devstack.settings import REPO_ROOT
from tests.query_api.conftest import QueryApi, analysis_doc, running_query_api
from tests.query_api.test_events import write_change

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"


@pytest.fixture(scope="module")
def demo_api(firestore: ManagedProcess, issuer: TestIssuer) -> Iterator[QueryApi]:
    with running_query_api(firestore.host, issuer, EVENTS_DEMO_PAGE="true") as it:
        yield it


@pytest.fixture
def browser() -> Iterator[webdriver.Chrome]:
    if not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()):
        pytest.fail("chromium and chromium-driver (Debian) are needed: see .ci/run")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1100,700"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def text(driver: webdriver.Chrome, element_id: str) -> str:
    return str(driver.find_element(By.ID, element_id).text)


def wait_for(
    driver: webdriver.Chrome, condition: Callable[[webdriver.Chrome], bool], what: str
) -> None:
    try:
        WebDriverWait(driver, 20, poll_frequency=0.05).until(condition)
    except TimeoutException:
        raise AssertionError(
            f"waited 20 s for {what}; status {text(driver, 'status')!r}, "
            f"page log:\n{text(driver, 'log')}\nrows: {rows(driver)}\n"
            f"console: {driver.get_log('browser')}"
        ) from None


def rows(driver: webdriver.Chrome) -> list[str]:
    # Read in one script: the page replaces its rows as events arrive.
    found: list[str] = driver.execute_script(
        "return [...document.querySelectorAll('#analyses tbody tr')].map((r) => r.innerText)"
    )
    return found


def test_the_demo_page_lists_and_updates_live(
    demo_api: QueryApi, browser: webdriver.Chrome, uid: str
) -> None:
    write_change(demo_api.db, uid, f"{uid}-1", analysis_doc(uid, 1, dance_type="salsa"))
    write_change(demo_api.db, uid, f"{uid}-2", analysis_doc(uid, 2, dance_type="bachata"))

    browser.get(demo_api.url + "/demo/events")
    # What `make token uid=...` prints in the local profile; here the test issuer's token.
    field = browser.find_element(By.ID, "token")
    field.send_keys(demo_api.issuer.token(uid))
    browser.find_element(By.ID, "signin-button").click()
    wait_for(browser, lambda d: len(rows(d)) == 2, "the two analyses listed")
    wait_for(browser, lambda d: "live (version 2)" in text(d, "status"), "the stream live")
    polls_before = list_requests(demo_api, uid)

    # A new analysis, written as the write path writes it: the page shows it from the
    # stream's `changed` event, not from a poll (it polls only when the stream is down).
    committed = time.monotonic()
    write_change(
        demo_api.db,
        uid,
        f"{uid}-3",
        analysis_doc(uid, 3, dance_type="kizomba", status="running", total_score=None),
    )
    wait_for(browser, lambda d: any("kizomba" in row for row in rows(d)), "the new analysis")
    shown_after = time.monotonic() - committed
    assert shown_after < 3, shown_after
    assert "live (version 3)" in browser.find_element(By.ID, "status").text
    time.sleep(0.5)  # the access log line is written once the response is done
    assert list_requests(demo_api, uid) == polls_before + 1  # one refetch, on the event

    target = os.environ.get("SAVE_DEMO_SCREENSHOT")
    if target:
        time.sleep(0.3)
        path = REPO_ROOT / target
        path.parent.mkdir(parents=True, exist_ok=True)
        assert browser.save_screenshot(str(path))


def list_requests(api: QueryApi, uid: str) -> int:
    return sum(
        1
        for line in api.log_lines()
        if line.get("event") == "request"
        and line.get("path") == "/analyses"
        and line.get("user") == uid
    )


def test_the_demo_page_is_off_by_default(api: QueryApi) -> None:
    assert api.get("/demo/events").status_code == 404
    assert api.get("/demo/events-client.js").status_code == 404


def test_the_docs_show_the_client_the_page_uses() -> None:
    script = (REPO_ROOT / "services/query-api/src/query_api/demo_page/events-client.js").read_text()
    docs = (REPO_ROOT / "docs/architecture.md").read_text()
    assert f"```js\n{script}```" in docs
