"""The frontend's side of the contract in a real browser (Debian's chromium, driven by
Playwright): a page served from another local origin lists, pages, polls, creates and
reruns through the two APIs with plain fetch(), and shows a 401 and a 429 as readable
errors.

What the browser does on its own is checked on the server: the unchanged polls were
answered 304 (the browser revalidated its cached copy with If-None-Match and handed the
script a 200 with the body), and the preflights were cached (one per URL, not per poll).
"""

from __future__ import annotations

import functools
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from google.cloud import firestore as gfirestore
from playwright.sync_api import Browser, sync_playwright

from flokraft_devstack.components import LOG_DIR
from flokraft_devstack.issuer import TestIssuer
from flokraft_devstack.probes import metric_value
from flokraft_devstack.processes import ManagedProcess
from tests.browser.support import VIDEO_ENV, cors_env, video_url
from tests.query_api.conftest import start_query_api
from tests.rerun_api.conftest import start_rerun_api
from tests.rerun_api.support import apply_pubsub, seed

PAGE_DIR = Path(__file__).parent / "page"
SCREENSHOT = LOG_DIR / "browser" / "frontend.png"
CHROMIUM = "/usr/bin/chromium"

SEEDED = 5
PAGE_SIZE = 2
QUIET_POLLS = 10  # unchanged polls in a row, before and after the writes
# Per user and minute on query-api: above what the main user spends, so only the burst
# user (who asks for a missing analysis until refused) gets a 429.
QUERY_RATE_LIMIT = 30


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def static_origin() -> Iterator[str]:
    """The page's own origin: a tiny static server on another port than the APIs."""
    handler = functools.partial(_QuietHandler, directory=str(PAGE_DIR))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install chromium (.ci/run installs it)")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            yield launched
        finally:
            launched.close()


def test_the_unchanged_frontend_gets_304s_cached_preflights_and_readable_errors(
    firestore: ManagedProcess,
    pubsub: ManagedProcess,
    issuer: TestIssuer,
    static_origin: str,
    browser: Browser,
) -> None:
    project = f"browser-{uuid.uuid4().hex[:10]}"
    apply_pubsub(project)
    env = cors_env(static_origin)
    query = start_query_api(
        firestore.host, issuer, project, **env, RATE_LIMIT=f"{QUERY_RATE_LIMIT}/minute"
    )
    rerun = start_rerun_api(project, issuer, **env, **VIDEO_ENV)
    db = gfirestore.Client(project=project)
    user, burst_user = f"alice-{uuid.uuid4().hex[:6]}", f"burst-{uuid.uuid4().hex[:6]}"
    newest = datetime.now(UTC) - timedelta(minutes=1)
    ids = [f"{user}-{i}" for i in range(SEEDED)]
    for i, analysis_id in enumerate(ids):
        seed(db, analysis_id, user=user, timestamp=newest - timedelta(minutes=i))
    try:
        page = browser.new_page(viewport={"width": 1000, "height": 720})
        page.goto(static_origin + "/index.html")
        started = time.monotonic()
        seen = page.evaluate(
            "cfg => window.runScenario(cfg)",
            {
                "queryApi": query.url,
                "rerunApi": rerun.url,
                "token": issuer.token(user),
                "expiredToken": issuer.token(user, now=time.time() - 7200, ttl_seconds=600),
                "burstToken": issuer.token(burst_user),
                "burstMax": QUERY_RATE_LIMIT + 5,
                "videoUrl": video_url(user),
                "pageSize": PAGE_SIZE,
                "quietPolls": QUIET_POLLS,
                "pollIntervalMs": 100,
                "rerunId": ids[0],
            },
        )
        scenario_seconds = time.monotonic() - started
        SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOT), full_page=True)
        shown = page.inner_text("#events")
        page.close()

        served_304 = metric_value(
            query.url, "http_requests_total", handler="/analyses", method="GET", status="304"
        )
        served_200 = metric_value(
            query.url, "http_requests_total", handler="/analyses", method="GET", status="200"
        )
        query_preflights = metric_value(query.url, "http_requests_total", method="OPTIONS")
        rerun_preflights = metric_value(rerun.url, "http_requests_total", method="OPTIONS")
    finally:
        query.stop()
        rerun.stop()
        db.close()

    # Paging: Link and X-Next-Page-Token were readable and agree; every row came once.
    pages = seen["pages"]
    assert [len(p["ids"]) for p in pages] == [2, 2, 1]
    assert [i for p in pages for i in p["ids"]] == ids
    assert all(p["nextToken"] == p["linkToken"] for p in pages)
    assert pages[-1]["nextToken"] is None

    # Polling: the script saw 200 with the whole body every time...
    polls = seen["quietPolls"] + seen["pollAfterCreate"] + seen["pollsAfterRerun"]
    assert {p["status"] for p in polls} == {200}
    assert [p["rows"] for p in seen["quietPolls"]] == [SEEDED] * QUIET_POLLS
    assert [p["rows"] for p in seen["pollsAfterRerun"]] == [SEEDED + 1] * QUIET_POLLS
    assert all(p["etag"] for p in polls)
    # ...while the server sent a body only when the list had changed: the first poll, the
    # one after the create, the first after the rerun (plus the three pages, another URL).
    changed = 3
    assert served_304 == len(polls) - changed, (served_304, len(polls))
    assert served_200 == changed + len(pages)

    # Create and rerun through rerun-api; the list showed both.
    created, again = seen["created"], seen["createdAgain"]
    assert created["status"] == 201
    assert created["location"] == f"/analyses/{created['id']}"
    assert again == {**created, "replayed": True}
    assert seen["pollAfterCreate"][0]["statuses"][created["id"]] == "queued"
    assert seen["rerun"] == {"status": 202, "generation": 2}
    assert seen["pollsAfterRerun"][0]["statuses"][ids[0]] == "queued"
    assert seen["rerunBusy"]["status"] == 409
    assert seen["rerunBusy"]["error"]["code"] == "already_queued"

    # Errors reached the script with their JSON body and headers, and the page shows them.
    unauthenticated, limited = seen["unauthenticated"], seen["limited"]
    assert unauthenticated["status"] == 401
    assert unauthenticated["code"] == "unauthenticated"
    assert "expired" in unauthenticated["message"]
    assert unauthenticated["requestId"]
    assert seen["burst"] == [404] * QUERY_RATE_LIMIT
    assert limited["status"] == 429
    assert limited["code"] == "rate_limited"
    assert 1 <= int(limited["retryAfter"]) <= 60
    for line in ("401 unauthenticated", "404 not_found", "409 already_queued", "429 rate_limited"):
        assert line in shown, shown
    assert f"Retry-After: {limited['retryAfter']} s" in shown

    # Preflights were cached: one per URL and method, not one per request.
    query_urls = len(pages) + 1 + 1  # the pages, the polled list, the missing analysis
    rerun_urls = 1 + 2  # the create (sent twice), two rerun URLs
    query_requests = len(pages) + len(polls) + 1 + len(seen["burst"]) + 1
    assert query_preflights == query_urls, (query_preflights, query_requests)
    assert rerun_preflights == rerun_urls
    assert query_preflights * 10 < query_requests

    print(
        f"\nbrowser: {len(polls)} polls, {served_304:.0f} answered 304 on the server, "
        f"{served_200:.0f} list bodies sent; preflights {query_preflights:.0f} (query-api, "
        f"{query_requests} requests) + {rerun_preflights:.0f} (rerun-api, 4 requests); "
        f"scenario {scenario_seconds:.1f} s; screenshot {SCREENSHOT}"
    )
