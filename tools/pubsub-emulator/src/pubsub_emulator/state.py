"""Topics, subscriptions and publishing: the emulator's whole in-memory model.

Lock order is registry -> topic -> subscription; nothing takes them the other way round.
Protobuf messages are the raw ``google.protobuf`` classes behind the proto-plus types
(``Topic.pb()``): they are several times faster than proto-plus wrappers.
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import grpc
from google.pubsub_v1 import types

from pubsub_emulator import names
from pubsub_emulator.delivery import (
    DeadLetter,
    Delivery,
    DeliveryPolicy,
    StoredMessage,
)
from pubsub_emulator.errors import GrpcStatusError, invalid, not_found
from pubsub_emulator.scheduler import Scheduler

_log = logging.getLogger("pubsub_emulator")
_flow_log = logging.getLogger("pubsub_emulator.flow")

# Raw protobuf classes (typed Any: they are generated at runtime by proto-plus).
TopicPb: Any = types.Topic.pb()
SubscriptionPb: Any = types.Subscription.pb()
PubsubMessagePb: Any = types.PubsubMessage.pb()

DEFAULT_ACK_DEADLINE = 10
DEFAULT_MAX_DELIVERY_ATTEMPTS = 5
DEFAULT_RETENTION_SECONDS = 7 * 24 * 3600
DEFAULT_EXPIRATION_TTL_SECONDS = 31 * 24 * 3600
MAX_MESSAGES_PER_PUBLISH = 1000
MAX_ATTRIBUTES = 100
MAX_ATTRIBUTE_KEY_BYTES = 256
MAX_ATTRIBUTE_VALUE_BYTES = 1024
MAX_ORDERING_KEY_BYTES = 1024
MAX_MESSAGE_BYTES = 10 * 1024 * 1024


@dataclass(frozen=True)
class Limits:
    """Per-subscription backlog caps; Publish fails with RESOURCE_EXHAUSTED beyond them."""

    max_backlog_messages: int = 1_000_000
    max_backlog_bytes: int = 1024 * 1024 * 1024


@dataclass(eq=False)
class _Topic:
    config: Any
    lock: threading.Lock = field(default_factory=threading.Lock)
    subscriptions: dict[str, _Subscription] = field(default_factory=dict)
    deleted: bool = False


@dataclass(eq=False)
class _Subscription:
    config: Any
    delivery: Delivery


class Registry:
    def __init__(self, limits: Limits | None = None, scheduler: Scheduler | None = None) -> None:
        self.limits = limits or Limits()
        self.scheduler = scheduler or Scheduler()
        self._lock = threading.Lock()
        self._topics: dict[str, _Topic] = {}
        self._subscriptions: dict[str, _Subscription] = {}
        self._message_ids = itertools.count(1)

    # ------------------------------------------------------------------------ topics

    def create_topic(self, request: Any) -> Any:
        name = names.validate_topic(request.name)
        if request.kms_key_name or request.HasField("schema_settings"):
            raise GrpcStatusError(
                grpc.StatusCode.UNIMPLEMENTED,
                "The emulator supports neither CMEK nor schemas on topics.",
            )
        config = TopicPb()
        config.CopyFrom(request)
        with self._lock:
            if name in self._topics:
                raise GrpcStatusError(grpc.StatusCode.ALREADY_EXISTS, "Topic already exists")
            self._topics[name] = _Topic(config)
        _log.info("created topic %s", name)
        return config

    def get_topic(self, name: str) -> Any:
        return self._topic(name).config

    def list_topics(self, project: str, page_size: int, page_token: str) -> tuple[list[Any], str]:
        names.validate_project(project)
        prefix = project + "/topics/"
        with self._lock:
            matching = sorted(n for n in self._topics if n.startswith(prefix))
            page, token = _paginate(matching, page_size, page_token)
            return [self._topics[n].config for n in page], token

    def list_topic_subscriptions(
        self, topic: str, page_size: int, page_token: str
    ) -> tuple[list[str], str]:
        found = self._topic(topic)
        with found.lock:
            subscription_names = sorted(found.subscriptions)
        return _paginate(subscription_names, page_size, page_token)

    def delete_topic(self, name: str) -> None:
        names.validate_topic(name)
        with self._lock:
            topic = self._topics.pop(name, None)
            if topic is None:
                raise not_found("topic", name)
            with topic.lock:
                topic.deleted = True
                for subscription in topic.subscriptions.values():
                    # The real service keeps such subscriptions, pointing at this marker.
                    subscription.config.topic = names.DELETED_TOPIC
                topic.subscriptions.clear()
        _log.info("deleted topic %s", name)

    def _topic(self, name: str) -> _Topic:
        names.validate_topic(name)
        with self._lock:
            topic = self._topics.get(name)
        if topic is None:
            raise not_found("topic", name)
        return topic

    # ------------------------------------------------------------------ subscriptions

    def create_subscription(self, request: Any) -> Any:
        name = names.validate_subscription(request.name)
        names.validate_topic(request.topic)
        policy = self._policy_for(request)
        config = SubscriptionPb()
        config.CopyFrom(request)
        config.ack_deadline_seconds = policy.ack_deadline_seconds
        if not config.HasField("message_retention_duration"):
            config.message_retention_duration.seconds = DEFAULT_RETENTION_SECONDS
        if not config.HasField("expiration_policy"):
            config.expiration_policy.ttl.seconds = DEFAULT_EXPIRATION_TTL_SECONDS
        if config.HasField("dead_letter_policy"):
            config.dead_letter_policy.max_delivery_attempts = policy.max_delivery_attempts
        config.state = SubscriptionPb.State.ACTIVE
        with self._lock:
            if name in self._subscriptions:
                raise GrpcStatusError(grpc.StatusCode.ALREADY_EXISTS, "Subscription already exists")
            topic = self._topics.get(request.topic)
            if topic is None:
                raise not_found("topic", request.topic)
            dead_letter_topic = policy.dead_letter_topic
            if dead_letter_topic is not None and dead_letter_topic not in self._topics:
                raise not_found("topic", dead_letter_topic)
            subscription = _Subscription(
                config, Delivery(name, policy, self.scheduler, self._forward_dead_letters)
            )
            with topic.lock:
                topic.subscriptions[name] = subscription
            self._subscriptions[name] = subscription
        _log.info("created subscription %s on topic %s", name, request.topic)
        return config

    def _policy_for(self, request: Any) -> DeliveryPolicy:
        _reject_unsupported_subscription_features(request)
        ack_deadline = request.ack_deadline_seconds or DEFAULT_ACK_DEADLINE
        if not 10 <= ack_deadline <= 600:
            raise invalid(
                f"Invalid ack_deadline_seconds {ack_deadline}: must be between 10 and 600."
            )
        dead_letter_topic: str | None = None
        max_attempts = DEFAULT_MAX_DELIVERY_ATTEMPTS
        if request.HasField("dead_letter_policy"):
            dead_letter = request.dead_letter_policy
            if dead_letter.dead_letter_topic:
                dead_letter_topic = names.validate_topic(dead_letter.dead_letter_topic)
            max_attempts = dead_letter.max_delivery_attempts or DEFAULT_MAX_DELIVERY_ATTEMPTS
            if not 5 <= max_attempts <= 100:
                raise invalid(
                    f"Invalid max_delivery_attempts {max_attempts}: must be between 5 and 100."
                )
        retry_backoff: tuple[float, float] | None = None
        if request.HasField("retry_policy"):
            retry = request.retry_policy
            minimum = _seconds(retry.minimum_backoff) if retry.HasField("minimum_backoff") else 10
            maximum = _seconds(retry.maximum_backoff) if retry.HasField("maximum_backoff") else 600
            if not (0 <= minimum <= 600 and 0 <= maximum <= 600):
                raise invalid("Invalid retry_policy: back-off must be between 0s and 600s.")
            if maximum < minimum:
                raise invalid("Invalid retry_policy: maximum_backoff is below minimum_backoff.")
            retry_backoff = (minimum, maximum)
        return DeliveryPolicy(
            ack_deadline_seconds=ack_deadline,
            message_ordering=request.enable_message_ordering,
            dead_letter_topic=dead_letter_topic,
            max_delivery_attempts=max_attempts,
            retry_backoff=retry_backoff,
        )

    def get_subscription(self, name: str) -> Any:
        return self.subscription(name).config

    def subscription(self, name: str) -> _Subscription:
        names.validate_subscription(name)
        with self._lock:
            subscription = self._subscriptions.get(name)
        if subscription is None:
            raise not_found("subscription", name)
        return subscription

    def list_subscriptions(
        self, project: str, page_size: int, page_token: str
    ) -> tuple[list[Any], str]:
        names.validate_project(project)
        prefix = project + "/subscriptions/"
        with self._lock:
            matching = sorted(n for n in self._subscriptions if n.startswith(prefix))
            page, token = _paginate(matching, page_size, page_token)
            return [self._subscriptions[n].config for n in page], token

    def delete_subscription(self, name: str) -> None:
        names.validate_subscription(name)
        with self._lock:
            subscription = self._subscriptions.pop(name, None)
            if subscription is None:
                raise not_found("subscription", name)
            topic = self._topics.get(subscription.config.topic)
            if topic is not None:
                with topic.lock:
                    topic.subscriptions.pop(name, None)
        subscription.delivery.delete()
        _log.info("deleted subscription %s", name)

    def wake_all(self) -> None:
        """Wake every waiting puller (used at shutdown so handler threads exit quickly)."""
        with self._lock:
            subscriptions = list(self._subscriptions.values())
        for subscription in subscriptions:
            subscription.delivery.wake_all()

    # ---------------------------------------------------------------------- publishing

    def publish(self, topic_name: str, messages: list[Any]) -> list[str]:
        """Assign ids and publish times, then enqueue on every subscription of the topic."""
        topic = self._topic(topic_name)
        if not messages:
            raise invalid("The request must contain at least one message.")
        if len(messages) > MAX_MESSAGES_PER_PUBLISH:
            raise invalid(f"At most {MAX_MESSAGES_PER_PUBLISH} messages per publish request.")
        for message in messages:
            _validate_message(message)
        with topic.lock:
            if topic.deleted:
                raise not_found("topic", topic_name)
            # Ids and publish times are assigned under the topic lock so that their order
            # is the publish order, which ordering keys rely on.
            publish_ns = time.time_ns()
            stored: list[StoredMessage] = []
            for message in messages:
                message_id = str(next(self._message_ids))
                message.message_id = message_id
                message.publish_time.FromNanoseconds(publish_ns)
                stored.append(
                    StoredMessage(message_id, message.SerializeToString(), message.ordering_key)
                )
            subscriptions = list(topic.subscriptions.values())
            self._check_capacity(subscriptions, stored)
            for subscription in subscriptions:
                subscription.delivery.enqueue(stored)
        if _flow_log.isEnabledFor(logging.DEBUG):
            _flow_log.debug(
                "publish %s ids=%s..%s (%d messages, %d subscriptions)",
                topic_name,
                stored[0].message_id,
                stored[-1].message_id,
                len(stored),
                len(subscriptions),
            )
        return [s.message_id for s in stored]

    def _check_capacity(
        self, subscriptions: list[_Subscription], stored: list[StoredMessage]
    ) -> None:
        count = len(stored)
        size = sum(m.size for m in stored)
        limits = self.limits
        for subscription in subscriptions:
            backlog_messages, backlog_bytes = subscription.delivery.backlog()
            if (
                backlog_messages + count > limits.max_backlog_messages
                or backlog_bytes + size > limits.max_backlog_bytes
            ):
                raise GrpcStatusError(
                    grpc.StatusCode.RESOURCE_EXHAUSTED,
                    f"Backlog of subscription {subscription.delivery.name} is full "
                    f"({backlog_messages} messages, {backlog_bytes} bytes; emulator limits "
                    f"--max-backlog-messages={limits.max_backlog_messages}, "
                    f"--max-backlog-bytes={limits.max_backlog_bytes}). "
                    "Acknowledge messages or delete the subscription.",
                )

    def _forward_dead_letters(self, subscription_name: str, dead: list[DeadLetter]) -> None:
        with self._lock:
            subscription = self._subscriptions.get(subscription_name)
        if subscription is None:
            return
        target = subscription.delivery.policy.dead_letter_topic
        if target is None:
            return
        messages = []
        for letter in dead:
            message = PubsubMessagePb.FromString(letter.message.encoded)
            message.ClearField("message_id")
            message.ClearField("publish_time")
            attributes = message.attributes
            attributes["CloudPubSubDeadLetterSourceSubscription"] = subscription_name
            attributes["CloudPubSubDeadLetterSourceDeliveryCount"] = str(letter.delivery_attempts)
            attributes["CloudPubSubDeadLetterSourceDeliveryErrorMessage"] = (
                "Message exceeded max delivery attempts"
            )
            messages.append(message)
        try:
            for start in range(0, len(messages), MAX_MESSAGES_PER_PUBLISH):
                self.publish(target, messages[start : start + MAX_MESSAGES_PER_PUBLISH])
        except GrpcStatusError as error:
            # The real service retries forwarding; here the messages are dropped, loudly.
            _log.warning(
                "dropped %d dead-lettered messages of %s: %s",
                len(messages),
                subscription_name,
                error.message,
            )
            return
        _log.info(
            "dead-lettered %d messages from %s to %s", len(messages), subscription_name, target
        )


def _reject_unsupported_subscription_features(request: Any) -> None:
    unsupported = []
    if request.filter:
        unsupported.append("filter")
    if request.push_config.push_endpoint:
        unsupported.append("push_config")
    if request.enable_exactly_once_delivery:
        unsupported.append("enable_exactly_once_delivery")
    if request.HasField("bigquery_config"):
        unsupported.append("bigquery_config")
    if request.HasField("cloud_storage_config"):
        unsupported.append("cloud_storage_config")
    if unsupported:
        raise GrpcStatusError(
            grpc.StatusCode.UNIMPLEMENTED,
            f"The emulator does not support {', '.join(unsupported)} on subscriptions.",
        )


def _validate_message(message: Any) -> None:
    if not message.data and not message.attributes:
        raise invalid("Some messages are empty: a message needs data or attributes.")
    if len(message.attributes) > MAX_ATTRIBUTES:
        raise invalid(f"A message may have at most {MAX_ATTRIBUTES} attributes.")
    for key, value in message.attributes.items():
        if not key or len(key.encode()) > MAX_ATTRIBUTE_KEY_BYTES:
            raise invalid(f"Invalid attribute key {key!r}: 1-{MAX_ATTRIBUTE_KEY_BYTES} bytes.")
        if key.lower().startswith("goog"):
            raise invalid(f"Invalid attribute key {key!r}: keys must not start with 'goog'.")
        if len(value.encode()) > MAX_ATTRIBUTE_VALUE_BYTES:
            raise invalid(f"Attribute {key!r} is longer than {MAX_ATTRIBUTE_VALUE_BYTES} bytes.")
    if len(message.ordering_key.encode()) > MAX_ORDERING_KEY_BYTES:
        raise invalid(f"Ordering key is longer than {MAX_ORDERING_KEY_BYTES} bytes.")
    if message.ByteSize() > MAX_MESSAGE_BYTES:
        raise invalid(f"A message may be at most {MAX_MESSAGE_BYTES} bytes.")


def _seconds(duration: Any) -> float:
    seconds: float = duration.seconds + duration.nanos / 1e9
    return seconds


def _paginate(items: list[str], page_size: int, page_token: str) -> tuple[list[str], str]:
    """Pages over sorted names; the token is the last name of the previous page."""
    if page_size < 0:
        raise invalid("page_size must not be negative.")
    size = page_size or 100
    start = 0
    if page_token:
        start = next((i for i, n in enumerate(items) if n > page_token), len(items))
    page = items[start : start + size]
    token = page[-1] if start + size < len(items) else ""
    return page, token
