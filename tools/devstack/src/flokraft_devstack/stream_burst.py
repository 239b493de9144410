"""Opening many event streams at once ("burst") or in batches ("paced") against any
query-api, and watching its RSS meanwhile. Used by tests/query_api/test_stream_burst.py and
bench/events_bench.py; point it at any base URL (a container, a pod behind port-forward).

The streams are raw sockets in one asyncio loop (HTTP/1.0, so the body is the bare event
stream): thousands of HTTP clients would cost more than the server under test. Each stream
can claim its own client address through X-Forwarded-For (the server must trust the
caller, FORWARDED_ALLOW_IPS=127.0.0.1), so the per-address cap sees many clients.

RSS comes from the process (psutil, by pid) or, for a server elsewhere, from its own
/metrics (`process_resident_memory_bytes`).
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import httpx
import psutil

EVENTS_PATH = "/analyses/events"


def rss_reader(*, pid: int | None = None, base_url: str | None = None) -> Callable[[], int]:
    if pid is not None:
        process = psutil.Process(pid)
        return lambda: int(process.memory_info().rss)
    if base_url is None:
        raise ValueError("give a pid or a base URL")

    def from_metrics() -> int:
        text = httpx.get(base_url + "/metrics", timeout=10).text
        for line in text.splitlines():
            if line.startswith("process_resident_memory_bytes "):
                return int(float(line.split()[-1]))
        raise LookupError("the server's /metrics has no process_resident_memory_bytes")

    return from_metrics


@dataclass
class PeakSampler:
    """Samples RSS on a thread every `interval` seconds; keeps every sample and the peak."""

    read: Callable[[], int]
    interval: float = 0.1
    samples: list[tuple[float, int, str]] = field(default_factory=list)
    phase: str = "start"
    _stop: threading.Event = field(default_factory=threading.Event)
    _started: float = field(default_factory=time.monotonic)

    def start(self) -> PeakSampler:
        threading.Thread(target=self._run, daemon=True).start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.samples.append((time.monotonic() - self._started, self.read(), self.phase))
            except (OSError, httpx.HTTPError, psutil.Error):
                continue

    def stop(self) -> None:
        self._stop.set()

    def peak(self, phases: tuple[str, ...] | None = None) -> int:
        return max(
            (rss for _, rss, phase in self.samples if phases is None or phase in phases),
            default=0,
        )


class RawStreams:
    """Open event streams; records each stream's `ready` version and every event."""

    def __init__(self, base_url: str) -> None:
        parts = urlsplit(base_url)
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or 80
        self.ready: dict[str, int] = {}
        self.arrivals: dict[tuple[str, int], float] = {}
        self.events: Counter[str] = Counter()
        self.refused: Counter[int] = Counter()
        self.refused_headers: list[str] = []
        self._writers: list[asyncio.StreamWriter] = []
        self._tasks: list[asyncio.Task[None]] = []

    async def open(self, user: str, token: str, *, forwarded_for: str | None = None) -> None:
        ready = asyncio.Event()
        try:
            reader, writer = await asyncio.open_connection(self.host, self.port)
        except OSError:
            self.refused[0] += 1
            return
        self._writers.append(writer)
        extra = f"X-Forwarded-For: {forwarded_for}\r\n" if forwarded_for else ""
        writer.write(
            f"GET {EVENTS_PATH} HTTP/1.0\r\nHost: bench\r\nAccept: text/event-stream\r\n"
            f"Authorization: Bearer {token}\r\n{extra}\r\n".encode()
        )
        try:
            await writer.drain()
            status = await reader.readline()
        except OSError:
            self.refused[0] += 1
            return
        code = int(status.split()[1]) if len(status.split()) > 1 else 0
        head = []
        while (line := await reader.readline()) not in (b"\r\n", b"\n", b""):
            head.append(line.decode("latin-1").strip())
        if code != 200:
            self.refused[code] += 1
            self.refused_headers.append("; ".join(head))
            writer.close()
            return
        self._tasks.append(asyncio.create_task(self._read(user, reader, ready)))
        await ready.wait()

    async def _read(self, user: str, reader: asyncio.StreamReader, ready: asyncio.Event) -> None:
        kind = ""
        try:
            while line := await reader.readline():
                if line.startswith(b"event: "):
                    kind = line[7:].strip().decode()
                elif line.startswith(b"data: "):
                    now = time.monotonic()
                    data = json.loads(line[6:])
                    self.events[kind] += 1
                    if kind == "ready":
                        self.ready[user] = data["version"]
                        ready.set()
                    elif kind == "changed":
                        self.arrivals.setdefault((user, data["version"]), now)
        finally:
            ready.set()

    async def close(self) -> None:
        for writer in self._writers:
            writer.close()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


def client_address(n: int) -> str:
    """A distinct documentation-range-free address per stream (10.x.y.z), as the load
    balancer would report it."""
    return f"10.{(n >> 16) & 255}.{(n >> 8) & 255}.{n & 255}"


async def open_streams(
    streams: RawStreams,
    tokens: dict[str, str],
    *,
    mode: str,
    batch: int = 50,
    distinct_addresses: bool = True,
) -> float:
    """Opens one stream per user: all at once ("burst") or `batch` at a time, each batch
    waiting for its `ready` events ("paced"). Returns the seconds it took."""
    started = time.monotonic()
    users = list(tokens)

    def one(i: int, user: str) -> asyncio.Future[None] | asyncio.Task[None]:
        address = client_address(i) if distinct_addresses else None
        return asyncio.ensure_future(streams.open(user, tokens[user], forwarded_for=address))

    async def run() -> None:
        if mode == "burst":
            await asyncio.gather(*(one(i, u) for i, u in enumerate(users)))
        elif mode == "paced":
            for start in range(0, len(users), batch):
                await asyncio.gather(
                    *(one(start + i, u) for i, u in enumerate(users[start : start + batch]))
                )
        else:
            raise ValueError(f"mode is burst or paced, not {mode!r}")

    await run()
    return time.monotonic() - started
