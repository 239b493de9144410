"""The list ETag made from the per-user change marker: an unchanged poll answers 304 after
reading one document, through real HTTP on the emulator.

These tests bump markers the way the analysis write path does (`bump_marker` in the same
batch as the change); tests/e2e/test_change_markers_follow_writes.py drives the real
writers (rerun-api, the analyzer)."""

from __future__ import annotations

import subprocess
import sys
import time
import uuid
from collections.abc import Iterator

import httpx
import pytest
from google.cloud import firestore as gfirestore

from flokraft_core.store.change_markers import bump_marker, marker_id
from flokraft_devstack.issuer import TestIssuer
from flokraft_devstack.probes import metric_value
from flokraft_devstack.processes import ManagedProcess, wait_until
from tests.query_api.conftest import COLLECTION, QueryApi, Writer, analysis_doc, running_query_api

FEEDS = "analysis_feeds"


def reads(api_url: str, route: str = "/analyses") -> float:
    return metric_value(api_url, "firestore_documents_read_total", service="query-api", route=route)


def change(
    db: gfirestore.Client, owner: str, doc_id: str, fields: dict[str, object] | None = None
) -> None:
    """A list-visible write with its marker bump, atomically (as the write path does)."""
    batch = db.batch()
    ref = db.collection(COLLECTION).document(doc_id)
    if fields:
        batch.set(ref, fields, merge=True)
    bump_marker(batch, db.collection(FEEDS), owner)
    batch.commit()


def poll(api: QueryApi, uid: str, etag: str | None, **params: object) -> httpx.Response:
    headers = {"If-None-Match": etag} if etag else {}
    return api.get("/analyses", uid, params=dict(params), headers=headers)


def test_unchanged_poll_answers_304_after_reading_one_document(
    api: QueryApi, write: Writer, uid: str
) -> None:
    ids = write(uid, 3)
    change(api.db, uid, ids[-1])

    first = poll(api, uid, None)
    assert first.status_code == 200
    etag = first.headers["etag"]
    assert etag.startswith('W/"m1.')
    assert first.headers["cache-control"] == "private, no-cache"
    assert first.headers["vary"] == "Authorization"

    before = reads(api.url)
    second = poll(api, uid, etag)
    assert second.status_code == 304
    assert second.content == b""
    assert second.headers["etag"] == etag
    assert reads(api.url) - before == 1  # the marker, and no list query


def test_a_full_page_costs_the_marker_and_the_page(api: QueryApi, write: Writer, uid: str) -> None:
    write(uid, 4)
    change(api.db, uid, f"{uid}-x", analysis_doc(uid, 9))
    before = reads(api.url)
    assert poll(api, uid, None, limit=2).status_code == 200
    # 1 marker + limit + 1 rows (the extra row says whether a next page exists).
    assert reads(api.url) - before == 1 + 3


def test_a_change_makes_the_next_poll_200_and_leaves_other_users_alone(
    api: QueryApi, write: Writer, uid: str
) -> None:
    other = f"{uid}-other"
    ids = write(uid, 2)
    other_ids = write(other, 2)
    change(api.db, uid, ids[0])
    change(api.db, other, other_ids[0])
    mine = poll(api, uid, None).headers["etag"]
    theirs = poll(api, other, None).headers["etag"]

    change(api.db, uid, ids[0], {"status": "failed", "processed": False})

    after = poll(api, uid, mine)
    assert after.status_code == 200
    assert {r["id"]: r["status"] for r in after.json()}[ids[0]] == "failed"
    assert after.headers["etag"] != mine
    assert after.headers["etag"].startswith('W/"m2.')
    assert poll(api, other, theirs).status_code == 304


def test_the_tag_is_bound_to_filters_limit_and_page(api: QueryApi, write: Writer, uid: str) -> None:
    ids = write(uid, 3)
    change(api.db, uid, ids[0])
    etag = poll(api, uid, None).headers["etag"]
    assert poll(api, uid, etag, limit=2).status_code == 200
    assert poll(api, uid, etag, status="done").status_code == 200
    assert poll(api, uid, etag, analysis_type="solo").status_code == 200
    assert poll(api, uid, etag).status_code == 304
    # Another user cannot reuse it either (their marker may even be at the same version).
    other = f"{uid}-b"
    change(api.db, other, write(other, 1)[0])
    assert poll(api, other, etag).status_code == 200


def test_a_user_without_a_marker_gets_body_etags(api: QueryApi, write: Writer, uid: str) -> None:
    write(uid, 3)  # documents as the old backend wrote them: no marker
    first = poll(api, uid, None)
    etag = first.headers["etag"]
    assert not etag.startswith("W/")
    before = reads(api.url)
    assert poll(api, uid, etag).status_code == 304
    assert reads(api.url) - before == 1 + 3  # the marker miss, then the whole page


def test_forged_or_garbled_tags_are_not_honoured(api: QueryApi, write: Writer, uid: str) -> None:
    ids = write(uid, 1)
    change(api.db, uid, ids[0])
    etag = poll(api, uid, None).headers["etag"]
    version, issued, digest = etag.removeprefix('W/"m').rstrip('"').split(".")
    future = f'W/"m{version}.{int(issued, 16) + 3600:x}.{digest}"'
    for tag in [future, 'W/"m1.zz.00"', 'W/"m"', '"m1"', etag.replace(digest, "0" * len(digest))]:
        assert poll(api, uid, tag).status_code == 200, tag


def test_oversized_or_unusual_versions_are_tags_that_do_not_match(
    api: QueryApi, write: Writer, uid: str
) -> None:
    # Issue 21: a 5,000-digit "version" made the list answer 500 (Python refuses int() past
    # 4,300 digits). A version is at most 19 ASCII digits; anything else never matches.
    ids = write(uid, 1)
    change(api.db, uid, ids[0])
    etag = poll(api, uid, None).headers["etag"]
    _version, issued, digest = etag.removeprefix('W/"m').rstrip('"').split(".")
    for tag in [
        f'W/"m{"9" * 5000}.1.x"',
        f'W/"m{"1" * 5000}.{issued}.{digest}"',
        f'W/"m{"0" * 20}1.{issued}.{digest}"',  # 21 digits, numerically the version
        f'W/"m\u0661.{issued}.{digest}"',  # an Arabic-Indic digit one
        f'W/"m1.{"f" * 5000}.{digest}"',
        ", ".join([f'W/"m{"7" * 4400}.1.x"'] * 3),  # within the header bound
    ]:
        headers = {**api.issuer.headers(uid), "If-None-Match": tag.encode()}  # bytes: UTF-8
        response = httpx.get(api.url + "/analyses", headers=headers, timeout=30)
        assert response.status_code == 200, (tag[:40], response.status_code, response.text[:200])


def test_admin_list_keeps_body_etags(api: QueryApi, write: Writer, uid: str) -> None:
    ids = write(uid, 2)
    change(api.db, uid, ids[0])
    response = api.get("/admin/analyses", "ops", admin=True, params={"user_id": uid})
    etag = response.headers["etag"]
    assert not etag.startswith("W/")
    again = api.get(
        "/admin/analyses",
        "ops",
        admin=True,
        params={"user_id": uid},
        headers={"If-None-Match": etag},
    )
    assert again.status_code == 304


@pytest.fixture
def short_lived_tags(firestore: ManagedProcess, issuer: TestIssuer) -> Iterator[QueryApi]:
    with running_query_api(firestore.host, issuer, LIST_ETAG_MAX_AGE_SECONDS="2") as it:
        yield it


def test_a_tag_older_than_the_max_age_is_not_honoured(short_lived_tags: QueryApi) -> None:
    api, uid = short_lived_tags, "ageing"
    doc_id = "ageing-1"
    api.db.collection(COLLECTION).document(doc_id).set(analysis_doc(uid, 1))
    change(api.db, uid, doc_id)
    etag = poll(api, uid, None).headers["etag"]
    assert poll(api, uid, etag).status_code == 304
    # A write that bypassed the services: no marker bump.
    api.db.collection(COLLECTION).document(doc_id).update({"total_score": 12.0})
    time.sleep(3)
    response = poll(api, uid, etag)
    assert response.status_code == 200
    assert response.json()[0]["total_score"] == 12.0


def test_backfill_creates_markers_for_users_who_have_none(
    api: QueryApi, write: Writer, uid: str, firestore: ManagedProcess
) -> None:
    legacy, marked = f"{uid}-legacy", f"{uid}-marked"
    write(legacy, 3)
    change(api.db, marked, write(marked, 1)[0])
    change(api.db, marked, f"{marked}-0")
    assert not poll(api, legacy, None).headers["etag"].startswith("W/")

    env = {"GOOGLE_CLOUD_PROJECT": api.project, "FIRESTORE_EMULATOR_HOST": firestore.host}
    run = subprocess.run(
        [sys.executable, "-m", "flokraft_core.store.change_markers", "backfill"],
        env={**env, "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert "created" in run.stdout

    feeds = api.db.collection(FEEDS)
    assert (feeds.document(marker_id(legacy)).get().to_dict() or {})["version"] == 1
    # An existing marker is left as it was.
    assert (feeds.document(marker_id(marked)).get().to_dict() or {})["version"] == 2
    etag = poll(api, legacy, None).headers["etag"]
    assert etag.startswith('W/"m1.')
    assert poll(api, legacy, etag).status_code == 304


def test_unusual_user_ids_get_a_valid_marker_document() -> None:
    assert marker_id("abc123") == "abc123"
    for odd in ["__x__", ".", "..", "a/b", "~uabc"]:
        derived = marker_id(odd)
        assert derived != odd
        assert derived.startswith("~u")
        assert marker_id(odd) == derived  # stable


# --- the listener ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def feed_api(firestore: ManagedProcess, issuer: TestIssuer) -> Iterator[QueryApi]:
    with running_query_api(firestore.host, issuer, LIST_ETAG_FROM_FEED="true") as it:
        yield it


def test_with_the_listener_an_unchanged_poll_reads_nothing(feed_api: QueryApi) -> None:
    api, uid = feed_api, f"l{uuid.uuid4().hex[:8]}"
    doc_id = f"{uid}-1"
    change(api.db, uid, doc_id, analysis_doc(uid, 1))
    assert wait_until(lambda: poll(api, uid, None).headers["etag"].startswith('W/"m1.'), 10)
    etag = poll(api, uid, None).headers["etag"]

    before = reads(api.url)
    for _ in range(5):
        assert poll(api, uid, etag).status_code == 304
    assert reads(api.url) - before == 0

    change(api.db, uid, doc_id, {"status": "failed"})
    # The change shows as soon as the listener delivers it.
    assert wait_until(lambda: poll(api, uid, etag).status_code == 200, 5, interval=0.05)
    assert poll(api, uid, etag).json()[0]["status"] == "failed"
