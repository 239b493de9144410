"""StreamingPull through SubscriberClient.subscribe(), plus raw-stream flow control."""

from __future__ import annotations

import queue
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator

import grpc
import pytest
from google.cloud import pubsub_v1
from google.cloud.pubsub_v1.subscriber.message import Message
from google.cloud.pubsub_v1.types import BatchSettings, FlowControl
from google.pubsub_v1 import types

from flokraft_devstack.processes import ManagedProcess

pytestmark = pytest.mark.filterwarnings("ignore:The return_immediately flag:DeprecationWarning")


class Collector:
    """A subscribe() callback that records deliveries and decides ack/nack/ignore."""

    def __init__(self, action: Callable[[Message], None] = Message.ack) -> None:
        self.action = action
        self.messages: list[Message] = []
        self.times: list[float] = []
        self.lock = threading.Lock()
        self.changed = threading.Condition(self.lock)

    def __call__(self, message: Message) -> None:
        with self.lock:
            self.messages.append(message)
            self.times.append(time.monotonic())
            self.changed.notify_all()
        self.action(message)

    def wait_for(self, count: int, timeout: float = 30) -> list[Message]:
        with self.lock:
            assert self.changed.wait_for(lambda: len(self.messages) >= count, timeout), (
                f"got {len(self.messages)} of {count} messages"
            )
            return list(self.messages)


@pytest.fixture
def subscribe(
    subscriber: pubsub_v1.SubscriberClient,
) -> Iterator[Callable[..., None]]:
    futures: list[pubsub_v1.subscriber.futures.StreamingPullFuture] = []

    def start(subscription: str, callback: Collector, **kwargs: object) -> None:
        futures.append(subscriber.subscribe(subscription, callback, **kwargs))

    yield start
    for future in futures:
        future.cancel()
        future.result(timeout=10)


def test_subscribe_and_ack(
    publisher: pubsub_v1.PublisherClient,
    topic: str,
    make_subscription: Callable[..., str],
    subscribe: Callable[..., None],
    subscriber: pubsub_v1.SubscriberClient,
) -> None:
    subscription = make_subscription(topic)
    collector = Collector()
    subscribe(subscription, collector)
    for i in range(20):
        publisher.publish(topic, str(i).encode(), n=str(i))
    messages = collector.wait_for(20)
    assert sorted(int(m.data) for m in messages) == list(range(20))
    assert all(m.attributes["n"] == m.data.decode() for m in messages)


def test_subscribe_nack_redelivers(
    publisher: pubsub_v1.PublisherClient,
    topic: str,
    make_subscription: Callable[..., str],
    subscribe: Callable[..., None],
) -> None:
    subscription = make_subscription(topic)
    seen: Counter[str] = Counter()

    def nack_first_time(message: Message) -> None:
        seen[message.message_id] += 1
        if seen[message.message_id] == 1:
            message.nack()
        else:
            message.ack()

    collector = Collector(nack_first_time)
    subscribe(subscription, collector)
    publisher.publish(topic, b"x").result()
    messages = collector.wait_for(2)
    assert messages[0].message_id == messages[1].message_id
    assert messages[0].delivery_attempt is None  # no dead-letter policy


def test_dead_letter_after_five_attempts_via_subscribe(
    publisher: pubsub_v1.PublisherClient,
    topic: str,
    make_subscription: Callable[..., str],
    subscribe: Callable[..., None],
) -> None:
    dead_topic = publisher.create_topic(name=topic + "-dlq").name
    dead_subscription = make_subscription(dead_topic)
    subscription = make_subscription(
        topic, dead_letter_policy={"dead_letter_topic": dead_topic, "max_delivery_attempts": 5}
    )
    nacker = Collector(Message.nack)
    dead = Collector()
    subscribe(subscription, nacker)
    subscribe(dead_subscription, dead)
    publisher.publish(topic, b"poison").result()
    [dead_message] = dead.wait_for(1)
    assert dead_message.data == b"poison"
    assert [m.delivery_attempt for m in nacker.messages] == [1, 2, 3, 4, 5]
    assert dead_message.attributes["CloudPubSubDeadLetterSourceDeliveryCount"] == "5"


def test_lease_expiry_redelivers_to_subscribe(
    publisher: pubsub_v1.PublisherClient,
    topic: str,
    make_subscription: Callable[..., str],
    subscribe: Callable[..., None],
) -> None:
    # The client extends leases while a callback holds a message; max_lease_duration makes
    # it give up, so the 10 s server-side lease runs out and the message comes back.
    subscription = make_subscription(topic, ack_deadline_seconds=10)
    ignore = Collector(lambda message: None)
    subscribe(subscription, ignore, flow_control=FlowControl(max_lease_duration=1))
    publisher.publish(topic, b"slow").result()
    first, second = ignore.wait_for(2, timeout=40)
    assert first.message_id == second.message_id
    assert ignore.times[1] - ignore.times[0] >= 9


def test_closed_stream_releases_its_messages(
    publisher: pubsub_v1.PublisherClient,
    subscriber: pubsub_v1.SubscriberClient,
    topic: str,
    make_subscription: Callable[..., str],
) -> None:
    subscription = make_subscription(topic)
    holder = Collector(lambda message: None)
    future = subscriber.subscribe(subscription, holder)
    publisher.publish(topic, b"held").result()
    holder.wait_for(1)
    future.cancel()
    future.result(timeout=10)
    # Without waiting for the lease: closing the stream makes the message available.
    response = subscriber.pull(subscription=subscription, max_messages=10, timeout=30)
    assert [m.message.data for m in response.received_messages] == [b"held"]


def test_thousand_messages_through_concurrent_subscribers(
    subscriber: pubsub_v1.SubscriberClient,
    topic: str,
    make_subscription: Callable[..., str],
    subscribe: Callable[..., None],
    emulator: ManagedProcess,
) -> None:
    subscription = make_subscription(topic)
    acked: set[str] = set()
    redelivered_after_ack: list[str] = []
    per_subscriber: Counter[int] = Counter()
    lock = threading.Lock()
    total = 1000

    def make_callback(index: int) -> Callable[[Message], None]:
        def callback(message: Message) -> None:
            with lock:
                if message.message_id in acked:
                    redelivered_after_ack.append(message.message_id)
                acked.add(message.message_id)
                per_subscriber[index] += 1
            message.ack()

        return callback

    collectors = [Collector(make_callback(i)) for i in range(4)]
    for collector in collectors:
        subscribe(subscription, collector, flow_control=FlowControl(max_messages=25))
    batching = pubsub_v1.PublisherClient(
        batch_settings=BatchSettings(max_messages=100, max_latency=0.01)
    )
    futures = [batching.publish(topic, str(i).encode()) for i in range(total)]
    ids = {f.result(timeout=30) for f in futures}
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        with lock:
            if len(acked) >= total:
                break
        time.sleep(0.05)
    assert acked == ids
    assert redelivered_after_ack == []
    assert len([i for i in range(4) if per_subscriber[i] > 0]) >= 2, per_subscriber
    # Nothing remains: all acks reached the emulator.
    time.sleep(0.5)
    response = subscriber.pull(subscription=subscription, max_messages=10, return_immediately=True)
    assert list(response.received_messages) == []


class RawStream:
    """A StreamingPull driven by hand, to check server-side flow control exactly."""

    def __init__(self, host: str, first: types.StreamingPullRequest) -> None:
        self.channel = grpc.insecure_channel(host)
        self.requests: queue.Queue[types.StreamingPullRequest | None] = queue.Queue()
        self.requests.put(first)
        call = self.channel.stream_stream(
            "/google.pubsub.v1.Subscriber/StreamingPull",
            request_serializer=types.StreamingPullRequest.serialize,
            response_deserializer=types.StreamingPullResponse.deserialize,
        )
        self.responses = call(iter(self.requests.get, None))
        self.received: queue.Queue[types.ReceivedMessage] = queue.Queue()
        self.error: grpc.RpcError | None = None
        self.ended = threading.Event()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        try:
            for response in self.responses:
                for message in response.received_messages:
                    self.received.put(message)
        except grpc.RpcError as error:
            self.error = error
        finally:
            self.ended.set()

    def take(self, count: int) -> list[types.ReceivedMessage]:
        return [self.received.get(timeout=10) for _ in range(count)]

    def send(self, request: types.StreamingPullRequest) -> None:
        self.requests.put(request)

    def close(self) -> None:
        self.requests.put(None)
        self.responses.cancel()
        self.channel.close()


def test_stream_flow_control_limits_outstanding_messages(
    publisher: pubsub_v1.PublisherClient,
    topic: str,
    make_subscription: Callable[..., str],
    emulator: ManagedProcess,
) -> None:
    subscription = make_subscription(topic)
    for i in range(10):
        publisher.publish(topic, str(i).encode())
    publisher.publish(topic, b"last").result()
    stream = RawStream(
        emulator.host,
        types.StreamingPullRequest(
            subscription=subscription, stream_ack_deadline_seconds=60, max_outstanding_messages=3
        ),
    )
    try:
        first = stream.take(3)
        time.sleep(0.3)  # give the server a chance to (wrongly) send more
        assert stream.received.empty()
        stream.send(types.StreamingPullRequest(ack_ids=[first[0].ack_id]))
        stream.take(1)
        time.sleep(0.3)
        assert stream.received.empty()
        # A nack on the stream frees a slot too and the message comes straight back.
        stream.send(
            types.StreamingPullRequest(
                modify_deadline_ack_ids=[first[1].ack_id], modify_deadline_seconds=[0]
            )
        )
        [again] = stream.take(1)
        assert again.message.message_id == first[1].message.message_id
    finally:
        stream.close()


def test_stream_flow_control_limits_outstanding_bytes(
    publisher: pubsub_v1.PublisherClient,
    topic: str,
    make_subscription: Callable[..., str],
    emulator: ManagedProcess,
) -> None:
    subscription = make_subscription(topic)
    for _ in range(5):
        publisher.publish(topic, b"x" * 1000)
    publisher.publish(topic, b"x" * 1000).result()
    stream = RawStream(
        emulator.host,
        types.StreamingPullRequest(
            subscription=subscription, stream_ack_deadline_seconds=60, max_outstanding_bytes=2500
        ),
    )
    try:
        stream.take(3)  # ~1 KB each: the third one crosses the 2.5 KB limit
        time.sleep(0.3)
        assert stream.received.empty()
    finally:
        stream.close()


def test_several_streams_share_a_subscription(
    publisher: pubsub_v1.PublisherClient,
    topic: str,
    make_subscription: Callable[..., str],
    emulator: ManagedProcess,
) -> None:
    subscription = make_subscription(topic)
    first_request = types.StreamingPullRequest(
        subscription=subscription, stream_ack_deadline_seconds=60, max_outstanding_messages=5
    )
    streams = [RawStream(emulator.host, first_request) for _ in range(2)]
    try:
        for i in range(9):
            publisher.publish(topic, str(i).encode())
        publisher.publish(topic, b"9").result()
        received = streams[0].take(5) + streams[1].take(5)
        assert len({m.message.message_id for m in received}) == 10
    finally:
        for stream in streams:
            stream.close()


def test_stream_ack_deadline_out_of_range_is_invalid(
    topic: str, make_subscription: Callable[..., str], emulator: ManagedProcess
) -> None:
    subscription = make_subscription(topic)
    stream = RawStream(
        emulator.host,
        types.StreamingPullRequest(subscription=subscription, stream_ack_deadline_seconds=5),
    )
    try:
        assert stream.ended.wait(10)
        assert stream.error is not None
        assert stream.error.code() == grpc.StatusCode.INVALID_ARGUMENT
    finally:
        stream.close()
