"""Issue 21, point 4: a burst of event streams up to the replica's cap keeps query-api
under its memory alert line (85 % of the chart's 256 Mi). Before, 2,000 streams opened at
once took the process to 230-260 MiB: every stream's setup (middleware stack, token check,
marker read) was in flight at once, and CPython keeps memory it once took. Now streams are
set up a few at a time, and the default cap is derived from the measured cost of a stream
(docs/benchmarks.md). The real process on the emulator, streams over raw sockets, each
from its own client address; the proof in a 256 MiB container comes from the container
harness, which can run bench/events_bench.py --base-url against it."""

from __future__ import annotations

import asyncio
import resource
import uuid

from flokraft_devstack.issuer import TestIssuer
from flokraft_devstack.processes import ManagedProcess
from flokraft_devstack.stream_burst import PeakSampler, RawStreams, open_streams, rss_reader
from query_api.settings import QueryApiSettings
from tests.query_api.conftest import start_query_api

LIMIT_BYTES = 256 * 1024 * 1024
ALERT_LINE = 0.85 * LIMIT_BYTES
BEYOND_THE_CAP = 40


def raise_fd_limit(needed: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < needed:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, needed), hard))


def test_a_burst_up_to_the_cap_stays_under_the_memory_alert_line(
    firestore: ManagedProcess, issuer: TestIssuer
) -> None:
    cap = QueryApiSettings.model_fields["events_max_streams"].default
    raise_fd_limit(2 * (cap + BEYOND_THE_CAP) + 512)  # the service inherits it
    api = start_query_api(
        firestore.host,
        issuer,
        f"burst-{uuid.uuid4().hex[:10]}",
        FORWARDED_ALLOW_IPS="127.0.0.1",  # each stream from its own address
        LOG_LEVEL="WARNING",
    )
    assert api.process is not None
    tokens = {f"b{n}-{uuid.uuid4().hex[:6]}": "" for n in range(cap + BEYOND_THE_CAP)}
    tokens = {user: issuer.token(user) for user in tokens}
    sampler = PeakSampler(rss_reader(pid=api.process.pid)).start()
    streams = RawStreams(api.url)

    async def burst() -> None:
        try:
            await open_streams(streams, tokens, mode="burst")
            await asyncio.sleep(2)
        finally:
            await streams.close()

    try:
        asyncio.run(burst())
    finally:
        sampler.stop()
        api.stop()
    peak = sampler.peak()
    print(
        f"\n{len(streams.ready)} streams opened at once, refused {dict(streams.refused)}, "
        f"peak RSS {peak / 2**20:.1f} MiB (alert line {ALERT_LINE / 2**20:.1f} MiB)"
    )
    assert len(streams.ready) == cap
    assert streams.refused == {503: BEYOND_THE_CAP}
    assert peak < ALERT_LINE, peak
