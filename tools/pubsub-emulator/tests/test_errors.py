"""Failures reach the official clients as the exceptions the real service produces."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from google.api_core import exceptions
from google.cloud import pubsub_v1

from .conftest import PROJECT, unique


def test_missing_topic_is_not_found(publisher: pubsub_v1.PublisherClient) -> None:
    missing = f"projects/{PROJECT}/topics/{unique('missing')}"
    with pytest.raises(exceptions.NotFound):
        publisher.get_topic(topic=missing)
    with pytest.raises(exceptions.NotFound):
        publisher.delete_topic(topic=missing)
    with pytest.raises(exceptions.NotFound):
        publisher.publish(missing, b"x").result(timeout=30)


def test_missing_subscription_is_not_found(
    subscriber: pubsub_v1.SubscriberClient, topic: str
) -> None:
    missing = f"projects/{PROJECT}/subscriptions/{unique('missing')}"
    with pytest.raises(exceptions.NotFound):
        subscriber.get_subscription(subscription=missing)
    with pytest.raises(exceptions.NotFound):
        subscriber.pull(subscription=missing, max_messages=1, retry=None)
    with pytest.raises(exceptions.NotFound):
        subscriber.acknowledge(subscription=missing, ack_ids=["1-1"])
    with pytest.raises(exceptions.NotFound):
        subscriber.delete_subscription(subscription=missing)
    with pytest.raises(exceptions.NotFound):
        subscriber.create_subscription(
            name=missing, topic=f"projects/{PROJECT}/topics/{unique('no-topic')}"
        )


def test_subscribe_to_missing_subscription_fails(subscriber: pubsub_v1.SubscriberClient) -> None:
    missing = f"projects/{PROJECT}/subscriptions/{unique('missing')}"
    future = subscriber.subscribe(missing, lambda message: message.ack())
    with pytest.raises(exceptions.NotFound):
        future.result(timeout=30)


def test_already_exists(
    publisher: pubsub_v1.PublisherClient,
    subscriber: pubsub_v1.SubscriberClient,
    topic: str,
    make_subscription: Callable[..., str],
) -> None:
    with pytest.raises(exceptions.AlreadyExists):
        publisher.create_topic(name=topic)
    name = make_subscription(topic)
    with pytest.raises(exceptions.AlreadyExists):
        subscriber.create_subscription(name=name, topic=topic)


@pytest.mark.parametrize(
    "name",
    [
        "my-topic",
        f"projects/{PROJECT}/topics/ab",
        f"projects/{PROJECT}/topics/9lives",
        f"projects/{PROJECT}/topics/goog-topic",
        f"projects/{PROJECT}/topics/with space",
    ],
)
def test_malformed_topic_names(publisher: pubsub_v1.PublisherClient, name: str) -> None:
    with pytest.raises(exceptions.InvalidArgument):
        publisher.create_topic(name=name)


@pytest.mark.parametrize(
    "fields",
    [
        {"ack_deadline_seconds": 9},
        {"ack_deadline_seconds": 601},
        {"dead_letter_policy": {"max_delivery_attempts": 4}},
        {"dead_letter_policy": {"max_delivery_attempts": 101}},
        {"retry_policy": {"minimum_backoff": {"seconds": 601}}},
        {"retry_policy": {"minimum_backoff": {"seconds": 5}, "maximum_backoff": {"seconds": 2}}},
    ],
)
def test_out_of_range_subscription_settings(
    subscriber: pubsub_v1.SubscriberClient, topic: str, fields: dict[str, object]
) -> None:
    dead_letter = fields.get("dead_letter_policy")
    if isinstance(dead_letter, dict):
        dead_letter["dead_letter_topic"] = topic
    with pytest.raises(exceptions.InvalidArgument):
        subscriber.create_subscription(
            request={"name": f"projects/{PROJECT}/subscriptions/{unique('s')}", "topic": topic}
            | fields
        )


def test_malformed_subscription_name(subscriber: pubsub_v1.SubscriberClient, topic: str) -> None:
    with pytest.raises(exceptions.InvalidArgument):
        subscriber.create_subscription(name=f"projects/{PROJECT}/subscriptions/x", topic=topic)


def test_out_of_range_request_values(
    publisher: pubsub_v1.PublisherClient,
    subscriber: pubsub_v1.SubscriberClient,
    topic: str,
    make_subscription: Callable[..., str],
) -> None:
    name = make_subscription(topic)
    with pytest.raises(exceptions.InvalidArgument):
        subscriber.modify_ack_deadline(subscription=name, ack_ids=["1-1"], ack_deadline_seconds=601)
    with pytest.raises(exceptions.InvalidArgument):
        subscriber.pull(subscription=name, max_messages=0)
    with pytest.raises(exceptions.InvalidArgument):
        publisher.publish(topic, b"").result(timeout=30)


def test_unsupported_features_are_refused(
    subscriber: pubsub_v1.SubscriberClient, topic: str
) -> None:
    with pytest.raises(exceptions.MethodNotImplemented):
        subscriber.create_subscription(
            request={
                "name": f"projects/{PROJECT}/subscriptions/{unique('f')}",
                "topic": topic,
                "filter": 'attributes.kind = "x"',
            }
        )
