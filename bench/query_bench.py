"""Benchmark of query-api's polled list against the raw Firestore query and the old
Flask backend's fixed endpoint.

For each collection size (default 5,000 and 50,000 analyses of 10 KB text, 10 users) on a
fresh Firestore emulator, in one run:

1. the same user's first page, one request at a time: query-api vs. the raw query;
2. a warm-up of query-api, then its RSS;
3. arms of the same load, `--concurrency` pollers issuing `--requests` list requests in
   total (first page, users rotating), one arm after the other:
   - raw: the exact `list_query(...)` query-api runs (limit+1 rows, projected), from
     Python with the AsyncClient, same concurrency;
   - query-api full page: the real service process (uvicorn), bearer tokens, no
     If-None-Match, RATE_LIMIT set high;
   - conditional: each poller sends the ETag it last got for that user (what a browser
     tab does), (a) with no writes and (b) while a writer changes one analysis of a random
     user every second (with its marker bump, as the write path does);
   - the same two conditional arms against a second query-api that answers from its
     change-feed listener (LIST_ETAG_FROM_FEED);
   - old backend: the old Flask backend's fixed endpoint (its debugging guide's Fix 1 +
     Fix 3) under gunicorn with one worker;
4. per arm: latency p50/p99, throughput, errors, 304s, query-api CPU ms per poll (psutil
   user+system time of the process), Firestore documents read per poll (query-api's
   `firestore_documents_read_total`), and RSS through the arm.

Every figure is also written as JSON (`--json`, default .local/bench-results/query.json);
`bench/plot_query_bench.py` draws the plots in docs/images/ from it.

The load comes from a small asyncio + httpx driver rather than locust: the raw-query arm
has to run in the same driver with the same concurrency model to be comparable, the run
must issue an exact number of requests (locust runs for a time), and one process that
drives all three arms keeps the client's own CPU cost the same for the two HTTP arms on a
2-core machine.

The Node emulator scans every document per query, so at 50,000 documents each query takes
~60 ms and 20 pollers saturate it; `--requests-large` caps the arms there.

`--isolate-database` pins the emulator to CPU 0 and everything else (query-api, gunicorn,
this driver) to the other CPUs, closer to production where Firestore runs elsewhere. On a
2-core machine that leaves query-api and the driver one core between them, so neither
layout models production; docs/benchmarks.md reports both.

    uv run --group bench python bench/query_bench.py [--sizes 5000,50000] [--requests 10000]
        [--requests-large 300] [--concurrency 20] [--json PATH]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import secrets
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psutil
from google.cloud import firestore

from flokraft_core.dev import devauth
from flokraft_core.dev.demo_data import seed_analyses
from flokraft_core.store.change_markers import backfill_markers, bump_marker
from flokraft_core.store.client import list_query
from flokraft_devstack.components import firestore_emulator, service
from flokraft_devstack.processes import ManagedProcess, free_port

REPO = Path(__file__).resolve().parents[1]
PROJECT = "bench-query"
AUDIENCE = "flokraft-bench"
USERS = [f"user{i}" for i in range(10)]
PAGE = 50
LOG_DIR = REPO / ".local" / "bench-logs"


DATABASE_CPUS: set[int] = set()  # set by main(): CPUs only the emulator runs on
OTHER_CPUS: set[int] = set()  # the rest: the services under test and this driver


def pinned(process: ManagedProcess, *, database: bool = False) -> ManagedProcess:
    """`process`, to run on the emulator's CPUs or on the others (with --isolate-database)."""
    process.cpus = DATABASE_CPUS if database else OTHER_CPUS
    return process


@dataclass
class ArmResult:
    name: str
    latencies_ms: list[float]
    errors: int
    seconds: float
    not_modified: int = 0
    # Of the query-api process serving the arm (None for arms that do not use it).
    cpu_seconds: float | None = None
    documents_read: float | None = None
    rss_samples: list[tuple[float, int]] = field(default_factory=list)

    def pct(self, q: float) -> float:
        ordered = sorted(self.latencies_ms)
        if not ordered:
            return float("nan")
        return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]

    @property
    def throughput(self) -> float:
        return len(self.latencies_ms) / self.seconds if self.seconds else 0.0

    def per_poll(self, total: float | None) -> float | None:
        return None if total is None or not self.latencies_ms else total / len(self.latencies_ms)

    @property
    def rss_growth(self) -> int | None:
        if len(self.rss_samples) < 2:
            return None
        return self.rss_samples[-1][1] - self.rss_samples[0][1]

    def as_json(self) -> dict[str, object]:
        return {
            "name": self.name,
            "requests": len(self.latencies_ms),
            "errors": self.errors,
            "not_modified": self.not_modified,
            "seconds": self.seconds,
            "throughput": self.throughput,
            "p50_ms": self.pct(0.5),
            "p99_ms": self.pct(0.99),
            "cpu_ms_per_poll": _times_1000(self.per_poll(self.cpu_seconds)),
            "reads_per_poll": self.per_poll(self.documents_read),
            "rss_growth_bytes": self.rss_growth,
            "latencies_ms": self.latencies_ms,
            "rss_samples": self.rss_samples,
        }


def _times_1000(value: float | None) -> float | None:
    return None if value is None else value * 1000


async def run_load(
    name: str, one: Callable[[int], Awaitable[int]], requests: int, concurrency: int
) -> ArmResult:
    """`one(index)` returns the HTTP status it got (200 or 304 count as success)."""
    latencies: list[float] = []
    errors = 0
    not_modified = 0
    counter = iter(range(requests))

    async def poller() -> None:
        nonlocal errors, not_modified
        for index in counter:
            started = time.perf_counter()
            try:
                status = await one(index)
            except Exception:
                status = 0
            latencies.append((time.perf_counter() - started) * 1000)
            if status == 304:
                not_modified += 1
            elif status != 200:
                errors += 1

    started = time.perf_counter()
    await asyncio.gather(*(poller() for _ in range(concurrency)))
    return ArmResult(name, latencies, errors, time.perf_counter() - started, not_modified)


def documents_read(url: str) -> float:
    text = httpx.get(url + "/metrics", timeout=10).text
    return sum(
        float(line.rpartition(" ")[2])
        for line in text.splitlines()
        if line.startswith("firestore_documents_read_total{") and 'route="/analyses"' in line
    )


def cpu_seconds(process: psutil.Process) -> float:
    """User + system CPU of the process and its children (gunicorn's worker)."""
    total = 0.0
    for each in [process, *process.children(recursive=True)]:
        times = each.cpu_times()
        total += times.user + times.system
    return total


async def measured(
    arm: Callable[[], Awaitable[ArmResult]],
    process: psutil.Process,
    reads: Callable[[], float],
) -> ArmResult:
    """Runs `arm` against the server `process`, adding its CPU, reads and RSS."""
    reads_before, cpu_before = reads(), cpu_seconds(process)
    with RssSampler(process.pid) as sampler:
        result = await arm()
    result.cpu_seconds = cpu_seconds(process) - cpu_before
    result.documents_read = reads() - reads_before
    result.rss_samples = sampler.samples
    return result


class RssSampler:
    def __init__(self, pid: int, interval: float = 0.2) -> None:
        self._process = psutil.Process(pid)
        self._interval = interval
        self._stop = threading.Event()
        self.samples: list[tuple[float, int]] = []
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            # The process tree: gunicorn's master alone would hide its worker.
            tree = [self._process, *self._process.children(recursive=True)]
            self.samples.append((time.time(), sum(p.memory_info().rss for p in tree)))
            self._stop.wait(self._interval)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()


@dataclass
class SizeResult:
    n: int
    requests: int
    seq_qa: ArmResult
    seq_raw: ArmResult
    arms: list[ArmResult]
    rss_warm: int
    rss_end: int

    def arm(self, name: str) -> ArmResult:
        return next(a for a in self.arms if a.name == name)

    def as_json(self) -> dict[str, object]:
        return {
            "documents": self.n,
            "requests": self.requests,
            "rss_warm": self.rss_warm,
            "rss_end": self.rss_end,
            "sequential_p50_ms": {"query-api": self.seq_qa.pct(0.5), "raw": self.seq_raw.pct(0.5)},
            "arms": [a.as_json() for a in self.arms],
        }


RAW, FULL, COND, COND_W = "raw query", "full page", "conditional", "conditional + writes"
FEED, FEED_W = "conditional, listener", "conditional + writes, listener"
OLD = "old backend"


def mb(value: float) -> str:
    return f"{value / 2**20:.1f} MB"


def query_api_env(env: dict[str, str], port: int, jwks_port: int) -> dict[str, str]:
    return {
        **env,
        "PORT": str(port),
        "HOST": "127.0.0.1",
        "AUTH_JWKS_URL": f"http://127.0.0.1:{jwks_port}{devauth.JWKS_PATH}",
        "AUTH_ISSUER": devauth.DEV_ISSUER,
        "AUTH_AUDIENCE": AUDIENCE,
        "RATE_LIMIT": "100000000/minute",
        "RATE_LIMIT_PER_IP": "100000000/minute",
        "PAGE_TOKEN_SECRET": secrets.token_urlsafe(32),
    }


class Writer:
    """Changes one analysis of a random user every second, with the owner's marker bump in
    the same batch (what the analysis write path does): the realistic polling mix."""

    def __init__(self, db: firestore.AsyncClient, ids_by_user: dict[str, list[str]]) -> None:
        self._db = db
        self._ids = ids_by_user
        self._random = random.Random(7)
        self.writes = 0

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            user = self._random.choice(USERS)
            doc_id = self._random.choice(self._ids[user])
            batch = self._db.batch()
            batch.update(
                self._db.collection("analyses").document(doc_id),
                {"total_score": round(self._random.uniform(50, 99), 1)},
            )
            bump_marker(batch, self._db.collection("analysis_feeds"), user)
            await batch.commit()
            self.writes += 1
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=1.0)


async def with_writer(writer: Writer, arm: Callable[[], Awaitable[ArmResult]]) -> ArmResult:
    stop = asyncio.Event()
    task = asyncio.create_task(writer.run(stop))
    try:
        return await arm()
    finally:
        stop.set()
        await task


async def bench_size(n_docs: int, requests: int, concurrency: int, sequential: int) -> SizeResult:
    emulator = pinned(firestore_emulator(log_dir=LOG_DIR), database=True)
    procs = [emulator]
    tmp = Path(tempfile.mkdtemp(prefix="query-bench-"))
    key = devauth.load_or_create_key(tmp / "key.pem")
    jwks = devauth.make_server("127.0.0.1", 0, key)
    threading.Thread(target=jwks.serve_forever, daemon=True).start()
    emulator_host = emulator.host
    os.environ["FIRESTORE_EMULATOR_HOST"] = emulator_host
    try:
        emulator.start(timeout=30)
        started = time.perf_counter()
        sync_db = firestore.Client(project=PROJECT)
        seed_analyses(sync_db, "analyses", n_docs)
        # The demo data is written directly, as the old backend wrote it: give their owners
        # markers, as an operator would with the backfill command.
        backfill = backfill_markers(sync_db, "analyses", "analysis_feeds")
        sync_db.close()  # type: ignore[no-untyped-call]
        print(
            f"[{n_docs}] seeded in {time.perf_counter() - started:.0f} s "
            f"({backfill.markers_created} markers)",
            flush=True,
        )

        env = {"FIRESTORE_EMULATOR_HOST": emulator_host, "GOOGLE_CLOUD_PROJECT": PROJECT}
        jwks_port = jwks.server_address[1]
        qa_port, feed_port, flask_port = free_port(), free_port(), free_port()
        qa_env = query_api_env(env, qa_port, jwks_port)
        feed_env = {**query_api_env(env, feed_port, jwks_port), "LIST_ETAG_FROM_FEED": "true"}
        query_api = pinned(
            service(f"query-api-{n_docs}", "query_api.main", qa_env, qa_port, log_dir=LOG_DIR)
        )
        feed_api = pinned(
            service(
                f"query-api-feed-{n_docs}", "query_api.main", feed_env, feed_port, log_dir=LOG_DIR
            )
        )
        flask = pinned(
            ManagedProcess(
                name=f"old-backend-{n_docs}",
                command=[
                    sys.executable,
                    "-m",
                    "gunicorn",
                    "-w",
                    "1",
                    "-b",
                    f"127.0.0.1:{flask_port}",
                    "--chdir",
                    str(REPO / "bench/old_backend_baseline"),
                    "app:app",
                ],
                env=env,
                port=flask_port,
                log_path=LOG_DIR / f"old-backend-{n_docs}-{flask_port}.log",
                cwd=REPO,
            )
        )
        for process in (query_api, feed_api):
            procs.append(process)
            process.start(ready_path="/healthz", timeout=60)
        procs.append(flask)
        flask.start(timeout=30)
        qa_url, flask_url, feed_url = query_api.url, flask.url, feed_api.url

        tokens = {
            u: {
                "Authorization": "Bearer "
                + devauth.mint_token(key, u, audience=AUDIENCE, issuer=devauth.DEV_ISSUER)
            }
            for u in USERS
        }
        limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
        adb = firestore.AsyncClient(project=PROJECT)
        collection = adb.collection("analyses")
        ids_by_user = {
            u: [
                snapshot.id
                async for snapshot in list_query(
                    collection,
                    user_id=u,
                    analysis_type="couple",
                    status=None,
                    cursor=None,
                    limit=PAGE,
                ).stream()
            ]
            for u in USERS
        }
        writer = Writer(adb, ids_by_user)

        async with httpx.AsyncClient(limits=limits, timeout=120) as client:

            async def qa_one(index: int) -> int:
                user = USERS[index % len(USERS)]
                response = await client.get(qa_url + "/analyses", headers=tokens[user])
                ok = response.status_code == 200 and 0 < len(response.json()) <= PAGE
                return response.status_code if ok else 0

            async def conditional(url: str) -> Callable[[int], Awaitable[int]]:
                """A poller per tab: it sends the tag it last got for that user. Primed
                with one page per user before the arm, as a tab that has been open a
                while, so the arm measures steady polling, not its first page."""
                etags: dict[str, str] = {}

                async def one(index: int) -> int:
                    user = USERS[index % len(USERS)]
                    headers = dict(tokens[user])
                    if user in etags:
                        headers["If-None-Match"] = etags[user]
                    response = await client.get(url + "/analyses", headers=headers)
                    if response.status_code == 200:
                        etags[user] = response.headers["etag"]
                        return 200 if 0 < len(response.json()) <= PAGE else 0
                    return response.status_code

                for index in range(len(USERS)):
                    await one(index)
                return one

            old_reads = [0.0]  # the old backend exports no metrics: count what it returns

            async def flask_one(index: int) -> int:
                user = USERS[index % len(USERS)]
                response = await client.get(
                    flask_url + "/analyses", params={"user_id": user, "analysis_type": "couple"}
                )
                rows = len(response.json()) if response.status_code == 200 else 0
                old_reads[0] += max(1, rows)
                return 200 if 0 < rows <= PAGE else 0

            async def raw_one(index: int) -> int:
                query = list_query(
                    collection,
                    user_id=USERS[index % len(USERS)],
                    analysis_type="couple",
                    status=None,
                    cursor=None,
                    limit=PAGE + 1,
                )
                rows = await query.get(timeout=120)
                return 200 if 0 < len([r.to_dict() for r in rows[:PAGE]]) <= PAGE else 0

            warm = max(200, concurrency * 10) // 10 * 10
            await run_load("warm-up", qa_one, warm, concurrency)
            await run_load("warm-up feed", await conditional(feed_url), warm, concurrency)
            qa_process = psutil.Process(query_api.pid)
            feed_process = psutil.Process(feed_api.pid)
            rss_warm = qa_process.memory_info().rss

            def qa_reads() -> float:
                return documents_read(qa_url)

            def feed_reads() -> float:
                return documents_read(feed_url)

            # The same user page, one at a time: how list latency scales with the collection.
            seq_qa = await run_load("query-api seq", qa_one, sequential, 1)
            seq_raw = await run_load("raw seq", raw_one, sequential, 1)

            arms: list[ArmResult] = []

            def load(name: str, one: Callable[[int], Awaitable[int]]) -> Any:
                return lambda: run_load(name, one, requests, concurrency)

            raw = await load(RAW, raw_one)()
            raw.documents_read = sum(PAGE + 1 for _ in raw.latencies_ms)  # by construction
            arms.append(raw)
            arms.append(await measured(load(FULL, qa_one), qa_process, qa_reads))
            polls = load(COND, await conditional(qa_url))
            arms.append(await measured(polls, qa_process, qa_reads))
            polls = load(COND_W, await conditional(qa_url))
            arms.append(await with_writer(writer, lambda: measured(polls, qa_process, qa_reads)))
            polls = load(FEED, await conditional(feed_url))
            arms.append(await measured(polls, feed_process, feed_reads))
            polls = load(FEED_W, await conditional(feed_url))
            arms.append(
                await with_writer(writer, lambda: measured(polls, feed_process, feed_reads))
            )
            flask_process = psutil.Process(flask.pid)
            arms.append(await measured(load(OLD, flask_one), flask_process, lambda: old_reads[0]))
            for arm in arms:
                print(f"[{n_docs}] {arm.name}: {arm.seconds:.0f} s", flush=True)
            rss_end = qa_process.memory_info().rss
        adb.close()  # type: ignore[no-untyped-call]
        return SizeResult(
            n=n_docs,
            requests=requests,
            seq_qa=seq_qa,
            seq_raw=seq_raw,
            arms=arms,
            rss_warm=rss_warm,
            rss_end=rss_end,
        )
    finally:
        for proc in reversed(procs):
            proc.stop()
        jwks.shutdown()
        jwks.server_close()


def _fmt(value: float | None, spec: str = ".1f") -> str:
    return "n/a" if value is None else format(value, spec)


def report(r: SizeResult, concurrency: int) -> None:
    print(
        f"\n### {r.n:,} analyses, {r.requests:,} list requests per arm, "
        f"{concurrency} concurrent pollers\n"
    )
    print(
        "| arm | requests | errors | 304s | req/s | p50 ms | p99 ms | server CPU ms/poll "
        "| documents read/poll | server RSS growth |"
    )
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for arm in r.arms:
        growth = arm.rss_growth
        print(
            f"| {arm.name} | {len(arm.latencies_ms)} | {arm.errors} | {arm.not_modified} "
            f"| {arm.throughput:.1f} | {arm.pct(0.5):.1f} | {arm.pct(0.99):.1f} "
            f"| {_fmt(_times_1000(arm.per_poll(arm.cpu_seconds)), '.2f')} "
            f"| {_fmt(arm.per_poll(arm.documents_read), '.2f')} "
            f"| {'n/a' if growth is None else mb(growth)} |"
        )
    full, cond, raw, old = r.arm(FULL), r.arm(COND), r.arm(RAW), r.arm(OLD)
    full_cpu = full.per_poll(full.cpu_seconds) or float("nan")
    print()
    for name in (COND, COND_W, FEED, FEED_W):
        arm = r.arm(name)
        cpu = arm.per_poll(arm.cpu_seconds) or float("nan")
        # With writes, some polls find a change and read the page: the target is for the
        # unchanged ones, which the arms without writes measure alone.
        target = "(target <= 1)" if name in (COND, FEED) else "(changed pages included)"
        print(
            f"- {name}: {_fmt(arm.per_poll(arm.documents_read), '.2f')} documents read per poll "
            f"{target}, CPU {cpu / full_cpu:.0%} of a full page's (target <= 25 %), "
            f"throughput {arm.throughput / raw.throughput:.1f}x the raw query's (target >= 5x)"
        )
    print(
        f"- full page vs the old backend: throughput ratio {full.throughput / old.throughput:.2f}, "
        f"p99 ratio {full.pct(0.99) / old.pct(0.99):.2f}; conditional vs the old backend: "
        f"throughput {cond.throughput / old.throughput:.1f}x, CPU per poll "
        f"{(cond.per_poll(cond.cpu_seconds) or 0) / (old.per_poll(old.cpu_seconds) or 1):.0%} "
        "of the old backend's"
    )
    print(
        f"- query-api RSS after warm-up {mb(r.rss_warm)}, at the end {mb(r.rss_end)}, "
        f"growth {mb(r.rss_end - r.rss_warm)} (target < 5 MB)"
    )
    print(
        f"- same user page, one request at a time ({len(r.seq_qa.latencies_ms)} each): "
        f"query-api p50 {r.seq_qa.pct(0.5):.1f} ms, raw query p50 {r.seq_raw.pct(0.5):.1f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else "")
    parser.add_argument("--sizes", default="5000,50000")
    parser.add_argument("--requests", type=int, default=10_000)
    parser.add_argument(
        "--requests-large",
        type=int,
        default=300,
        help="requests per arm for sizes above 10,000 documents",
    )
    parser.add_argument("--concurrency", type=int, default=20)
    parser.add_argument("--json", type=Path, default=REPO / ".local/bench-results/query.json")
    parser.add_argument("--sequential", type=int, default=30)
    parser.add_argument(
        "--isolate-database",
        action=argparse.BooleanOptionalAction,
        default=False,
        help="pin the emulator to CPU 0 and everything else to the other CPUs",
    )
    args = parser.parse_args()
    all_cpus = os.sched_getaffinity(0)
    if args.isolate_database and len(all_cpus) >= 2:
        first = min(all_cpus)
        DATABASE_CPUS.add(first)
        OTHER_CPUS.update(all_cpus - {first})
        os.sched_setaffinity(0, OTHER_CPUS)  # this driver, its threads and the gRPC client
        print(f"database on CPU {sorted(DATABASE_CPUS)}, the rest on CPUs {sorted(OTHER_CPUS)}")
    else:
        print("database not isolated: all processes share every CPU")
    # SIGTERM unwinds like Ctrl-C, so the emulator and services started here are stopped.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    results: list[SizeResult] = []
    for size in (int(s) for s in args.sizes.split(",")):
        requests = args.requests if size <= 10_000 else args.requests_large
        results.append(asyncio.run(bench_size(size, requests, args.concurrency, args.sequential)))
        report(results[-1], args.concurrency)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(
        json.dumps(
            {
                "concurrency": args.concurrency,
                "isolated_database": bool(DATABASE_CPUS),
                "sizes": [r.as_json() for r in results],
            }
        )
    )
    plots = "uv run --group bench python bench/plot_query_bench.py"
    print(f"\nfigures written to {args.json}; plots: {plots}")
    if len(results) > 1:
        print("\n### list latency by collection size (same user page, sequential p50)\n")
        for result in results:
            print(
                f"- {result.n:,} docs: query-api {result.seq_qa.pct(0.5):.1f} ms, "
                f"raw {result.seq_raw.pct(0.5):.1f} ms"
            )


if __name__ == "__main__":
    main()
