"""uvicorn's h11 protocol with two bounds it lacks, applied to every request head.

1. **A complete header block is bounded too.** h11's `max_incomplete_event_size` only
   limits a head that is still incomplete: a 70 KB block that arrives in one read (asyncio
   reads up to 256 KiB at a time) was parsed whole. Here a head that has not ended within
   `max_header_bytes` is answered 431 and the connection closed, whatever the packets.
2. **A head must arrive within `header_timeout` seconds.** uvicorn's keep-alive timer runs
   only between requests and is cancelled by any byte, so a connection that sends nothing
   (half-open) or drips one header line every few seconds was held forever. The timer is
   armed when the connection opens and again after each response; when it fires while
   the connection still waits for (the rest of) a request head, it is closed.

`asyncio.Protocol` hooks only; the parsing stays h11's.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

from flokraft_core.web.errors import ErrorCode

_HEAD_END = b"\r\n\r\n"


def _refusal(status: int, reason: str, code: ErrorCode, message: str) -> bytes:
    body = json.dumps({"error": {"code": code.value, "message": message}}).encode()
    return (
        f"HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\n"
        f"content-length: {len(body)}\r\nconnection: close\r\n\r\n"
    ).encode() + body


class BoundedH11Protocol(H11Protocol):
    """Set `max_header_bytes` and `header_timeout` on a subclass (`bounded_h11_protocol`)."""

    max_header_bytes: int = 16384
    header_timeout: float = 10.0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._head_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_head_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_head_timer()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self.conn.their_state is h11.IDLE and self._head_too_large(data):
            self._disarm_head_timer()
            self._unset_keepalive_if_required()
            self.transport.write(
                _refusal(
                    431,
                    "Request Header Fields Too Large",
                    ErrorCode.HEADER_TOO_LARGE,
                    f"the request line and headers are larger than {self.max_header_bytes} bytes",
                )
            )
            self.transport.close()
            return
        super().data_received(data)

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing():
            self._arm_head_timer()

    def _head_too_large(self, data: bytes) -> bool:
        # While the head is read, h11 keeps it in its receive buffer (which is never
        # larger than the bound, or the last call refused it).
        buffered: Any = self.conn._receive_buffer
        if len(buffered) + len(data) <= self.max_header_bytes:
            return False
        pending = bytes(buffered) + data
        return pending.find(_HEAD_END, 0, self.max_header_bytes + len(_HEAD_END)) < 0

    def _arm_head_timer(self) -> None:
        self._disarm_head_timer()
        self._head_timer = self.loop.call_later(self.header_timeout, self._head_timed_out)

    def _disarm_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_timed_out(self) -> None:
        self._head_timer = None
        # IDLE: no complete head since the connection opened or the last response ended.
        if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
            self._unset_keepalive_if_required()
            self.transport.close()


def bounded_h11_protocol(max_header_bytes: int, header_timeout: float) -> type[H11Protocol]:
    return type(
        "BoundedH11Protocol",
        (BoundedH11Protocol,),
        {"max_header_bytes": max_header_bytes, "header_timeout": header_timeout},
    )
