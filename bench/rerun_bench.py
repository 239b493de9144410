"""Benchmark of rerun-api's command path against the local stack.

Starts a Firestore emulator, the Pub/Sub emulator, a dev-auth issuer and a real rerun-api
process; seeds analyses in status `done` (50 per user, 10 users) and then, in one run:

1. HTTP: 500 `POST /analyses/{id}/rerun` from 10 concurrent users (50 each, in turn);
2. bare: the same Firestore transaction + publish + marker clear the route performs
   (flokraft_core.analysis_commands.AnalysisCommands, called directly), 500 times, 10 concurrently.

Prints p50/p90/p99/max latency and throughput of each.

    uv run python bench/rerun_bench.py [--per-user 50] [--users 10]   (make bench-rerun)
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import httpx
from google.cloud import firestore
from google.cloud.firestore_v1.base_query import FieldFilter

from flokraft_core.analysis_commands import AnalysisCommands
from flokraft_core.dev.demo_data import demo_analysis
from flokraft_core.job_publisher import JobPublisher
from flokraft_core.pubsub_topology import apply_topology, load_topology
from rerun_api.settings import RerunApiSettings

# The test support (emulator and service processes, dev-auth issuer) lives in tests/.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.support.auth import running_issuer
from tests.support.processes import firestore_emulator, pubsub_emulator, service

COLLECTION = "analyses"


def seed_done(db: firestore.Client, prefix: str, users: int, per_user: int) -> list[list[str]]:
    """Seeds users * per_user analyses in status done; returns the ids per user."""
    rng = random.Random(7)
    now = datetime.now(UTC)
    ids: list[list[str]] = [[] for _ in range(users)]
    batch = db.batch()
    pending = 0
    for index in range(users * per_user):
        _, data = demo_analysis(index, rng, users=users, now=now)
        doc_id = f"{prefix}-{index:05d}"
        data.update(
            status="done",
            processed=True,
            total_score=75.0,
            error=None,
            progress=1.0,
            generation=1,
            publish_pending=False,
        )
        batch.set(db.collection(COLLECTION).document(doc_id), data)
        ids[index % users].append(doc_id)
        pending += 1
        if pending == 200:
            batch.commit()
            batch, pending = db.batch(), 0
    if pending:
        batch.commit()
    return ids


def percentiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    cuts = statistics.quantiles(ordered, n=100, method="inclusive")
    return {"p50": cuts[49], "p90": cuts[89], "p99": cuts[98], "max": ordered[-1]}


def report(name: str, samples_ms: list[float], wall: float) -> None:
    stats = percentiles(samples_ms)
    print(
        f"{name:<34} n={len(samples_ms):>4}  p50={stats['p50']:6.1f} ms  "
        f"p90={stats['p90']:6.1f} ms  p99={stats['p99']:6.1f} ms  max={stats['max']:6.1f} ms  "
        f"{len(samples_ms) / wall:6.1f}/s"
    )


async def http_phase(
    url: str, tokens: list[str], ids: list[list[str]]
) -> tuple[list[float], float]:
    latencies: list[float] = []
    statuses: dict[int, int] = {}

    async def one_user(client: httpx.AsyncClient, token: str, user_ids: list[str]) -> None:
        headers = {"Authorization": f"Bearer {token}"}
        for analysis_id in user_ids:
            started = time.perf_counter()
            response = await client.post(f"/analyses/{analysis_id}/rerun", headers=headers)
            latencies.append((time.perf_counter() - started) * 1000)
            statuses[response.status_code] = statuses.get(response.status_code, 0) + 1

    limits = httpx.Limits(max_connections=len(tokens), max_keepalive_connections=len(tokens))
    async with httpx.AsyncClient(base_url=url, timeout=30, limits=limits) as client:
        started = time.perf_counter()
        await asyncio.gather(*(one_user(client, t, i) for t, i in zip(tokens, ids, strict=True)))
        wall = time.perf_counter() - started
    if statuses != {202: len(latencies)}:
        raise SystemExit(f"HTTP phase: expected only 202s, got {statuses}")
    return latencies, wall


async def bare_phase(
    settings: RerunApiSettings, users: list[str], ids: list[list[str]]
) -> tuple[list[float], float]:
    db = firestore.AsyncClient(project=settings.google_cloud_project)
    publisher = JobPublisher(settings)
    commands = AnalysisCommands(
        db,
        COLLECTION,
        markers_collection=settings.firestore_feed_collection,
        rpc_timeout=settings.firestore_timeout_seconds,
    )
    latencies: list[float] = []
    unconfirmed = 0

    async def one_user(user: str, user_ids: list[str]) -> None:
        nonlocal unconfirmed
        for analysis_id in user_ids:
            started = time.perf_counter()
            queued = await commands.rerun(analysis_id, requested_by=user, admin=False)
            published = await commands.publish_and_clear(
                publisher,
                queued,
                trace_id=None,
                publish_timeout=settings.publish_timeout_seconds,
            )
            latencies.append((time.perf_counter() - started) * 1000)
            unconfirmed += not published

    try:
        started = time.perf_counter()
        await asyncio.gather(*(one_user(u, i) for u, i in zip(users, ids, strict=True)))
        wall = time.perf_counter() - started
    finally:
        publisher.close()
        db.close()
    if unconfirmed:
        raise SystemExit(f"bare phase: {unconfirmed} publishes not confirmed")
    return latencies, wall


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--users", type=int, default=10)
    parser.add_argument("--per-user", type=int, default=50)
    args = parser.parse_args(argv)
    if args.users < 1 or args.per_user < 1:
        parser.error("--users and --per-user must be >= 1")

    project = f"bench-rerun-{uuid.uuid4().hex[:8]}"
    fs = firestore_emulator().start(timeout=60)
    ps = pubsub_emulator().start(timeout=60)
    os.environ["FIRESTORE_EMULATOR_HOST"] = fs.host
    os.environ["PUBSUB_EMULATOR_HOST"] = ps.host
    api = None
    try:
        with tempfile.TemporaryDirectory() as tmp, running_issuer(Path(tmp), "bench") as issuer:
            apply_topology(project, load_topology())
            sync_db = firestore.Client(project=project)
            users = [f"user{i}" for i in range(args.users)]
            warmup = seed_done(sync_db, "warm", args.users, 2)
            http_ids = seed_done(sync_db, "http", args.users, args.per_user)
            bare_ids = seed_done(sync_db, "bare", args.users, args.per_user)
            env = {
                "GOOGLE_CLOUD_PROJECT": project,
                **issuer.env(),
                "RATE_LIMIT": "1000000/minute",
                "MEMORY_LOG_INTERVAL_SECONDS": "3600",
            }
            api = service("rerun-api-bench", "rerun_api.main", env).start(
                ready_path="/readyz", timeout=60
            )
            tokens = [issuer.token(user, ttl_seconds=3600) for user in users]
            settings = RerunApiSettings(google_cloud_project=project)

            asyncio.run(http_phase(api.url, tokens, warmup))
            http_ms, http_wall = asyncio.run(http_phase(api.url, tokens, http_ids))
            bare_ms, bare_wall = asyncio.run(bare_phase(settings, users, bare_ids))

            still_pending = (
                sync_db.collection(COLLECTION)
                .where(filter=FieldFilter("publish_pending", "==", True))
                .count()
                .get()[0][0]
                .value
            )
            sync_db.close()

            total = args.users * args.per_user
            print(
                f"rerun-api benchmark: {total} reruns, {args.users} concurrent users, "
                f"Firestore + Pub/Sub emulators, {os.cpu_count()} cores"
            )
            report("POST /analyses/{id}/rerun (HTTP)", http_ms, http_wall)
            report("bare transaction + publish", bare_ms, bare_wall)
            print(f"publish_pending left set: {still_pending}")
    finally:
        if api is not None:
            api.stop()
        ps.stop()
        fs.stop()


if __name__ == "__main__":
    main()
