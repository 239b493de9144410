"""Benchmark of query-api's polled list against the raw Firestore query and the old
Flask backend's fixed endpoint.

For each collection size (default 5,000 and 50,000 analyses of 10 KB text, 10 users) on a
fresh Firestore emulator, in one run:

1. the same user's first page, one request at a time: query-api vs. the raw query;
2. a warm-up of query-api, then its RSS;
3. three arms of the same load, `--concurrency` pollers issuing `--requests` list requests
   in total (first page, users rotating), one arm after the other:
   - raw: the exact `list_query(...)` query-api runs (limit+1 rows, projected), from
     Python with the AsyncClient, same concurrency;
   - query-api: the real service process (uvicorn), bearer tokens, RATE_LIMIT set high;
   - old-backend: the old Flask backend's fixed endpoint (its debugging guide's Fix 1 +
     Fix 3) under gunicorn with one worker;
4. latency p50/p99, throughput, errors; query-api's RSS sampled through its arm (peak)
   and at the end.

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

    uv run python bench/query_bench.py [--sizes 5000,50000] [--requests 10000]
        [--requests-large 300] [--concurrency 20]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psutil
from google.cloud import firestore

from flokraft_core.dev import devauth
from flokraft_core.dev.demo_data import seed_analyses
from flokraft_core.firestore_client import list_query
from pubsub_emulator.testing import free_port

REPO = Path(__file__).resolve().parents[1]
PROJECT = "bench-query"
AUDIENCE = "flokraft-bench"
USERS = [f"user{i}" for i in range(10)]
PAGE = 50
LOG_DIR = REPO / ".local" / "bench-logs"


def wait_http(url: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise TimeoutError(url)


def wait_port(port: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise TimeoutError(port)


@dataclass
class Proc:
    name: str
    popen: subprocess.Popen[bytes]

    def stop(self) -> None:
        if self.popen.poll() is None:
            os.killpg(self.popen.pid, signal.SIGTERM)
            try:
                self.popen.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.popen.pid, signal.SIGKILL)
                self.popen.wait(timeout=5)


DATABASE_CPUS: set[int] = set()  # set by main(): CPUs only the emulator runs on
OTHER_CPUS: set[int] = set()  # the rest: the services under test and this driver


def spawn(name: str, command: list[str], env: dict[str, str], *, database: bool = False) -> Proc:
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    cpus = DATABASE_CPUS if database else OTHER_CPUS
    with (LOG_DIR / f"{name}.log").open("wb") as log:
        popen = subprocess.Popen(
            command,
            env={**os.environ, **env},
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=REPO,
            start_new_session=True,
            # Pinned before exec, so every thread the process starts inherits it.
            preexec_fn=(lambda: os.sched_setaffinity(0, cpus)) if cpus else None,
        )
    return Proc(name, popen)


@dataclass
class ArmResult:
    name: str
    latencies_ms: list[float]
    errors: int
    seconds: float
    rss_samples: list[int] = field(default_factory=list)

    def pct(self, q: float) -> float:
        ordered = sorted(self.latencies_ms)
        if not ordered:
            return float("nan")
        return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]

    @property
    def throughput(self) -> float:
        return len(self.latencies_ms) / self.seconds if self.seconds else 0.0


async def run_load(
    name: str, one: Callable[[int], Awaitable[bool]], requests: int, concurrency: int
) -> ArmResult:
    latencies: list[float] = []
    errors = 0
    counter = iter(range(requests))

    async def poller() -> None:
        nonlocal errors
        for index in counter:
            started = time.perf_counter()
            try:
                ok = await one(index)
            except Exception:
                ok = False
            latencies.append((time.perf_counter() - started) * 1000)
            if not ok:
                errors += 1

    started = time.perf_counter()
    await asyncio.gather(*(poller() for _ in range(concurrency)))
    return ArmResult(name, latencies, errors, time.perf_counter() - started)


class RssSampler:
    def __init__(self, pid: int, interval: float = 0.2) -> None:
        self._process = psutil.Process(pid)
        self._interval = interval
        self._stop = threading.Event()
        self.samples: list[int] = []
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.samples.append(self._process.memory_info().rss)
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
    raw: ArmResult
    qa: ArmResult
    old_backend: ArmResult
    rss_warm: int
    rss_end: int
    rss_peak: int


def mb(value: float) -> str:
    return f"{value / 2**20:.1f} MB"


async def bench_size(n_docs: int, requests: int, concurrency: int, sequential: int) -> SizeResult:
    fs_port, qa_port, flask_port = free_port(), free_port(), free_port()
    emulator = spawn(
        f"firestore-{n_docs}",
        ["node", str(REPO / "tools/firestore-emulator/start.mjs"), "--port", str(fs_port)],
        {},
        database=True,
    )
    procs = [emulator]
    tmp = Path(tempfile.mkdtemp(prefix="query-bench-"))
    key = devauth.load_or_create_key(tmp / "key.pem")
    jwks = devauth.make_server("127.0.0.1", 0, key)
    threading.Thread(target=jwks.serve_forever, daemon=True).start()
    emulator_host = f"127.0.0.1:{fs_port}"
    os.environ["FIRESTORE_EMULATOR_HOST"] = emulator_host
    try:
        wait_port(fs_port)
        started = time.perf_counter()
        sync_db = firestore.Client(project=PROJECT)
        seed_analyses(sync_db, "analyses", n_docs)
        sync_db.close()  # type: ignore[no-untyped-call]
        print(f"[{n_docs}] seeded in {time.perf_counter() - started:.0f} s", flush=True)

        env = {"FIRESTORE_EMULATOR_HOST": emulator_host, "GOOGLE_CLOUD_PROJECT": PROJECT}
        query_api = spawn(
            f"query-api-{n_docs}",
            [sys.executable, "-m", "query_api.main"],
            {
                **env,
                "PORT": str(qa_port),
                "HOST": "127.0.0.1",
                "AUTH_JWKS_URL": f"http://127.0.0.1:{jwks.server_address[1]}{devauth.JWKS_PATH}",
                "AUTH_ISSUER": devauth.DEV_ISSUER,
                "AUTH_AUDIENCE": AUDIENCE,
                "RATE_LIMIT": "100000000/minute",
            },
        )
        procs.append(query_api)
        flask = spawn(
            f"old-backend-{n_docs}",
            [
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
            env,
        )
        procs.append(flask)
        qa_url, flask_url = f"http://127.0.0.1:{qa_port}", f"http://127.0.0.1:{flask_port}"
        wait_http(qa_url + "/healthz")
        wait_port(flask_port)

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

        async with httpx.AsyncClient(limits=limits, timeout=120) as client:

            async def qa_one(index: int) -> bool:
                user = USERS[index % len(USERS)]
                response = await client.get(qa_url + "/analyses", headers=tokens[user])
                return response.status_code == 200 and 0 < len(response.json()) <= PAGE

            async def flask_one(index: int) -> bool:
                user = USERS[index % len(USERS)]
                response = await client.get(
                    flask_url + "/analyses", params={"user_id": user, "analysis_type": "couple"}
                )
                return response.status_code == 200 and 0 < len(response.json()) <= PAGE

            async def raw_one(index: int) -> bool:
                query = list_query(
                    collection,
                    user_id=USERS[index % len(USERS)],
                    analysis_type="couple",
                    status=None,
                    cursor=None,
                    limit=PAGE + 1,
                )
                rows = await query.get(timeout=120)
                return 0 < len([r.to_dict() for r in rows[:PAGE]]) <= PAGE

            await run_load("warm-up", qa_one, max(200, concurrency * 10) // 10 * 10, concurrency)
            qa_process = psutil.Process(query_api.popen.pid)
            rss_warm = qa_process.memory_info().rss
            # The same user page, one at a time: how list latency scales with the collection.
            seq_qa = await run_load("query-api seq", qa_one, sequential, 1)
            seq_raw = await run_load("raw seq", raw_one, sequential, 1)

            raw = await run_load("raw Firestore query", raw_one, requests, concurrency)
            print(f"[{n_docs}] raw arm done in {raw.seconds:.0f} s", flush=True)
            with RssSampler(query_api.popen.pid) as sampler:
                qa = await run_load("query-api", qa_one, requests, concurrency)
            qa.rss_samples = sampler.samples
            rss_end = qa_process.memory_info().rss
            print(f"[{n_docs}] query-api arm done in {qa.seconds:.0f} s", flush=True)
            old_backend = await run_load(
                "old backend (gunicorn -w 1)", flask_one, requests, concurrency
            )
            print(f"[{n_docs}] old-backend arm done in {old_backend.seconds:.0f} s", flush=True)
        adb.close()  # type: ignore[no-untyped-call]
        return SizeResult(
            n=n_docs,
            requests=requests,
            seq_qa=seq_qa,
            seq_raw=seq_raw,
            raw=raw,
            qa=qa,
            old_backend=old_backend,
            rss_warm=rss_warm,
            rss_end=rss_end,
            rss_peak=max([*qa.rss_samples, rss_end]),
        )
    finally:
        for proc in reversed(procs):
            proc.stop()
        jwks.shutdown()
        jwks.server_close()


def report(r: SizeResult, concurrency: int) -> None:
    print(
        f"\n### {r.n:,} analyses, {r.requests:,} list requests per arm, "
        f"{concurrency} concurrent pollers\n"
    )
    print("| arm | requests | errors | req/s | p50 ms | p99 ms |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for arm in (r.raw, r.qa, r.old_backend):
        print(
            f"| {arm.name} | {len(arm.latencies_ms)} | {arm.errors} | {arm.throughput:.1f} "
            f"| {arm.pct(0.5):.1f} | {arm.pct(0.99):.1f} |"
        )
    print()
    print(
        "- query-api overhead over the raw query, p50 / p99: "
        f"{r.qa.pct(0.5) - r.raw.pct(0.5):+.1f} / {r.qa.pct(0.99) - r.raw.pct(0.99):+.1f} ms"
        " (target: p99 <= 5 ms)"
    )
    old = r.old_backend
    print(
        f"- query-api vs the old backend: throughput ratio {r.qa.throughput / old.throughput:.2f}, "
        f"p99 ratio {r.qa.pct(0.99) / old.pct(0.99):.2f} (query-api / old backend)"
    )
    print(
        f"- query-api RSS after warm-up {mb(r.rss_warm)}, at the end {mb(r.rss_end)}, "
        f"growth {mb(r.rss_end - r.rss_warm)} (target < 5 MB), peak {mb(r.rss_peak)} "
        "(target < 150 MB)"
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
    if len(results) > 1:
        print("\n### list latency by collection size (same user page, sequential p50)\n")
        for result in results:
            print(
                f"- {result.n:,} docs: query-api {result.seq_qa.pct(0.5):.1f} ms, "
                f"raw {result.seq_raw.pct(0.5):.1f} ms"
            )


if __name__ == "__main__":
    main()
