"""Bounded memory: per-subscription backlog caps fail Publish with RESOURCE_EXHAUSTED."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from google.api_core import exceptions
from google.cloud import pubsub_v1

from flokraft_devstack.components import start_pubsub_emulator
from flokraft_devstack.processes import ManagedProcess

from .conftest import unique

pytestmark = pytest.mark.filterwarnings('ignore:The "api" property:DeprecationWarning')


@pytest.fixture(scope="module")
def capped() -> Iterator[ManagedProcess]:
    emulator = start_pubsub_emulator(
        extra_args=["--max-backlog-messages", "10", "--max-backlog-bytes", "5000"]
    )
    yield emulator
    emulator.stop()


def _publish(client: pubsub_v1.PublisherClient, topic: str, data: bytes, count: int) -> None:
    # retry=None: the client retries RESOURCE_EXHAUSTED on Publish for up to a minute.
    client.api.publish(topic=topic, messages=[{"data": data} for _ in range(count)], retry=None)


def test_backlog_cap_rejects_publish_until_acked(
    capped: ManagedProcess, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PUBSUB_EMULATOR_HOST", capped.host)
    publisher = pubsub_v1.PublisherClient()
    subscriber = pubsub_v1.SubscriberClient()
    topic = publisher.create_topic(name=f"projects/caps/topics/{unique('t')}").name
    subscription = f"projects/caps/subscriptions/{unique('s')}"
    subscriber.create_subscription(name=subscription, topic=topic)
    _publish(publisher, topic, b"m", 10)
    with pytest.raises(exceptions.ResourceExhausted) as error:
        _publish(publisher, topic, b"m", 1)
    assert "--max-backlog-messages=10" in str(error.value)
    assert subscription in str(error.value)
    received = subscriber.pull(subscription=subscription, max_messages=10).received_messages
    subscriber.acknowledge(subscription=subscription, ack_ids=[received[0].ack_id])
    _publish(publisher, topic, b"m", 1)  # one slot freed by the ack
    # Deleting the subscription frees its backlog: the topic accepts messages again.
    subscriber.delete_subscription(subscription=subscription)
    _publish(publisher, topic, b"m", 10)


def test_backlog_byte_cap(capped: ManagedProcess, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PUBSUB_EMULATOR_HOST", capped.host)
    publisher = pubsub_v1.PublisherClient()
    subscriber = pubsub_v1.SubscriberClient()
    topic = publisher.create_topic(name=f"projects/caps/topics/{unique('t')}").name
    subscriber.create_subscription(name=f"projects/caps/subscriptions/{unique('s')}", topic=topic)
    _publish(publisher, topic, b"x" * 2000, 2)
    with pytest.raises(exceptions.ResourceExhausted) as error:
        _publish(publisher, topic, b"x" * 2000, 1)
    assert "--max-backlog-bytes=5000" in str(error.value)


def test_topic_without_subscriptions_keeps_nothing(
    capped: ManagedProcess, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PUBSUB_EMULATOR_HOST", capped.host)
    publisher = pubsub_v1.PublisherClient()
    topic = publisher.create_topic(name=f"projects/caps/topics/{unique('t')}").name
    for _ in range(5):
        _publish(publisher, topic, b"m", 10)  # dropped, like on the real service
