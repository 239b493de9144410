"""Benchmark of query-api's event streams: memory per stream, burst and paced opens
against the memory limit, idle CPU, write-to-event latency.

Two runs, each on a fresh query-api process (RSS never falls back once taken, so the two
ways of opening cannot share a process), on one fresh Firestore emulator:

1. **paced**: `--streams` streams (default 2,000) opened 50 at a time, each batch waiting
   for its `ready` events; then RSS (memory per open stream = the growth over the baseline
   / streams) and idle CPU over `--idle-seconds`; then `--rate` changes per second (default
   10) for `--write-seconds`, each to a random user's analysis with its marker bump in one
   batch, timing each change from the write to the event on its owner's stream;
2. **burst**: the same number of streams opened all at once.

Each stream claims its own client address (X-Forwarded-For from a trusted 127.0.0.1), so
the per-address cap sees many clients, as behind the load balancer. RSS is sampled every
0.1 s; the peak of each run is reported against the container limit (`--limit-mib`, 256)
and the memory alert line (85 % of it). Every figure goes to JSON (`--json`, default
.local/bench-results/events.json); `bench/plot_events_bench.py` draws docs/images/ from it.

Against a query-api running elsewhere (a container with a real memory limit):
`--base-url http://127.0.0.1:PORT --tokens-file FILE --mode burst` opens one stream per
line of FILE (`user<TAB>token`, minted by the issuer that server trusts) and reads RSS
from the server's /metrics; nothing is started.

    uv run --group bench python bench/events_bench.py [--streams 2000] [--rate 10]
        [--write-seconds 60]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import resource
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psutil
from google.cloud import firestore

from flokraft_core.store.change_markers import bump_marker
from flokraft_devstack.components import firestore_emulator, service
from flokraft_devstack.issuer import TestIssuer, running_issuer
from flokraft_devstack.processes import ManagedProcess
from flokraft_devstack.settings import REPO_ROOT as REPO
from flokraft_devstack.stream_burst import PeakSampler, RawStreams, open_streams, rss_reader

EVENTS_PATH = "/analyses/events"
AUDIENCE = "flokraft-bench"
PROJECT = "bench-events"


MIB = 1024 * 1024
ALERT_FRACTION = 0.85


def raise_fd_limit(needed: int) -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard == resource.RLIM_INFINITY else max(soft, min(hard, needed))
    if target != soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    if target < needed:
        raise SystemExit(f"RLIMIT_NOFILE hard limit {hard} is below the {needed} needed")
    return target


@dataclass
class CpuClock:
    process: psutil.Process

    def seconds(self) -> float:
        cpu = self.process.cpu_times()
        return float(cpu.user + cpu.system)


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


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))] if ordered else 0.0


def start_query_api(
    firestore_host: str, issuer: TestIssuer, max_streams: int, extra_env: dict[str, str]
) -> ManagedProcess:
    return service(
        "query-api-events-bench",
        "query_api.main",
        {
            "FIRESTORE_EMULATOR_HOST": firestore_host,
            "GOOGLE_CLOUD_PROJECT": PROJECT,
            "RATE_LIMIT": "1000000/minute",
            "PAGE_TOKEN_SECRET": "bench-only-page-token-secret-0123456789",
            # The driver stands in for the load balancer: each stream its own client.
            "FORWARDED_ALLOW_IPS": "127.0.0.1",
            "EVENTS_MAX_STREAMS": str(max_streams),
            "LOG_LEVEL": "WARNING",
            **issuer.env(),
            **extra_env,
        },
    ).start(ready_path="/healthz", timeout=60)


async def one_run(
    args: argparse.Namespace,
    mode: str,
    base_url: str,
    tokens: dict[str, str],
    warm_tokens: dict[str, str],
    read_rss: Callable[[], int],
    cpu: CpuClock | None,
    *,
    writes: bool,
) -> dict[str, Any]:
    sampler = PeakSampler(read_rss).start()
    result: dict[str, Any] = {"mode": mode, "streams": len(tokens)}

    # Warm-up: the first streams pay one-time costs (JWKS fetch, first imports and code
    # paths) that are not per stream; they are opened and closed before the baseline.
    sampler.phase = "warm-up"
    warm = RawStreams(base_url)
    await open_streams(warm, warm_tokens, mode="paced", batch=10)
    await warm.close()

    sampler.phase = "baseline"
    await asyncio.sleep(args.settle_seconds)
    cpu0 = cpu.seconds() if cpu else 0.0
    await asyncio.sleep(args.idle_seconds / 2)
    result["baseline_rss"] = read_rss()
    if cpu:
        result["baseline_idle_cpu_pct"] = 100 * (cpu.seconds() - cpu0) / (args.idle_seconds / 2)

    sampler.phase = "opening"
    streams = RawStreams(base_url)
    result["open_seconds"] = await open_streams(streams, tokens, mode=mode)
    result["refused"] = dict(streams.refused)
    result["open"] = len(streams.ready)

    sampler.phase = "idle"
    await asyncio.sleep(args.settle_seconds)
    cpu1 = cpu.seconds() if cpu else 0.0
    await asyncio.sleep(args.idle_seconds)
    if cpu:
        result["idle_cpu_pct"] = 100 * (cpu.seconds() - cpu1) / args.idle_seconds
    result["open_rss"] = read_rss()
    result["peak_rss"] = sampler.peak(("opening", "idle"))
    result["rss_per_stream"] = (result["open_rss"] - result["baseline_rss"]) / max(
        1, result["open"]
    )

    if writes:
        sampler.phase = "writes"
        db = firestore.Client(project=PROJECT)
        started: dict[tuple[str, int], float] = {}
        cpu2 = cpu.seconds() if cpu else 0.0
        await asyncio.to_thread(
            write_changes, db, list(streams.ready), args.rate, args.write_seconds, started
        )
        await asyncio.sleep(3)  # the last events arrive
        if cpu:
            result["writes_cpu_pct"] = 100 * (cpu.seconds() - cpu2) / (args.write_seconds + 3)
        result["writes_rss"] = read_rss()
        latencies = [
            (streams.arrivals[key] - begun) * 1000
            for key, begun in started.items()
            if key in streams.arrivals
        ]
        result["rate"] = args.rate
        result["writes"] = len(started)
        result["events"] = len(latencies)
        # A write whose event never came: only possible when two writes to one user land
        # before the first event is sent (they coalesce into one, for the later version).
        result["missed"] = len(started) - len(latencies)
        result["latency_p50_ms"] = pct(latencies, 0.5)
        result["latency_p99_ms"] = pct(latencies, 0.99)
        result["latency_max_ms"] = max(latencies, default=0.0)
        result["latencies_ms"] = latencies
        db.close()

    sampler.phase = "closed"
    await streams.close()
    await asyncio.sleep(args.settle_seconds)
    result["closed_rss"] = read_rss()
    metrics = (await asyncio.to_thread(httpx.get, f"{base_url}/metrics", timeout=10)).text
    # Every stream released its place (the gauge the hub keeps).
    result["streams_open_after_close"] = next(
        float(line.split()[-1])
        for line in metrics.splitlines()
        if line.startswith("flokraft_event_streams_open ")
    )
    sampler.stop()
    result["samples"] = [{"t": t, "rss": rss, "phase": phase} for t, rss, phase in sampler.samples]
    return result


def summary(result: dict[str, Any], limit_mib: float) -> str:
    alert = limit_mib * ALERT_FRACTION
    peak = result["peak_rss"] / MIB
    lines = [
        f"{result['mode']}: {result['open']} streams open, refused {result['refused'] or 0}, "
        f"in {result['open_seconds']:.1f} s",
        f"  RSS: {result['baseline_rss'] / MIB:.1f} MiB with none, "
        f"{result['open_rss'] / MIB:.1f} MiB with {result['open']} "
        f"({result['rss_per_stream'] / 1024:.1f} KiB per stream), peak {peak:.1f} MiB = "
        f"{100 * peak / limit_mib:.0f} % of the {limit_mib:g} MiB limit "
        f"({'under' if peak < alert else 'OVER'} the {alert:.1f} MiB alert line); "
        f"{result['closed_rss'] / MIB:.1f} MiB after they closed "
        f"({result['streams_open_after_close']:g} still counted open)",
    ]
    if "idle_cpu_pct" in result:
        lines.append(
            f"  idle CPU: {result['baseline_idle_cpu_pct']:.2f} % of a core with none, "
            f"{result['idle_cpu_pct']:.2f} % with {result['open']} open"
        )
    if "latency_p50_ms" in result:
        lines.append(
            f"  {result['rate']:g} changes/s: CPU {result.get('writes_cpu_pct', 0):.1f} %, "
            f"write-to-event p50 {result['latency_p50_ms']:.1f} ms, "
            f"p99 {result['latency_p99_ms']:.1f} ms, max {result['latency_max_ms']:.1f} ms "
            f"({result['events']} of {result['writes']} writes; {result['missed']} coalesced)"
        )
    return "\n".join(lines)


def read_tokens(path: Path) -> dict[str, str]:
    tokens = {}
    for line in path.read_text().splitlines():
        if line.strip():
            user, token = line.split("\t", 1)
            tokens[user.strip()] = token.strip()
    return tokens


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--streams", type=int, default=2000)
    parser.add_argument("--rate", type=float, default=10.0)
    parser.add_argument("--write-seconds", type=float, default=60.0)
    parser.add_argument("--idle-seconds", type=float, default=20.0)
    parser.add_argument("--settle-seconds", type=float, default=5.0)
    parser.add_argument("--limit-mib", type=float, default=256.0)
    parser.add_argument("--mode", choices=["both", "paced", "burst"], default="both")
    parser.add_argument("--base-url", help="a query-api already running; nothing is started")
    parser.add_argument("--tokens-file", type=Path, help="with --base-url: user<TAB>token lines")
    parser.add_argument(
        "--env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a setting for the query-api the bench starts (repeatable)",
    )
    parser.add_argument("--json", type=Path, default=REPO / ".local/bench-results/events.json")
    args = parser.parse_args()
    extra_env = dict(item.split("=", 1) for item in args.env)

    raise_fd_limit(args.streams * 2 + 256)
    modes = ["paced", "burst"] if args.mode == "both" else [args.mode]
    runs: list[dict[str, Any]] = []
    if args.base_url:
        if args.tokens_file is None or len(modes) != 1:
            raise SystemExit("--base-url needs --tokens-file and one --mode")
        tokens = read_tokens(args.tokens_file)
        warm = dict(list(tokens.items())[:10])
        rest = dict(list(tokens.items())[10:])
        runs.append(
            asyncio.run(
                one_run(
                    args,
                    modes[0],
                    args.base_url,
                    rest,
                    warm,
                    rss_reader(base_url=args.base_url),
                    None,
                    writes=False,
                )
            )
        )
    else:
        emulator = firestore_emulator().start(timeout=30)
        tmp = REPO / ".local" / "bench-events-auth"
        tmp.mkdir(parents=True, exist_ok=True)
        os.environ["FIRESTORE_EMULATOR_HOST"] = emulator.host
        try:
            with running_issuer(tmp, audience=AUDIENCE) as issuer:
                for mode in modes:
                    users = [f"bench{i:05d}-{uuid.uuid4().hex[:4]}" for i in range(args.streams)]
                    tokens = {user: issuer.token(user) for user in users}
                    warm = {f"warm{i}-{mode}": issuer.token(f"warm{i}-{mode}") for i in range(20)}
                    api = start_query_api(
                        emulator.host, issuer, max_streams=args.streams, extra_env=extra_env
                    )
                    assert api.process is not None
                    try:
                        process = psutil.Process(api.process.pid)
                        runs.append(
                            asyncio.run(
                                one_run(
                                    args,
                                    mode,
                                    api.url,
                                    tokens,
                                    warm,
                                    rss_reader(pid=process.pid),
                                    CpuClock(process),
                                    writes=mode == "paced",
                                )
                            )
                        )
                    finally:
                        api.stop()
        finally:
            emulator.stop()
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"limit_mib": args.limit_mib, "runs": runs}))
    for result in runs:
        print(summary(result, args.limit_mib))


if __name__ == "__main__":
    main()
