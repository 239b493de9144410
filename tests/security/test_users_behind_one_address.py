"""An office NAT is not one client. 200 signed-in users behind one address poll every 3 s
(as the frontend does) while a bad-token flood comes from the same address; with the
production limits (120/minute per user, 600 failed requests a minute per address) no
signed-in user is ever refused, and the flood is. Real HTTP, one running query-api; the
duration is scaled down to fit a test (12 s of polling)."""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field

import httpx

from flokraft_devstack.issuer import TestIssuer
from flokraft_devstack.processes import ManagedProcess
from tests.query_api.conftest import start_query_api

USERS = 200
POLL_SECONDS = 3.0
RUN_SECONDS = 12.0
FLOOD_WORKERS = 6
FLOOD_MAX_REQUESTS = 1500


@dataclass
class Tally:
    statuses: Counter[int] = field(default_factory=Counter)
    first_429_at: float | None = None
    polls_after_flood_limited: int = 0


async def poll(
    client: httpx.AsyncClient, token: str, stop: float, users: Tally, flood: Tally
) -> None:
    etag: str | None = None
    await asyncio.sleep(random.uniform(0, POLL_SECONDS))  # spread like real tabs
    while time.monotonic() < stop:
        due = time.monotonic() + POLL_SECONDS
        headers = {"Authorization": f"Bearer {token}"}
        if etag:
            headers["If-None-Match"] = etag
        response = await client.get("/analyses", headers=headers)
        users.statuses[response.status_code] += 1
        if flood.first_429_at is not None:
            users.polls_after_flood_limited += 1
        etag = response.headers.get("etag", etag)
        await asyncio.sleep(max(0.0, due - time.monotonic()))


async def bad_tokens(client: httpx.AsyncClient, stop: float, flood: Tally) -> None:
    while time.monotonic() < stop and sum(flood.statuses.values()) < FLOOD_MAX_REQUESTS:
        response = await client.get("/analyses", headers={"Authorization": "Bearer junk"})
        flood.statuses[response.status_code] += 1
        if response.status_code == 429 and flood.first_429_at is None:
            flood.first_429_at = time.monotonic()


async def office(url: str, tokens: list[str]) -> tuple[Tally, Tally]:
    users, flood = Tally(), Tally()
    limits = httpx.Limits(max_connections=USERS + FLOOD_WORKERS + 10)
    async with httpx.AsyncClient(base_url=url, timeout=30, limits=limits) as client:
        stop = time.monotonic() + RUN_SECONDS
        await asyncio.gather(
            *(poll(client, token, stop, users, flood) for token in tokens),
            *(bad_tokens(client, stop - 2, flood) for _ in range(FLOOD_WORKERS)),
        )
    return users, flood


def test_two_hundred_users_behind_one_address_are_never_refused(
    firestore: ManagedProcess, issuer: TestIssuer
) -> None:
    api = start_query_api(
        firestore.host,
        issuer,
        f"nat-{uuid.uuid4().hex[:10]}",
        # The services' defaults, not the tests' generous ones.
        RATE_LIMIT="120/minute",
        RATE_LIMIT_PER_IP="600/minute",
        LOG_LEVEL="WARNING",
    )
    try:
        tokens = [issuer.token(f"office-{n}") for n in range(USERS)]
        users, flood = asyncio.run(office(api.url, tokens))
    finally:
        api.stop()
    print(f"\nsigned-in users: {dict(users.statuses)}; bad-token flood: {dict(flood.statuses)}")
    # Every poll of every signed-in user was answered, none refused.
    assert set(users.statuses) <= {200, 304}, users.statuses
    # Each user polled at least 3 times in 12 s (every 3 s, first one within 3 s).
    assert sum(users.statuses.values()) >= USERS * 3, users.statuses
    # The flood spent the address's budget and was refused from then on, while the users
    # kept being served.
    assert flood.statuses[401] <= 600
    assert flood.statuses[429] > 0, flood.statuses
    assert users.polls_after_flood_limited >= USERS, users.polls_after_flood_limited
