"""Delivery semantics: leases, nacks, back-off, dead-lettering (driven with unary Pull)."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
from google.cloud import pubsub_v1

pytestmark = pytest.mark.filterwarnings("ignore:The return_immediately flag:DeprecationWarning")


def pull_one(
    subscriber: pubsub_v1.SubscriberClient, subscription: str
) -> pubsub_v1.types.ReceivedMessage:
    response = subscriber.pull(subscription=subscription, max_messages=10, timeout=30)
    assert len(response.received_messages) == 1
    return response.received_messages[0]


def pull_nothing(subscriber: pubsub_v1.SubscriberClient, subscription: str) -> None:
    response = subscriber.pull(subscription=subscription, max_messages=10, return_immediately=True)
    assert list(response.received_messages) == []


def test_acked_message_is_gone(
    publisher: pubsub_v1.PublisherClient,
    subscriber: pubsub_v1.SubscriberClient,
    topic: str,
    make_subscription: Callable[..., str],
) -> None:
    subscription = make_subscription(topic)
    publisher.publish(topic, b"x").result()
    received = pull_one(subscriber, subscription)
    pull_nothing(subscriber, subscription)  # leased, so not handed out twice
    subscriber.acknowledge(subscription=subscription, ack_ids=[received.ack_id])
    subscriber.modify_ack_deadline(
        subscription=subscription, ack_ids=[received.ack_id], ack_deadline_seconds=0
    )
    pull_nothing(subscriber, subscription)


def test_expired_lease_is_redelivered(
    publisher: pubsub_v1.PublisherClient,
    subscriber: pubsub_v1.SubscriberClient,
    topic: str,
    make_subscription: Callable[..., str],
) -> None:
    subscription = make_subscription(topic)
    publisher.publish(topic, b"x").result()
    first = pull_one(subscriber, subscription)
    # Shorten the lease to 1 s (ModifyAckDeadline accepts 0..600) instead of waiting 10 s.
    subscriber.modify_ack_deadline(
        subscription=subscription, ack_ids=[first.ack_id], ack_deadline_seconds=1
    )
    leased_at = time.monotonic()
    pull_nothing(subscriber, subscription)
    again = pull_one(subscriber, subscription)  # Pull waits for the expiry
    assert time.monotonic() - leased_at >= 0.9
    assert again.message.message_id == first.message.message_id
    assert again.ack_id != first.ack_id
    # The stale ack id can no longer extend or nack the new lease.
    subscriber.modify_ack_deadline(
        subscription=subscription, ack_ids=[first.ack_id], ack_deadline_seconds=0
    )
    pull_nothing(subscriber, subscription)


def test_nack_redelivers_immediately(
    publisher: pubsub_v1.PublisherClient,
    subscriber: pubsub_v1.SubscriberClient,
    topic: str,
    make_subscription: Callable[..., str],
) -> None:
    subscription = make_subscription(topic)
    publisher.publish(topic, b"x").result()
    first = pull_one(subscriber, subscription)
    subscriber.modify_ack_deadline(
        subscription=subscription, ack_ids=[first.ack_id], ack_deadline_seconds=0
    )
    again = subscriber.pull(subscription=subscription, max_messages=10, return_immediately=True)
    assert [m.message.message_id for m in again.received_messages] == [first.message.message_id]


def test_retry_policy_backs_off_between_redeliveries(
    publisher: pubsub_v1.PublisherClient,
    subscriber: pubsub_v1.SubscriberClient,
    topic: str,
    make_subscription: Callable[..., str],
) -> None:
    subscription = make_subscription(
        topic,
        retry_policy={"minimum_backoff": {"seconds": 1}, "maximum_backoff": {"seconds": 1}},
    )
    publisher.publish(topic, b"x").result()
    first = pull_one(subscriber, subscription)
    subscriber.modify_ack_deadline(
        subscription=subscription, ack_ids=[first.ack_id], ack_deadline_seconds=0
    )
    nacked_at = time.monotonic()
    pull_nothing(subscriber, subscription)  # still backing off
    again = pull_one(subscriber, subscription)
    assert time.monotonic() - nacked_at >= 0.9
    assert again.message.message_id == first.message.message_id


def test_dead_letter_after_max_attempts_with_pull(
    publisher: pubsub_v1.PublisherClient,
    subscriber: pubsub_v1.SubscriberClient,
    topic: str,
    make_subscription: Callable[..., str],
) -> None:
    dead_topic = publisher.create_topic(name=topic + "-dead").name
    dead_subscription = make_subscription(dead_topic)
    subscription = make_subscription(
        topic, dead_letter_policy={"dead_letter_topic": dead_topic, "max_delivery_attempts": 5}
    )
    publisher.publish(topic, b"poison", origin="test").result()
    attempts = []
    for _ in range(5):
        received = pull_one(subscriber, subscription)
        attempts.append(received.delivery_attempt)
        subscriber.modify_ack_deadline(
            subscription=subscription, ack_ids=[received.ack_id], ack_deadline_seconds=0
        )
    assert attempts == [1, 2, 3, 4, 5]
    pull_nothing(subscriber, subscription)
    dead = pull_one(subscriber, dead_subscription)
    assert dead.message.data == b"poison"
    assert dead.message.attributes["origin"] == "test"
    assert dead.message.attributes["CloudPubSubDeadLetterSourceDeliveryCount"] == "5"
    assert dead.message.attributes["CloudPubSubDeadLetterSourceSubscription"] == subscription


def test_dead_letter_counts_expired_leases(
    publisher: pubsub_v1.PublisherClient,
    subscriber: pubsub_v1.SubscriberClient,
    topic: str,
    make_subscription: Callable[..., str],
) -> None:
    dead_topic = publisher.create_topic(name=topic + "-dead").name
    dead_subscription = make_subscription(dead_topic)
    subscription = make_subscription(
        topic, dead_letter_policy={"dead_letter_topic": dead_topic, "max_delivery_attempts": 5}
    )
    publisher.publish(topic, b"slow").result()
    for attempt in range(1, 6):
        received = pull_one(subscriber, subscription)
        assert received.delivery_attempt == attempt
        subscriber.modify_ack_deadline(
            subscription=subscription, ack_ids=[received.ack_id], ack_deadline_seconds=1
        )
    # No puller on the source subscription: the expiry alone forwards it.
    assert pull_one(subscriber, dead_subscription).message.data == b"slow"
