"""Per-subscription delivery state: backlog, leases, redelivery, ordering, flow control.

Each subscription has one lock and one condition variable.  Pullers (unary Pull and
StreamingPull handler threads) wait on the condition; publishing, acks, nacks, lease
expiry and closing streams notify it.  Nothing here calls into other subscriptions while
holding the lock: messages that must be dead-lettered are handed to ``forward`` after the
lock is released, because forwarding publishes to another topic.
"""

from __future__ import annotations

import itertools
import logging
import math
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from enum import Enum

from pubsub_emulator import wire
from pubsub_emulator.scheduler import Scheduler

_log = logging.getLogger("pubsub_emulator.flow")

# Unique across all subscriptions, so an ack id can never hit another subscription's
# message, nor a message of an earlier subscription that had the same name.
_delivery_keys = itertools.count(1)

MAX_MESSAGES_PER_RESPONSE = 1000
MAX_BYTES_PER_RESPONSE = 4 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class StoredMessage:
    """A published message, serialised once and shared by all subscriptions of the topic."""

    message_id: str
    encoded: bytes  # a serialised PubsubMessage with message_id and publish_time set
    ordering_key: str

    @property
    def size(self) -> int:
        return len(self.encoded)


@dataclass(frozen=True, slots=True)
class DeliveryPolicy:
    ack_deadline_seconds: int
    message_ordering: bool
    dead_letter_topic: str | None
    max_delivery_attempts: int
    # (minimum, maximum) back-off in seconds, or None for immediate redelivery.
    retry_backoff: tuple[float, float] | None


class State(Enum):
    READY = 1  # waiting in the ready queue
    LEASED = 2  # handed out, lease running
    BACKOFF = 3  # nacked/expired, waiting for retry_policy back-off
    HELD = 4  # ordered message behind an unacked predecessor with the same key


@dataclass(slots=True, eq=False)
class _Pending:
    key: int
    message: StoredMessage
    state: State
    deliveries: int = 0
    # Bumped on every state/deadline change so stale timer entries are recognised.
    version: int = 0
    owner: Stream | None = None


@dataclass(frozen=True, slots=True)
class DeadLetter:
    message: StoredMessage
    delivery_attempts: int


@dataclass(eq=False)
class Stream:
    """One StreamingPull connection's view: its lease deadline and flow-control counters."""

    ack_deadline_seconds: int
    max_messages: int
    max_bytes: int
    leased: set[int] = field(default_factory=set)
    leased_bytes: int = 0
    closed: bool = False

    def has_room(self) -> bool:
        if self.max_messages > 0 and len(self.leased) >= self.max_messages:
            return False
        # Like the real service, a byte limit never blocks the first outstanding message.
        return not (self.max_bytes > 0 and self.leased and self.leased_bytes >= self.max_bytes)


class SubscriptionDeletedError(Exception):
    """Raised to pullers waiting on a subscription that has been deleted."""


class Delivery:
    """The delivery engine of one subscription."""

    def __init__(
        self,
        name: str,
        policy: DeliveryPolicy,
        scheduler: Scheduler,
        forward: Callable[[str, list[DeadLetter]], None],
    ) -> None:
        self.name = name
        self.policy = policy
        self._scheduler = scheduler
        self._forward = forward
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self._messages: dict[int, _Pending] = {}
        self._ready: deque[int] = deque()
        self._keys: dict[str, deque[int]] = {}
        self._backlog_bytes = 0
        self._streams: set[Stream] = set()
        self._deleted = False
        self._flow = _log.isEnabledFor(logging.DEBUG)

    # ----------------------------------------------------------------- publishing side

    def backlog(self) -> tuple[int, int]:
        with self._lock:
            return len(self._messages), self._backlog_bytes

    def enqueue(self, messages: Iterable[StoredMessage]) -> None:
        with self._lock:
            if self._deleted:
                return
            for message in messages:
                key = next(_delivery_keys)
                ordered = self.policy.message_ordering and message.ordering_key != ""
                pending = _Pending(key, message, State.READY)
                self._messages[key] = pending
                self._backlog_bytes += message.size
                if ordered:
                    queue = self._keys.setdefault(message.ordering_key, deque())
                    queue.append(key)
                    if len(queue) > 1:
                        pending.state = State.HELD
                        continue
                self._ready.append(key)
            self._cond.notify_all()

    # ------------------------------------------------------------------ pulling side

    def open_stream(self, stream: Stream) -> None:
        with self._lock:
            if self._deleted:
                raise SubscriptionDeletedError(self.name)
            self._streams.add(stream)

    def close_stream(self, stream: Stream) -> None:
        """Stop a stream; its outstanding messages become redeliverable at once."""
        with self._lock:
            stream.closed = True
            self._streams.discard(stream)
            dead: list[DeadLetter] = []
            for key in list(stream.leased):
                pending = self._messages.get(key)
                if pending is not None and pending.owner is stream:
                    self._release(pending, dead, "stream closed")
            stream.leased.clear()
            stream.leased_bytes = 0
            self._cond.notify_all()
        self._forward_dead(dead)

    def wake_all(self) -> None:
        with self._lock:
            self._cond.notify_all()

    def next_batch(self, stream: Stream, timeout: float) -> list[bytes]:
        """Messages for a stream, waiting up to ``timeout`` s; [] on timeout or close."""
        with self._lock:
            deadline = time.monotonic() + timeout
            while True:
                if self._deleted:
                    raise SubscriptionDeletedError(self.name)
                if stream.closed:
                    return []
                if stream.has_room() and self._ready:
                    # Split the backlog between waiting streams so several streams on one
                    # subscription share it instead of the first taking everything.
                    share = math.ceil(len(self._ready) / max(1, len(self._streams)))
                    batch = self._take(
                        min(MAX_MESSAGES_PER_RESPONSE, max(1, share)),
                        stream.ack_deadline_seconds,
                        stream,
                    )
                    if batch:
                        return batch
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return []
                self._cond.wait(remaining)

    def pull(self, max_messages: int, wait_seconds: float) -> list[bytes]:
        """Unary Pull: wait up to ``wait_seconds`` for at least one message."""
        with self._lock:
            deadline = time.monotonic() + wait_seconds
            while True:
                if self._deleted:
                    raise SubscriptionDeletedError(self.name)
                batch = self._take(max_messages, self.policy.ack_deadline_seconds, None)
                remaining = deadline - time.monotonic()
                if batch or remaining <= 0:
                    return batch
                self._cond.wait(remaining)

    def _take(self, limit: int, ack_deadline: int, stream: Stream | None) -> list[bytes]:
        out: list[bytes] = []
        size = 0
        now = time.monotonic()
        with_attempts = self.policy.dead_letter_topic is not None
        while self._ready and len(out) < limit and size < MAX_BYTES_PER_RESPONSE:
            if stream is not None and not stream.has_room():
                break
            key = self._ready.popleft()
            pending = self._messages.get(key)
            if pending is None or pending.state is not State.READY:
                continue  # acked (or re-queued) since it entered the ready queue
            pending.deliveries += 1
            pending.state = State.LEASED
            pending.version += 1
            pending.owner = stream
            if stream is not None:
                stream.leased.add(key)
                stream.leased_bytes += pending.message.size
            self._scheduler.call_at(now + ack_deadline, self._on_timer, key, pending.version)
            ack_id = f"{key}-{pending.deliveries}"
            attempt = pending.deliveries if with_attempts else 0
            out.append(wire.received_message(ack_id, pending.message.encoded, attempt))
            size += pending.message.size
            if self._flow:
                _log.debug(
                    "deliver %s message=%s attempt=%d",
                    self.name,
                    pending.message.message_id,
                    pending.deliveries,
                )
        return out

    # ------------------------------------------------------------ acks and deadlines

    def acknowledge(self, ack_ids: Iterable[str]) -> None:
        with self._lock:
            removed = False
            for ack_id in ack_ids:
                parsed = _parse_ack_id(ack_id)
                pending = self._messages.get(parsed[0]) if parsed else None
                # Acks for an earlier delivery of the same message still count: at-least-once
                # means a late ack should stop further redelivery, not be lost.
                if pending is not None:
                    self._remove(pending)
                    removed = True
                    if self._flow:
                        _log.debug("ack %s message=%s", self.name, pending.message.message_id)
            if removed:
                self._cond.notify_all()

    def modify_ack_deadline(self, ack_ids: Iterable[str], seconds: int) -> None:
        """Extend leases, or nack them when ``seconds`` is 0.

        Only the current delivery's ack id counts; a stale one must not extend or nack
        a message that has since been handed to someone else.
        """
        dead: list[DeadLetter] = []
        with self._lock:
            now = time.monotonic()
            for ack_id in ack_ids:
                parsed = _parse_ack_id(ack_id)
                if parsed is None:
                    continue
                pending = self._messages.get(parsed[0])
                if (
                    pending is None
                    or pending.state is not State.LEASED
                    or pending.deliveries != parsed[1]
                ):
                    continue
                if seconds == 0:
                    self._release(pending, dead, "nack")
                else:
                    pending.version += 1
                    self._scheduler.call_at(
                        now + seconds, self._on_timer, pending.key, pending.version
                    )
            if seconds == 0:
                self._cond.notify_all()
        self._forward_dead(dead)

    def _on_timer(self, key: int, version: int) -> None:
        dead: list[DeadLetter] = []
        with self._lock:
            pending = self._messages.get(key)
            if pending is None or pending.version != version:
                return
            if pending.state is State.LEASED:
                self._release(pending, dead, "lease expired")
            elif pending.state is State.BACKOFF:
                pending.state = State.READY
                pending.version += 1
                self._ready.append(key)
            self._cond.notify_all()
        self._forward_dead(dead)

    def _release(self, pending: _Pending, dead: list[DeadLetter], reason: str) -> None:
        """A leased message comes back (nack, expiry, stream closed). Caller holds the lock."""
        self._detach(pending)
        pending.version += 1
        if self._flow:
            _log.debug(
                "%s %s message=%s attempt=%d",
                reason,
                self.name,
                pending.message.message_id,
                pending.deliveries,
            )
        policy = self.policy
        if (
            policy.dead_letter_topic is not None
            and pending.deliveries >= policy.max_delivery_attempts
        ):
            self._remove(pending)
            dead.append(DeadLetter(pending.message, pending.deliveries))
            return
        if policy.retry_backoff is not None:
            minimum, maximum = policy.retry_backoff
            backoff = min(maximum, minimum * 2 ** max(0, pending.deliveries - 1))
            if backoff > 0:
                pending.state = State.BACKOFF
                self._scheduler.call_at(
                    time.monotonic() + backoff, self._on_timer, pending.key, pending.version
                )
                return
        pending.state = State.READY
        # Redeliveries go first: they are the oldest messages in the backlog.
        self._ready.appendleft(pending.key)

    def _detach(self, pending: _Pending) -> None:
        stream = pending.owner
        if stream is not None:
            stream.leased.discard(pending.key)
            stream.leased_bytes -= pending.message.size
            pending.owner = None

    def _remove(self, pending: _Pending) -> None:
        self._detach(pending)
        del self._messages[pending.key]
        self._backlog_bytes -= pending.message.size
        pending.version += 1
        ordering_key = pending.message.ordering_key
        queue = self._keys.get(ordering_key) if ordering_key else None
        if queue is None:
            return
        if queue[0] == pending.key:
            queue.popleft()
        else:
            queue.remove(pending.key)
        if not queue:
            del self._keys[ordering_key]
            return
        head = self._messages[queue[0]]
        if head.state is State.HELD:
            head.state = State.READY
            self._ready.append(head.key)

    def _forward_dead(self, dead: list[DeadLetter]) -> None:
        if dead:
            self._forward(self.name, dead)

    # --------------------------------------------------------------------- lifecycle

    def delete(self) -> None:
        """Free all state; waiting pullers get SubscriptionDeletedError."""
        with self._lock:
            self._deleted = True
            self._messages.clear()
            self._ready.clear()
            self._keys.clear()
            self._backlog_bytes = 0
            for stream in self._streams:
                stream.leased.clear()
                stream.leased_bytes = 0
            self._cond.notify_all()


def _parse_ack_id(ack_id: str) -> tuple[int, int] | None:
    key, sep, delivery = ack_id.partition("-")
    if not sep or not key.isdigit() or not delivery.isdigit():
        return None
    return int(key), int(delivery)
