"""Topic and subscription management through the official clients."""

from __future__ import annotations

from collections.abc import Callable

from google.cloud import pubsub_v1

from .conftest import PROJECT, unique


def test_topic_lifecycle(publisher: pubsub_v1.PublisherClient) -> None:
    name = f"projects/{PROJECT}/topics/{unique('life')}"
    created = publisher.create_topic(request={"name": name, "labels": {"team": "x"}})
    assert created.name == name
    assert publisher.get_topic(topic=name).labels["team"] == "x"
    listed = [t.name for t in publisher.list_topics(project=f"projects/{PROJECT}")]
    assert name in listed
    publisher.delete_topic(topic=name)
    listed = [t.name for t in publisher.list_topics(project=f"projects/{PROJECT}")]
    assert name not in listed


def test_list_topics_paginates(publisher: pubsub_v1.PublisherClient) -> None:
    project = f"projects/{unique('pages')}"
    created = {publisher.create_topic(name=f"{project}/topics/t{i:03d}").name for i in range(7)}
    pages = publisher.list_topics(request={"project": project, "page_size": 3})
    assert {t.name for t in pages} == created
    pager = publisher.list_topics(request={"project": project, "page_size": 3})
    assert [len(page.topics) for page in pager.pages] == [3, 3, 1]


def test_subscription_lifecycle(
    publisher: pubsub_v1.PublisherClient,
    subscriber: pubsub_v1.SubscriberClient,
    topic: str,
    make_subscription: Callable[..., str],
) -> None:
    name = make_subscription(
        topic,
        ack_deadline_seconds=30,
        enable_message_ordering=True,
        retry_policy={"minimum_backoff": {"seconds": 1}, "maximum_backoff": {"seconds": 5}},
    )
    got = subscriber.get_subscription(subscription=name)
    assert got.topic == topic
    assert got.ack_deadline_seconds == 30
    assert got.enable_message_ordering
    assert got.retry_policy.minimum_backoff.total_seconds() == 1
    listed = [s.name for s in subscriber.list_subscriptions(project=f"projects/{PROJECT}")]
    assert name in listed
    assert name in list(publisher.list_topic_subscriptions(topic=topic))
    subscriber.delete_subscription(subscription=name)
    assert name not in list(publisher.list_topic_subscriptions(topic=topic))


def test_default_ack_deadline_is_ten_seconds(
    subscriber: pubsub_v1.SubscriberClient, topic: str, make_subscription: Callable[..., str]
) -> None:
    name = make_subscription(topic)
    assert subscriber.get_subscription(subscription=name).ack_deadline_seconds == 10


def test_deleting_topic_detaches_subscriptions(
    publisher: pubsub_v1.PublisherClient,
    subscriber: pubsub_v1.SubscriberClient,
    topic: str,
    make_subscription: Callable[..., str],
) -> None:
    name = make_subscription(topic)
    publisher.publish(topic, b"before").result()
    publisher.delete_topic(topic=topic)
    assert subscriber.get_subscription(subscription=name).topic == "_deleted-topic_"
    # The backlog stays pullable, like on the real service.
    response = subscriber.pull(subscription=name, max_messages=10)
    assert [m.message.data for m in response.received_messages] == [b"before"]
