"""2,000 event streams opened at once against the query-api container, under the chart's
256 MiB limit: the kernel must not OOM-kill it. Every stream gets an answer (its `ready`
event, or a clean refusal), the container keeps serving, and its cgroup's peak usage stays
below the limit.

The streams are opened through real HTTP with real tokens, all at the same moment (no
batching: a burst, as after a deploy or a network blip every open page reconnects), by one
asyncio driver on raw sockets as bench/events_bench.py does (2,000 httpx clients would
cost this machine more than the server). How admission is capped and paced is the polling
API's own work; this module is where its result is proven in a real container.
"""

from __future__ import annotations

import asyncio
import json
import resource
import time
from dataclasses import dataclass, field

from flokraft_devstack.issuer import TestIssuer
from tests.containers.pods import Pod
from tests.containers.stack import Stack

STREAMS = 2000
EVENTS_PATH = "/analyses/events"


@dataclass
class Burst:
    port: int
    ready: int = 0
    refused: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    _writers: list[asyncio.StreamWriter] = field(default_factory=list)

    async def open(self, token: str) -> None:
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
            self._writers.append(writer)
            writer.write(
                f"GET {EVENTS_PATH} HTTP/1.0\r\nHost: burst\r\nAccept: text/event-stream\r\n"
                f"Authorization: Bearer {token}\r\n\r\n".encode()
            )
            await writer.drain()
            status = await asyncio.wait_for(reader.readline(), 120)
            if b" 200 " not in status:
                self.refused.append(status.decode(errors="replace").strip())
                return
            kind = ""
            while line := await asyncio.wait_for(reader.readline(), 120):
                if line.startswith(b"event: "):
                    kind = line[7:].strip().decode()
                elif line.startswith(b"data: ") and kind == "ready":
                    self.ready += 1
                    return
            self.failed.append("the stream ended before its ready event")
        except (OSError, TimeoutError) as exc:
            self.failed.append(repr(exc))

    def close(self) -> None:
        for writer in self._writers:
            writer.close()


def raise_fd_limit(needed: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < needed:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, needed), hard))


def peak_usage(pod: Pod) -> int:
    """The cgroup's own peak (v1 max_usage_in_bytes, v2 memory.peak where the kernel has
    it); the current usage otherwise."""
    for path in ("/sys/fs/cgroup/memory/memory.max_usage_in_bytes", "/sys/fs/cgroup/memory.peak"):
        result = pod.exec("cat", path)
        if result.returncode == 0:
            return int(result.stdout)
    return pod.cgroup_memory()["usage"]


def test_2000_stream_burst_is_not_oom_killed(stack: Stack, issuer: TestIssuer) -> None:
    pod = stack.pods["query-api"]
    assert pod.spec.memory_limit == 256 * 2**20
    restarts, ooms, deaths = pod.restart_count(), pod.oom_events(), len(pod.deaths())
    raise_fd_limit(STREAMS * 2 + 512)
    tokens = [issuer.token(f"burst-{i:04d}") for i in range(STREAMS)]
    burst = Burst(port=pod.spec.port)

    async def run() -> tuple[float, dict[str, int], int]:
        started = time.monotonic()
        await asyncio.gather(*(burst.open(token) for token in tokens))
        took = time.monotonic() - started
        # Measured while every admitted stream is still open.
        cgroup = await asyncio.to_thread(pod.cgroup_memory)
        peak = await asyncio.to_thread(peak_usage, pod)
        burst.close()
        await asyncio.sleep(0.5)
        return took, cgroup, peak

    took, cgroup, peak = asyncio.run(run())
    figures = {
        "ready": burst.ready,
        "refused": len(burst.refused),
        "failed": len(burst.failed),
        "seconds": round(took, 1),
        "peak_mib": round(peak / 2**20, 1),
        "working_set_mib": round(cgroup["working_set"] / 2**20, 1),
        "limit_mib": cgroup["limit"] // 2**20,
    }
    print(f"\n2,000-stream burst: {json.dumps(figures)}", sorted(set(burst.refused))[:5])
    assert pod.oom_events() == ooms, "the kernel OOM-killed query-api during the burst"
    assert len(pod.deaths()) == deaths
    assert pod.restart_count() == restarts
    assert burst.failed == [], burst.failed[:5]
    assert burst.ready + len(burst.refused) == STREAMS
    assert all(" 503 " in line or " 429 " in line for line in burst.refused), burst.refused[:5]
    assert peak < cgroup["limit"]
    assert pod.running()
