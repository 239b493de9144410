"""Creates the topics and subscriptions of helm/flokraft/files/pubsub-topology.yaml.

The same file is rendered by the helm chart, so the laptop and the cluster cannot drift.
Idempotent: existing resources are left as they are.

    python -m flokraft_core.messaging.topology apply [--file PATH] [--project ID]
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

import yaml
from google.api_core.exceptions import AlreadyExists
from google.cloud import pubsub_v1  # type: ignore[attr-defined]
from google.protobuf import duration_pb2
from pydantic import BaseModel, ConfigDict, Field

DEFAULT_FILE = (
    Path(__file__).resolve().parents[5] / "helm" / "flokraft" / "files" / "pubsub-topology.yaml"
)


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)


class RetryPolicy(_Model):
    minimum_backoff_seconds: int = Field(10, alias="minimumBackoffSeconds", ge=0, le=600)
    maximum_backoff_seconds: int = Field(600, alias="maximumBackoffSeconds", ge=0, le=600)


class DeadLetterPolicy(_Model):
    dead_letter_topic: str = Field(alias="deadLetterTopic")
    max_delivery_attempts: int = Field(5, alias="maxDeliveryAttempts", ge=5, le=100)


class TopicSpec(_Model):
    name: str


class SubscriptionSpec(_Model):
    name: str
    topic: str
    ack_deadline_seconds: int = Field(60, alias="ackDeadlineSeconds", ge=10, le=600)
    enable_message_ordering: bool = Field(False, alias="enableMessageOrdering")
    retry_policy: RetryPolicy | None = Field(None, alias="retryPolicy")
    dead_letter_policy: DeadLetterPolicy | None = Field(None, alias="deadLetterPolicy")


class Topology(_Model):
    topics: list[TopicSpec]
    subscriptions: list[SubscriptionSpec]

    def subscription(self, name: str) -> SubscriptionSpec:
        for spec in self.subscriptions:
            if spec.name == name:
                return spec
        raise KeyError(name)


def load_topology(path: Path | None = None) -> Topology:
    source = path or Path(os.environ.get("PUBSUB_TOPOLOGY_FILE", DEFAULT_FILE))
    return Topology.model_validate(yaml.safe_load(source.read_text()))


def _subscription_request(project: str, spec: SubscriptionSpec) -> dict[str, Any]:
    request: dict[str, Any] = {
        "name": pubsub_v1.SubscriberClient.subscription_path(project, spec.name),
        "topic": pubsub_v1.PublisherClient.topic_path(project, spec.topic),
        "ack_deadline_seconds": spec.ack_deadline_seconds,
        "enable_message_ordering": spec.enable_message_ordering,
    }
    if spec.retry_policy:
        request["retry_policy"] = {
            "minimum_backoff": duration_pb2.Duration(
                seconds=spec.retry_policy.minimum_backoff_seconds
            ),
            "maximum_backoff": duration_pb2.Duration(
                seconds=spec.retry_policy.maximum_backoff_seconds
            ),
        }
    if spec.dead_letter_policy:
        request["dead_letter_policy"] = {
            "dead_letter_topic": pubsub_v1.PublisherClient.topic_path(
                project, spec.dead_letter_policy.dead_letter_topic
            ),
            "max_delivery_attempts": spec.dead_letter_policy.max_delivery_attempts,
        }
    return request


def apply_topology(project: str, topology: Topology) -> list[str]:
    """Returns the resource names created (those that already existed are skipped)."""
    created: list[str] = []
    publisher = pubsub_v1.PublisherClient()
    subscriber = pubsub_v1.SubscriberClient()
    try:
        for topic in topology.topics:
            name = publisher.topic_path(project, topic.name)
            try:
                publisher.create_topic(request={"name": name})
                created.append(name)
            except AlreadyExists:
                pass
        for spec in topology.subscriptions:
            request = _subscription_request(project, spec)
            try:
                subscriber.create_subscription(request=request)
                created.append(request["name"])
            except AlreadyExists:
                pass
    finally:
        subscriber.close()
    return created


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("command", choices=["apply"])
    parser.add_argument("--file", type=Path, default=None)
    parser.add_argument(
        "--project", default=os.environ.get("GOOGLE_CLOUD_PROJECT", "demo-flokraft")
    )
    args = parser.parse_args(argv)
    created = apply_topology(args.project, load_topology(args.file))
    for name in created:
        print(f"created {name}")
    print(f"pubsub topology applied to project {args.project} ({len(created)} created)")


if __name__ == "__main__":
    main()
