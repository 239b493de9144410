"""A Server-Sent Events client for tests: reads a real stream over HTTP on a thread of its
own and records every event and comment with the time it arrived."""

from __future__ import annotations

import contextlib
import json
import queue
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import httpx


@dataclass
class Event:
    event: str
    data: str
    id: str | None
    retry: int | None
    received_at: float  # time.monotonic()

    @property
    def json(self) -> Any:
        return json.loads(self.data)


@dataclass
class EventStream:
    url: str
    headers: dict[str, str]
    status: int | None = None
    response_headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    comments: list[str] = field(default_factory=list)
    ended: threading.Event = field(default_factory=threading.Event)
    _events: queue.Queue[Event] = field(default_factory=queue.Queue)
    _opened: threading.Event = field(default_factory=threading.Event)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    _response: httpx.Response | None = None

    def open(self, timeout: float = 15.0) -> EventStream:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        if not self._opened.wait(timeout):
            raise TimeoutError(f"no response from {self.url} within {timeout} s")
        return self

    def _run(self) -> None:
        try:
            with (
                httpx.Client(timeout=httpx.Timeout(10.0, read=None)) as client,
                client.stream("GET", self.url, headers=self.headers) as response,
            ):
                self._response = response
                self.status = response.status_code
                self.response_headers = dict(response.headers)
                if response.status_code != 200:
                    self.body = response.read()
                    self._opened.set()
                    return
                self._opened.set()
                self._parse(response)
        except Exception:  # the stream ended: by the server, or by close()
            pass
        finally:
            self._opened.set()
            self.ended.set()

    def _parse(self, response: httpx.Response) -> None:
        fields: dict[str, str] = {}
        for line in response.iter_lines():
            if self._stop.is_set():
                return
            if line == "":
                if "data" in fields or "event" in fields:
                    self._events.put(
                        Event(
                            event=fields.get("event", "message"),
                            data=fields.get("data", ""),
                            id=fields.get("id"),
                            retry=int(fields["retry"]) if "retry" in fields else None,
                            received_at=time.monotonic(),
                        )
                    )
                fields = {}
            elif line.startswith(":"):
                self.comments.append(line[1:].strip())
            else:
                name, _, value = line.partition(":")
                fields[name] = value[1:] if value.startswith(" ") else value

    def next(self, timeout: float = 10.0) -> Event:
        try:
            return self._events.get(timeout=timeout)
        except queue.Empty:
            raise TimeoutError(f"no event within {timeout} s") from None

    def drain(self) -> list[Event]:
        events = []
        while True:
            try:
                events.append(self._events.get_nowait())
            except queue.Empty:
                return events

    def close(self) -> None:
        """Hangs up, as a browser tab that goes away does."""
        self._stop.set()
        response = self._response
        if response is not None:
            # Closing from another thread may race the reader, which then ends anyway.
            with contextlib.suppress(Exception):
                response.close()
        self.ended.wait(10)
