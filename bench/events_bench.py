"""Benchmark of query-api's event streams: 1,000 open streams on one replica.

On a fresh Firestore emulator, one query-api process (the real service under uvicorn):

1. baseline: RSS and idle CPU with no stream open;
2. `--streams` streams (default 1,000), one per user, each waiting for its `ready` event;
   then RSS (memory per open stream = the growth / streams) and idle CPU over
   `--idle-seconds` (heartbeats included);
3. `--rate` changes per second (default 10) for `--write-seconds`, each to a random
   user's analysis with its marker bump in one batch (as the write path writes); for
   every change, the time from the start of the write to the event on that user's
   stream (p50/p99), the events missed, and query-api's CPU meanwhile;
4. the streams hang up; RSS again.

RSS is sampled every 0.5 s throughout. Every figure goes to JSON (`--json`, default
.local/bench-results/events.json); `bench/plot_events_bench.py` draws docs/images/ from it.

The streams are held by one asyncio driver on raw sockets (HTTP/1.0, so the body is the
bare event stream): 1,000 httpx clients would cost the 2-core machine more than the
server under test. The driver raises its open-file limit (RLIMIT_NOFILE) first; the
service inherits it.

    uv run python bench/events_bench.py [--streams 1000] [--rate 10] [--write-seconds 60]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import resource
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psutil
from google.cloud import firestore

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # the tests' process and issuer helpers

from flokraft_core.change_markers import bump_marker  # noqa: E402
from tests.support.auth import TestIssuer, running_issuer  # noqa: E402
from tests.support.processes import ManagedProcess, firestore_emulator, service  # noqa: E402

EVENTS_PATH = "/analyses/events"
AUDIENCE = "flokraft-bench"
PROJECT = "bench-events"


def raise_fd_limit(needed: int) -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard == resource.RLIM_INFINITY else max(soft, min(hard, needed))
    if target != soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    if target < needed:
        raise SystemExit(f"RLIMIT_NOFILE hard limit {hard} is below the {needed} needed")
    return target


@dataclass
class Sampler:
    """RSS and CPU of one process, sampled on a thread, with phase labels."""

    process: psutil.Process
    samples: list[dict[str, Any]] = field(default_factory=list)
    phase: str = "start"
    _stop: threading.Event = field(default_factory=threading.Event)
    _started: float = field(default_factory=time.monotonic)

    def run(self) -> None:
        while not self._stop.wait(0.5):
            cpu = self.process.cpu_times()
            self.samples.append(
                {
                    "t": time.monotonic() - self._started,
                    "rss": self.process.memory_info().rss,
                    "cpu": cpu.user + cpu.system,
                    "phase": self.phase,
                }
            )

    def start(self) -> None:
        threading.Thread(target=self.run, daemon=True).start()

    def stop(self) -> None:
        self._stop.set()

    def cpu_seconds(self) -> float:
        cpu = self.process.cpu_times()
        return float(cpu.user + cpu.system)

    def rss(self) -> int:
        return int(self.process.memory_info().rss)


class Streams:
    """Open event streams, one per user; records when each event arrived."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.ready: dict[str, int] = {}
        self.arrivals: dict[tuple[str, int], float] = {}
        self.other_events = 0
        self.refused: list[str] = []
        self._writers: list[asyncio.StreamWriter] = []
        self._tasks: list[asyncio.Task[None]] = []

    async def open(self, user: str, token: str, ready: asyncio.Event) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
        self._writers.append(writer)
        writer.write(
            f"GET {EVENTS_PATH} HTTP/1.0\r\nHost: bench\r\nAccept: text/event-stream\r\n"
            f"Authorization: Bearer {token}\r\n\r\n".encode()
        )
        await writer.drain()
        status = await reader.readline()
        if b" 200 " not in status:
            self.refused.append(status.decode().strip())
            ready.set()
            return
        while (await reader.readline()) not in (b"\r\n", b"\n", b""):
            pass  # headers
        self._tasks.append(asyncio.create_task(self._read(user, reader, ready)))

    async def _read(self, user: str, reader: asyncio.StreamReader, ready: asyncio.Event) -> None:
        kind = ""
        while line := await reader.readline():
            if line.startswith(b"event: "):
                kind = line[7:].strip().decode()
            elif line.startswith(b"data: "):
                now = time.monotonic()
                version = json.loads(line[6:]).get("version")
                if kind == "ready":
                    self.ready[user] = version
                    ready.set()
                elif kind == "changed":
                    self.arrivals.setdefault((user, version), now)
                else:
                    self.other_events += 1

    async def close(self) -> None:
        for writer in self._writers:
            writer.close()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


def write_changes(
    db: firestore.Client,
    users: list[str],
    rate: float,
    seconds: float,
    started: dict[tuple[str, int], float],
) -> None:
    """`rate` changes a second, each an analysis change plus its owner's marker bump in
    one batch; records when each write began, keyed by the version it makes."""
    versions = dict.fromkeys(users, 0)
    analyses = db.collection("analyses")
    markers = db.collection("analysis_feeds")
    begin = time.monotonic()
    count = int(rate * seconds)
    for i in range(count):
        due = begin + i / rate
        time.sleep(max(0.0, due - time.monotonic()))
        user = random.choice(users)
        versions[user] += 1
        batch = db.batch()
        batch.set(
            analyses.document(f"{user}-a{versions[user] % 3}"),
            {"user_id": user, "status": random.choice(["queued", "running", "done"])},
            merge=True,
        )
        bump_marker(batch, markers, user)
        started[(user, versions[user])] = time.monotonic()
        batch.commit()


def urlopen_text(url: str) -> str:
    return httpx.get(url, timeout=10).text


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))] if ordered else 0.0


def start_query_api(firestore_host: str, issuer: TestIssuer, max_streams: int) -> ManagedProcess:
    return service(
        "query-api-events-bench",
        "query_api.main",
        {
            "FIRESTORE_EMULATOR_HOST": firestore_host,
            "GOOGLE_CLOUD_PROJECT": PROJECT,
            "RATE_LIMIT": "1000000/minute",
            "EVENTS_MAX_STREAMS": str(max_streams),
            "LOG_LEVEL": "WARNING",
            **issuer.env(),
        },
    ).start(ready_path="/healthz", timeout=60)


async def run(args: argparse.Namespace, issuer: TestIssuer, api: ManagedProcess) -> dict[str, Any]:
    assert api.process is not None
    sampler = Sampler(psutil.Process(api.process.pid))
    sampler.start()
    users = [f"bench{i:05d}-{uuid.uuid4().hex[:4]}" for i in range(args.streams)]
    tokens = {user: issuer.token(user) for user in users}
    result: dict[str, Any] = {"streams": args.streams, "rate": args.rate}

    # Warm-up: the first streams pay one-time costs (JWKS fetch, first imports and code
    # paths) that are not per stream; they are opened and closed before the baseline.
    sampler.phase = "warm-up"
    warm = Streams(api.port)
    warm_ready = [asyncio.Event() for _ in range(20)]
    for i, event in enumerate(warm_ready):
        await warm.open(f"warm{i}", issuer.token(f"warm{i}"), event)
    await asyncio.wait_for(asyncio.gather(*(e.wait() for e in warm_ready)), 60)
    await warm.close()

    sampler.phase = "baseline"
    await asyncio.sleep(args.settle_seconds)
    cpu0 = sampler.cpu_seconds()
    await asyncio.sleep(args.idle_seconds / 2)
    result["baseline_rss"] = sampler.rss()
    result["baseline_idle_cpu_pct"] = 100 * (sampler.cpu_seconds() - cpu0) / (args.idle_seconds / 2)

    sampler.phase = "opening"
    streams = Streams(api.port)
    opened_at = time.monotonic()
    readies = {user: asyncio.Event() for user in users}
    for start in range(0, len(users), 50):  # 50 connects at a time
        batch = users[start : start + 50]
        await asyncio.gather(*(streams.open(u, tokens[u], readies[u]) for u in batch))
    await asyncio.wait_for(asyncio.gather(*(e.wait() for e in readies.values())), 120)
    result["open_seconds"] = time.monotonic() - opened_at
    result["refused"] = len(streams.refused)
    result["open"] = len(streams.ready)

    sampler.phase = "idle"
    await asyncio.sleep(args.settle_seconds)
    cpu1 = sampler.cpu_seconds()
    await asyncio.sleep(args.idle_seconds)
    result["idle_cpu_pct"] = 100 * (sampler.cpu_seconds() - cpu1) / args.idle_seconds
    result["open_rss"] = sampler.rss()
    result["rss_per_stream"] = (result["open_rss"] - result["baseline_rss"]) / max(
        1, result["open"]
    )

    sampler.phase = "writes"
    db = firestore.Client(project=PROJECT)
    started: dict[tuple[str, int], float] = {}
    cpu2 = sampler.cpu_seconds()
    await asyncio.to_thread(
        write_changes, db, list(streams.ready), args.rate, args.write_seconds, started
    )
    await asyncio.sleep(3)  # the last events arrive
    result["writes_cpu_pct"] = 100 * (sampler.cpu_seconds() - cpu2) / (args.write_seconds + 3)
    result["writes_rss"] = sampler.rss()
    latencies = [
        (streams.arrivals[key] - begun) * 1000
        for key, begun in started.items()
        if key in streams.arrivals
    ]
    result["writes"] = len(started)
    result["events"] = len(latencies)
    # A write whose event never came: only possible when two writes to one user land
    # before the first event is sent (they coalesce into one, for the later version).
    result["missed"] = len(started) - len(latencies)
    result["latency_p50_ms"] = pct(latencies, 0.5)
    result["latency_p99_ms"] = pct(latencies, 0.99)
    result["latency_max_ms"] = max(latencies, default=0.0)
    result["latencies_ms"] = latencies
    result["other_events"] = streams.other_events
    db.close()

    sampler.phase = "closed"
    await streams.close()
    await asyncio.sleep(args.settle_seconds)
    result["closed_rss"] = sampler.rss()
    # Every stream released its place (the gauge the hub keeps).
    metrics = await asyncio.to_thread(urlopen_text, f"{api.url}/metrics")
    result["streams_open_after_close"] = next(
        float(line.split()[-1])
        for line in metrics.splitlines()
        if line.startswith("flokraft_event_streams_open ")
    )
    sampler.stop()
    result["samples"] = sampler.samples
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--streams", type=int, default=1000)
    parser.add_argument("--rate", type=float, default=10.0)
    parser.add_argument("--write-seconds", type=float, default=60.0)
    parser.add_argument("--idle-seconds", type=float, default=30.0)
    parser.add_argument("--settle-seconds", type=float, default=5.0)
    parser.add_argument("--json", type=Path, default=REPO / ".local/bench-results/events.json")
    args = parser.parse_args()

    raise_fd_limit(args.streams * 2 + 256)
    emulator = firestore_emulator().start(timeout=30)
    tmp = REPO / ".local" / "bench-events-auth"
    tmp.mkdir(parents=True, exist_ok=True)
    os.environ["FIRESTORE_EMULATOR_HOST"] = emulator.host
    with running_issuer(tmp, audience=AUDIENCE) as issuer:
        api = start_query_api(emulator.host, issuer, max_streams=args.streams * 2)
        try:
            result = asyncio.run(run(args, issuer, api))
        finally:
            api.stop()
            emulator.stop()
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result))
    mib = 1024 * 1024
    print(
        f"{result['open']} streams open ({result['refused']} refused) in "
        f"{result['open_seconds']:.1f} s\n"
        f"RSS: {result['baseline_rss'] / mib:.1f} MiB with none, "
        f"{result['open_rss'] / mib:.1f} MiB with {result['open']} "
        f"({result['rss_per_stream'] / 1024:.1f} KiB per stream), "
        f"{result['writes_rss'] / mib:.1f} MiB after the writes, "
        f"{result['closed_rss'] / mib:.1f} MiB after they closed "
        f"({result['streams_open_after_close']:g} still counted open)\n"
        f"idle CPU: {result['baseline_idle_cpu_pct']:.2f} % of a core with none, "
        f"{result['idle_cpu_pct']:.2f} % with {result['open']} open; "
        f"{result['writes_cpu_pct']:.1f} % during {args.rate:g} changes/s\n"
        f"write-to-event: p50 {result['latency_p50_ms']:.1f} ms, "
        f"p99 {result['latency_p99_ms']:.1f} ms, max {result['latency_max_ms']:.1f} ms "
        f"({result['events']} of {result['writes']} writes; {result['missed']} coalesced)"
    )


if __name__ == "__main__":
    main()
