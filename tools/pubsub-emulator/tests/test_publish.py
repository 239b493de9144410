"""Publishing: server-assigned ids and times, attributes, batching, ordering keys."""

from __future__ import annotations

import datetime
from collections.abc import Callable

from google.cloud import pubsub_v1
from google.cloud.pubsub_v1.types import BatchSettings, PublisherOptions


def test_publish_assigns_ids_time_and_keeps_attributes(
    publisher: pubsub_v1.PublisherClient,
    subscriber: pubsub_v1.SubscriberClient,
    topic: str,
    make_subscription: Callable[..., str],
) -> None:
    subscription = make_subscription(topic)
    before = datetime.datetime.now(datetime.UTC) - datetime.timedelta(seconds=1)
    ids = [publisher.publish(topic, b"payload", kind="a", n=str(i)).result() for i in range(3)]
    assert len(set(ids)) == 3
    response = subscriber.pull(subscription=subscription, max_messages=10)
    received = sorted(response.received_messages, key=lambda m: m.message.attributes["n"])
    assert [m.message.message_id for m in received] == ids
    first = received[0].message
    assert first.data == b"payload"
    assert dict(first.attributes) == {"kind": "a", "n": "0"}
    assert first.publish_time >= before
    assert received[0].delivery_attempt == 0  # only set with a dead-letter policy


def test_batching_publisher(
    subscriber: pubsub_v1.SubscriberClient,
    topic: str,
    make_subscription: Callable[..., str],
    emulator: object,
) -> None:
    subscription = make_subscription(topic)
    batching = pubsub_v1.PublisherClient(
        batch_settings=BatchSettings(max_messages=50, max_latency=0.05)
    )
    futures = [batching.publish(topic, f"m{i}".encode()) for i in range(200)]
    ids = [f.result(timeout=30) for f in futures]
    assert len(set(ids)) == 200
    seen: set[bytes] = set()
    while len(seen) < 200:
        response = subscriber.pull(subscription=subscription, max_messages=1000)
        seen.update(m.message.data for m in response.received_messages)
        subscriber.acknowledge(
            subscription=subscription,
            ack_ids=[m.ack_id for m in response.received_messages],
        )
    assert seen == {f"m{i}".encode() for i in range(200)}


def test_every_subscription_gets_every_message(
    publisher: pubsub_v1.PublisherClient,
    subscriber: pubsub_v1.SubscriberClient,
    topic: str,
    make_subscription: Callable[..., str],
) -> None:
    first, second = make_subscription(topic), make_subscription(topic)
    publisher.publish(topic, b"fan-out").result()
    for name in (first, second):
        response = subscriber.pull(subscription=name, max_messages=10)
        assert [m.message.data for m in response.received_messages] == [b"fan-out"]


def test_ordering_keys_deliver_in_publish_order_one_at_a_time(
    subscriber: pubsub_v1.SubscriberClient,
    topic: str,
    make_subscription: Callable[..., str],
    emulator: object,
) -> None:
    subscription = make_subscription(topic, enable_message_ordering=True)
    ordered = pubsub_v1.PublisherClient(
        publisher_options=PublisherOptions(enable_message_ordering=True)
    )
    futures = [
        ordered.publish(topic, f"{key}{i}".encode(), ordering_key=key)
        for i in range(5)
        for key in ("a", "b")
    ]
    for future in futures:
        future.result(timeout=30)
    delivered: list[bytes] = []
    for _ in range(5):
        # The next message of a key is held back until the previous one is acked.
        response = subscriber.pull(subscription=subscription, max_messages=100)
        batch = response.received_messages
        assert sorted(m.message.ordering_key for m in batch) == ["a", "b"]
        delivered.extend(m.message.data for m in batch)
        subscriber.acknowledge(subscription=subscription, ack_ids=[m.ack_id for m in batch])
    assert [d for d in delivered if d.startswith(b"a")] == [f"a{i}".encode() for i in range(5)]
    assert [d for d in delivered if d.startswith(b"b")] == [f"b{i}".encode() for i in range(5)]


def test_ordered_message_is_redelivered_before_its_successor(
    subscriber: pubsub_v1.SubscriberClient,
    topic: str,
    make_subscription: Callable[..., str],
    emulator: object,
) -> None:
    subscription = make_subscription(topic, enable_message_ordering=True)
    ordered = pubsub_v1.PublisherClient(
        publisher_options=PublisherOptions(enable_message_ordering=True)
    )
    for i in range(3):
        ordered.publish(topic, f"k{i}".encode(), ordering_key="k").result(timeout=30)
    first = subscriber.pull(subscription=subscription, max_messages=10).received_messages
    assert [m.message.data for m in first] == [b"k0"]
    subscriber.modify_ack_deadline(
        subscription=subscription, ack_ids=[first[0].ack_id], ack_deadline_seconds=0
    )
    again = subscriber.pull(subscription=subscription, max_messages=10).received_messages
    assert [m.message.data for m in again] == [b"k0"]


def test_subscribe_with_ordering_keeps_order(
    subscriber: pubsub_v1.SubscriberClient,
    topic: str,
    make_subscription: Callable[..., str],
    emulator: object,
) -> None:
    import threading

    subscription = make_subscription(topic, enable_message_ordering=True)
    ordered = pubsub_v1.PublisherClient(
        publisher_options=PublisherOptions(enable_message_ordering=True)
    )
    futures = [
        ordered.publish(topic, str(i).encode(), ordering_key=f"key{i % 3}") for i in range(60)
    ]
    for future in futures:
        future.result(timeout=30)
    received: dict[str, list[int]] = {}
    done = threading.Event()
    lock = threading.Lock()

    def callback(message: pubsub_v1.subscriber.message.Message) -> None:
        with lock:
            received.setdefault(message.ordering_key, []).append(int(message.data))
            if sum(len(v) for v in received.values()) == 60:
                done.set()
        message.ack()

    future = subscriber.subscribe(subscription, callback)
    try:
        assert done.wait(30)
    finally:
        future.cancel()
        future.result(timeout=10)
    for key, values in received.items():
        assert values == sorted(values), key
        assert len(values) == 20
