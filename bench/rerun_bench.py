"""Benchmark of rerun-api's command path against the local stack.

Starts a Firestore emulator, the Pub/Sub emulator, a dev-auth issuer and a real rerun-api
process; seeds analyses in status `done` (50 per user, 10 users) and then, in one run, for
creates, reruns, cancels and deletes, each in two arms:

1. HTTP: `POST /analyses` (each with its own Idempotency-Key, as a client should send),
   `POST /analyses/{id}/rerun` (without one), then `POST /analyses/{id}/cancel` and
   `DELETE /analyses/{id}` of the analyses just rerun (queued), 500 each from 10
   concurrent users (50 each, in turn), against the process;
2. bare: the same command the route runs (rerun_api.commands.AnalysisCommands
   create/rerun with the active cap, the create with its key's record and derived id,
   then publish_and_clear; rerun_api.lifecycle.AnalysisLifecycle cancel and
   delete, the delete with the idempotency records), called directly, 500 times, 10
   concurrently.

Per arm: p50/p90/p99/max latency, throughput, CPU per request (the rerun-api process's
for HTTP, this process's for bare; the emulator's for both) and Firestore documents read
and written per request, as the emulator counted them (tools/firestore-emulator prints its
counts on SIGUSR2). The outbox's scan is switched off so that only requests are counted.
The target: the HTTP path's throughput at least 0.75x the bare command's for creates and
reruns (cancels and deletes are reported beside them).

    uv run python bench/rerun_bench.py [--per-user 50] [--users 10]   (make bench-rerun)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import statistics
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

import psutil
from google.cloud import firestore
from google.cloud.firestore_v1.base_query import FieldFilter

from flokraft_core.dev.demo_data import demo_analysis
from flokraft_core.messaging.publisher import JobPublisher
from flokraft_core.messaging.topology import apply_topology, load_topology
from flokraft_core.store.document import AnalysisType, list_item_from_document
from flokraft_devstack.components import firestore_emulator, pubsub_emulator, service
from flokraft_devstack.issuer import running_issuer
from flokraft_devstack.processes import ManagedProcess
from rerun_api.commands import AnalysisCommands, NewAnalysis, QueuedAnalysis
from rerun_api.idempotency import IdempotencyStore, StoredAnswer, body_hash
from rerun_api.lifecycle import AnalysisLifecycle
from rerun_api.settings import RerunApiSettings

COLLECTION = "analyses"
# Every user creates and reruns all their analyses at once here; the cap is still checked
# on each request (its cost is part of the measurement), never reached.
CAP = 1_000_000


def seed_done(
    db: firestore.Client, prefix: str, users: list[str], per_user: int
) -> list[list[str]]:
    """Seeds per_user analyses in status done for each user; returns the ids per user."""
    rng = random.Random(7)
    now = datetime.now(UTC)
    ids: list[list[str]] = [[] for _ in users]
    batch = db.batch()
    pending = 0
    for index in range(len(users) * per_user):
        _, data = demo_analysis(index, rng, users=len(users), now=now)
        doc_id = f"{prefix}-{index:05d}"
        data.update(
            user_id=users[index % len(users)],
            status="done",
            processed=True,
            total_score=75.0,
            error=None,
            progress=1.0,
            generation=1,
            publish_pending=False,
        )
        batch.set(db.collection(COLLECTION).document(doc_id), data)
        ids[index % len(users)].append(doc_id)
        pending += 1
        if pending == 200:
            batch.commit()
            batch, pending = db.batch(), 0
    if pending:
        batch.commit()
    return ids


def create_body(user: str, n: int) -> dict[str, object]:
    return {
        "video_url": f"gs://flokraft-videos/{user}/clip-{n}.mp4",
        "dance_type": "salsa",
        "dancers": ["lead", "follow"],
        "analysis_type": "couple",
    }


def percentiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    cuts = statistics.quantiles(ordered, n=100, method="inclusive")
    return {"p50": cuts[49], "p90": cuts[89], "p99": cuts[98], "max": ordered[-1]}


class FirestoreCounts:
    """The emulator's own counts of documents read and written (see transactions.mjs)."""

    def __init__(self, emulator: ManagedProcess) -> None:
        self._emulator = emulator

    def read(self) -> dict[str, int]:
        assert self._emulator.process is not None
        log = self._emulator.log_path
        before = log.stat().st_size
        os.kill(self._emulator.process.pid, signal.SIGUSR2)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with log.open("rb") as handle:
                handle.seek(before)
                for line in handle.read().decode(errors="replace").splitlines():
                    if line.startswith('{"firestore_stats"'):
                        counts: dict[str, int] = json.loads(line)["firestore_stats"]
                        return counts
            time.sleep(0.05)
        raise SystemExit("the Firestore emulator did not print its counts")


@dataclass
class Arm:
    name: str
    latencies_ms: list[float]
    wall: float
    cpu_ms: float  # of the serving process (HTTP) or of the command's caller (bare)
    emulator_cpu_ms: float
    counts: dict[str, int]
    # This process's CPU during an HTTP arm: the load generator's (0 for bare arms, where
    # this process is the caller measured above).
    client_cpu_ms: float = 0.0

    @property
    def n(self) -> int:
        return len(self.latencies_ms)

    @property
    def throughput(self) -> float:
        return self.n / self.wall

    def per_request(self, key: str) -> float:
        return self.counts.get(key, 0) / self.n

    def merged(self, other: Arm) -> Arm:
        return Arm(
            self.name,
            self.latencies_ms + other.latencies_ms,
            self.wall + other.wall,
            self.cpu_ms + other.cpu_ms,
            self.emulator_cpu_ms + other.emulator_cpu_ms,
            {
                k: self.counts.get(k, 0) + other.counts.get(k, 0)
                for k in {*self.counts, *other.counts}
            },
            self.client_cpu_ms + other.client_cpu_ms,
        )

    def line(self) -> str:
        stats = percentiles(self.latencies_ms)
        return (
            f"{self.name:<22} n={self.n:>4}  p50={stats['p50']:6.1f}  p90={stats['p90']:6.1f}  "
            f"p99={stats['p99']:6.1f}  max={stats['max']:6.1f} ms  {self.throughput:6.1f}/s  "
            f"cpu={self.cpu_ms / self.n:5.2f} ms/req  "
            f"emulator cpu={self.emulator_cpu_ms / self.n:5.2f} ms/req  "
            f"client cpu={self.client_cpu_ms / self.n:5.2f} ms/req  "
            f"reads={self.per_request('reads'):4.2f}  writes={self.per_request('writes'):4.2f}  "
            f"aborted={self.counts.get('aborted', 0)}"
        )


def cpu_ms(process: psutil.Process) -> float:
    times = process.cpu_times()
    return (times.user + times.system) * 1000


async def measure(
    name: str,
    run: Callable[[], Awaitable[list[float]]],
    serving: psutil.Process,
    emulator: psutil.Process,
    counts: FirestoreCounts,
) -> Arm:
    counts_before = counts.read()
    this = psutil.Process()
    cpu_before, emulator_before, this_before = cpu_ms(serving), cpu_ms(emulator), cpu_ms(this)
    started = time.perf_counter()
    latencies = await run()
    wall = time.perf_counter() - started
    cpu_after, emulator_after, this_after = cpu_ms(serving), cpu_ms(emulator), cpu_ms(this)
    counts_after = counts.read()
    return Arm(
        name,
        latencies,
        wall,
        cpu_after - cpu_before,
        emulator_after - emulator_before,
        {key: counts_after[key] - counts_before.get(key, 0) for key in counts_after},
        0.0 if serving.pid == this.pid else this_after - this_before,
    )


class Connection:
    """A minimal HTTP/1.1 keep-alive client, one per simulated user: the load generator
    shares the two cores with the service and the emulators, so it must cost little
    (httpx took 1.6 ms of CPU per request here, a quarter of what the service spends)."""

    def __init__(self, url: str) -> None:
        parsed = urlsplit(url)
        self._host, self._port = parsed.hostname or "127.0.0.1", parsed.port or 80
        self._streams: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None

    async def post(self, path: str, headers: dict[str, str], body: bytes = b"") -> int:
        return await self.request("POST", path, headers, body)

    async def request(
        self, method: str, path: str, headers: dict[str, str], body: bytes = b""
    ) -> int:
        """Sends one request and reads the whole answer; returns its status."""
        if self._streams is None:
            self._streams = await asyncio.open_connection(self._host, self._port)
        reader, writer = self._streams
        head = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
        writer.write(
            f"{method} {path} HTTP/1.1\r\nHost: {self._host}\r\nContent-Length: {len(body)}\r\n"
            f"{head}\r\n".encode()
            + body
        )
        status = int((await reader.readline()).split(b" ", 2)[1])
        length, close = 0, False
        while (line := await reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.decode("latin-1").partition(":")
            if name.lower() == "content-length":
                length = int(value)
            elif name.lower() == "connection" and value.strip().lower() == "close":
                close = True
        await reader.readexactly(length)
        if close:
            self.close()
        return status

    def close(self) -> None:
        if self._streams is not None:
            self._streams[1].close()
            self._streams = None


def http_creates(
    url: str, tokens: dict[str, str], numbers: range, tag: str
) -> Callable[[], Awaitable[list[float]]]:
    async def run() -> list[float]:
        latencies: list[float] = []
        statuses: dict[int, int] = {}

        async def one_user(client: Connection, user: str) -> None:
            for n in numbers:
                headers = {
                    "Authorization": f"Bearer {tokens[user]}",
                    "Idempotency-Key": f"{tag}-{user}-{n}",
                    "Content-Type": "application/json",
                }
                body = json.dumps(create_body(user, n)).encode()
                started = time.perf_counter()
                status = await client.post("/analyses", headers, body)
                latencies.append((time.perf_counter() - started) * 1000)
                statuses[status] = statuses.get(status, 0) + 1

        await _concurrently(url, tokens, one_user)
        if statuses != {201: len(latencies)}:
            raise SystemExit(f"HTTP creates: expected only 201s, got {statuses}")
        return latencies

    return run


def http_per_analysis(
    url: str,
    tokens: dict[str, str],
    ids: dict[str, list[str]],
    method: str,
    path: str,
    expect: int,
) -> Callable[[], Awaitable[list[float]]]:
    """`method path` (`{id}` in it: the analysis) for each of every user's analyses."""

    async def run() -> list[float]:
        latencies: list[float] = []
        statuses: dict[int, int] = {}

        async def one_user(client: Connection, user: str) -> None:
            headers = {"Authorization": f"Bearer {tokens[user]}"}
            for analysis_id in ids[user]:
                started = time.perf_counter()
                status = await client.request(method, path.format(id=analysis_id), headers)
                latencies.append((time.perf_counter() - started) * 1000)
                statuses[status] = statuses.get(status, 0) + 1

        await _concurrently(url, tokens, one_user)
        if statuses != {expect: len(latencies)}:
            raise SystemExit(f"HTTP {method} {path}: expected only {expect}s, got {statuses}")
        return latencies

    return run


def http_reruns(
    url: str, tokens: dict[str, str], ids: dict[str, list[str]]
) -> Callable[[], Awaitable[list[float]]]:
    return http_per_analysis(url, tokens, ids, "POST", "/analyses/{id}/rerun", 202)


def http_cancels(
    url: str, tokens: dict[str, str], ids: dict[str, list[str]]
) -> Callable[[], Awaitable[list[float]]]:
    return http_per_analysis(url, tokens, ids, "POST", "/analyses/{id}/cancel", 200)


def http_deletes(
    url: str, tokens: dict[str, str], ids: dict[str, list[str]]
) -> Callable[[], Awaitable[list[float]]]:
    return http_per_analysis(url, tokens, ids, "DELETE", "/analyses/{id}", 204)


async def _concurrently(
    url: str,
    tokens: dict[str, str],
    one_user: Callable[[Connection, str], Awaitable[None]],
) -> None:
    connections = {user: Connection(url) for user in tokens}
    try:
        await asyncio.gather(*(one_user(connections[user], user) for user in tokens))
    finally:
        for connection in connections.values():
            connection.close()


class Bare:
    """The route's command, called directly: the same Firestore and Pub/Sub work."""

    def __init__(self, settings: RerunApiSettings) -> None:
        self.settings = settings
        self.db = firestore.AsyncClient(project=settings.google_cloud_project)
        self.publisher = JobPublisher(settings)
        self.commands = AnalysisCommands(
            self.db,
            COLLECTION,
            markers_collection=settings.firestore_feed_collection,
            rpc_timeout=settings.firestore_timeout_seconds,
        )
        self.lifecycle = AnalysisLifecycle(
            self.db,
            COLLECTION,
            markers_collection=settings.firestore_feed_collection,
            rpc_timeout=settings.firestore_timeout_seconds,
        )
        self.store = IdempotencyStore(self.db, settings)
        self.unconfirmed = 0

    def close(self) -> None:
        self.publisher.close()
        self.db.close()

    async def _publish(self, queued: QueuedAnalysis | None) -> None:
        if queued is None:
            raise SystemExit("bare: a command found a stored answer")
        published = await self.commands.publish_and_clear(
            self.publisher,
            queued,
            trace_id=None,
            publish_timeout=self.settings.publish_timeout_seconds,
        )
        self.unconfirmed += not published

    def creates(
        self, users: list[str], numbers: range, tag: str
    ) -> Callable[[], Awaitable[list[float]]]:
        async def run() -> list[float]:
            latencies: list[float] = []

            async def one_user(user: str) -> None:
                for n in numbers:
                    started = time.perf_counter()
                    body = create_body(user, n)
                    receipt = self.store.receipt(
                        uid=user,
                        method="POST",
                        path="/analyses",
                        key=f"{tag}-{user}-{n}",
                        request_hash=body_hash(body),
                        answer_of=_created,
                    )
                    queued = await self.commands.create(
                        NewAnalysis(
                            user_id=user,
                            video_url=str(body["video_url"]),
                            dance_type="salsa",
                            dancers=["lead", "follow"],
                            analysis_type=AnalysisType.COUPLE,
                        ),
                        analysis_id=receipt.analysis_id,
                        active_cap=CAP,
                        receipt=receipt,
                    )
                    await self._publish(queued)
                    latencies.append((time.perf_counter() - started) * 1000)

            await asyncio.gather(*(one_user(user) for user in users))
            return latencies

        return run

    def reruns(self, ids: dict[str, list[str]]) -> Callable[[], Awaitable[list[float]]]:
        async def rerun(user: str, analysis_id: str) -> None:
            queued = await self.commands.rerun(
                analysis_id, requested_by=user, admin=False, active_cap=CAP
            )
            await self._publish(queued)

        return self._each(ids, rerun)

    def cancels(self, ids: dict[str, list[str]]) -> Callable[[], Awaitable[list[float]]]:
        async def cancel(user: str, analysis_id: str) -> None:
            await self.lifecycle.cancel(analysis_id, uid=user, admin=False)

        return self._each(ids, cancel)

    def deletes(self, ids: dict[str, list[str]]) -> Callable[[], Awaitable[list[float]]]:
        async def delete(user: str, analysis_id: str) -> None:
            await self.lifecycle.delete(analysis_id, uid=user, admin=False, records=self.store)

        return self._each(ids, delete)

    @staticmethod
    def _each(
        ids: dict[str, list[str]], command: Callable[[str, str], Awaitable[None]]
    ) -> Callable[[], Awaitable[list[float]]]:
        """`command(user, id)` for each of every user's analyses, the users concurrently."""

        async def run() -> list[float]:
            latencies: list[float] = []

            async def one_user(user: str) -> None:
                for analysis_id in ids[user]:
                    started = time.perf_counter()
                    await command(user, analysis_id)
                    latencies.append((time.perf_counter() - started) * 1000)

            await asyncio.gather(*(one_user(user) for user in ids))
            return latencies

        return run


def _created(queued: QueuedAnalysis) -> StoredAnswer:
    item = list_item_from_document(queued.analysis_id, queued.data).model_dump(mode="json")
    return StoredAnswer(201, item, {"Location": f"/analyses/{queued.analysis_id}"})


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--users", type=int, default=10)
    parser.add_argument("--per-user", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=5, help="alternations of the arms")
    args = parser.parse_args(argv)
    if args.users < 1 or args.per_user < 1 or not 1 <= args.rounds <= args.per_user:
        parser.error("--users and --per-user must be >= 1, --rounds 1..per-user")

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
            # Separate users per arm, so that every arm starts from the same per-user state.
            http_users = [f"user{i}" for i in range(args.users)]
            bare_users = [f"bare{i}" for i in range(args.users)]
            warm_ids = seed_done(sync_db, "warm", http_users, 2)
            http_ids = seed_done(sync_db, "http", http_users, args.per_user)
            bare_ids = seed_done(sync_db, "bare", bare_users, args.per_user)
            env = {
                "GOOGLE_CLOUD_PROJECT": project,
                **issuer.env(),
                "RATE_LIMIT": "1000000/minute",
                "RATE_LIMIT_PER_IP": "1000000/minute",
                "MAX_ACTIVE_ANALYSES_PER_USER": str(CAP),
                # Only requests are measured: the outbox's scan would read on its own.
                "OUTBOX_SCAN_INTERVAL_SECONDS": "3600",
                "MEMORY_LOG_INTERVAL_SECONDS": "3600",
            }
            api = service("rerun-api-bench", "rerun_api.main", env).start(
                ready_path="/readyz", timeout=60
            )
            assert api.process is not None
            assert fs.process is not None
            serving, emulator = psutil.Process(api.process.pid), psutil.Process(fs.process.pid)
            this = psutil.Process()
            counts = FirestoreCounts(fs)
            tokens = {user: issuer.token(user, ttl_seconds=3600) for user in http_users}
            settings = RerunApiSettings(google_cloud_project=project)
            bare = Bare(settings)

            rounds = args.rounds
            per_round = -(-args.per_user // rounds)

            def chunk(ids: list[str], r: int) -> list[str]:
                return ids[r * per_round : (r + 1) * per_round]

            async def arms() -> list[Arm]:
                # Warm-up: connections, imports and the first marker of each user.
                await http_creates(api.url, tokens, range(2), "warm")()
                await http_reruns(api.url, tokens, dict(zip(http_users, warm_ids, strict=True)))()
                # The arms alternate in rounds, so that whatever else loads the machine
                # meanwhile weighs on both alike.
                merged: dict[str, Arm] = {}
                for r in range(rounds):
                    numbers = range(r * per_round, min((r + 1) * per_round, args.per_user))
                    http_chunk = {u: chunk(i, r) for u, i in zip(http_users, http_ids, strict=True)}
                    bare_chunk = {u: chunk(i, r) for u, i in zip(bare_users, bare_ids, strict=True)}
                    # In this order: the analyses just rerun are queued, then cancelled,
                    # then deleted. Each arm runs in the process it measures.
                    plan: list[tuple[str, Callable[[], Awaitable[list[float]]], psutil.Process]] = [
                        ("HTTP create", http_creates(api.url, tokens, numbers, "http"), serving),
                        ("bare create", bare.creates(bare_users, numbers, "bare"), this),
                        ("HTTP rerun", http_reruns(api.url, tokens, http_chunk), serving),
                        ("bare rerun", bare.reruns(bare_chunk), this),
                        ("HTTP cancel", http_cancels(api.url, tokens, http_chunk), serving),
                        ("bare cancel", bare.cancels(bare_chunk), this),
                        ("HTTP delete", http_deletes(api.url, tokens, http_chunk), serving),
                        ("bare delete", bare.deletes(bare_chunk), this),
                    ]
                    for name, run, process in plan:
                        arm = await measure(name, run, process, emulator, counts)
                        merged[name] = merged[name].merged(arm) if name in merged else arm
                return list(merged.values())

            try:
                results = asyncio.run(arms())
            finally:
                bare.close()
            if bare.unconfirmed:
                raise SystemExit(f"bare arms: {bare.unconfirmed} publishes not confirmed")

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
                f"rerun-api benchmark: {total} creates, reruns, cancels and deletes per arm, "
                f"{args.users} concurrent users, Firestore + Pub/Sub emulators, "
                f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}"
            )
            for arm in results:
                print(arm.line())
            by_name = {arm.name: arm for arm in results}
            for kind in ("create", "rerun", "cancel", "delete"):
                http, direct = by_name[f"HTTP {kind}"], by_name[f"bare {kind}"]
                ratio = http.throughput / direct.throughput
                verdict = (
                    f" ({'meets' if ratio >= 0.75 else 'misses'} the 0.75 target)"
                    if kind in ("create", "rerun")
                    else ""
                )
                print(
                    f"{kind}: HTTP/bare throughput {http.throughput:.1f}/{direct.throughput:.1f}"
                    f" = {ratio:.2f}{verdict}"
                )
            print(f"publish_pending left set: {still_pending}")
    finally:
        if api is not None:
            api.stop()
        ps.stop()
        fs.stop()


if __name__ == "__main__":
    main()
