"""Fixtures: one emulator subprocess per session, official clients, unique resource names."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from google.cloud import pubsub_v1

from flokraft_devstack.components import start_pubsub_emulator
from flokraft_devstack.processes import ManagedProcess

PROJECT = "emulator-tests"


@pytest.fixture(scope="session")
def emulator() -> Iterator[ManagedProcess]:
    running = start_pubsub_emulator()
    previous = os.environ.get("PUBSUB_EMULATOR_HOST")
    # The official clients read this when they are constructed.
    os.environ["PUBSUB_EMULATOR_HOST"] = running.host
    yield running
    running.stop()
    if previous is None:
        os.environ.pop("PUBSUB_EMULATOR_HOST", None)
    else:
        os.environ["PUBSUB_EMULATOR_HOST"] = previous


@pytest.fixture(scope="session")
def publisher(emulator: ManagedProcess) -> pubsub_v1.PublisherClient:
    return pubsub_v1.PublisherClient()


@pytest.fixture(scope="session")
def subscriber(emulator: ManagedProcess) -> Iterator[pubsub_v1.SubscriberClient]:
    client = pubsub_v1.SubscriberClient()
    yield client
    client.close()


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def topic(publisher: pubsub_v1.PublisherClient) -> str:
    name: str = publisher.create_topic(name=f"projects/{PROJECT}/topics/{unique('t')}").name
    return name


@pytest.fixture
def make_subscription(
    subscriber: pubsub_v1.SubscriberClient,
) -> Callable[..., str]:
    def create(topic: str, **fields: Any) -> str:
        name = f"projects/{PROJECT}/subscriptions/{unique('s')}"
        subscriber.create_subscription(request={"name": name, "topic": topic, **fields})
        return name

    return create
