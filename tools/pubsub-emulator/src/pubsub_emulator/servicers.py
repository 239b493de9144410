"""gRPC method handlers for google.pubsub.v1.Publisher and google.pubsub.v1.Subscriber.

``google-cloud-pubsub`` ships message classes but no servicer stubs, so the services are
registered with ``grpc.method_handlers_generic_handler`` and explicit (de)serialisers.
Methods not listed here answer UNIMPLEMENTED, which is what grpc does for unknown methods.
"""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import grpc
from google.protobuf import empty_pb2
from google.pubsub_v1 import types

from pubsub_emulator import wire
from pubsub_emulator.delivery import Delivery, Stream, SubscriptionDeletedError
from pubsub_emulator.errors import GrpcStatusError, invalid
from pubsub_emulator.state import Registry

_log = logging.getLogger("pubsub_emulator")

# Longest a unary Pull without return_immediately waits for a first message.
MAX_PULL_WAIT_SECONDS = 5.0
# How often an idle StreamingPull handler re-checks whether its RPC is still alive.
STREAM_IDLE_CHECK_SECONDS = 1.0

_Request = TypeVar("_Request")
_Response = TypeVar("_Response")
_Unary = Callable[[Any, grpc.ServicerContext], Any]


def _pb(proto_plus_type: Any) -> Any:
    return proto_plus_type.pb()


def _translate_errors(method: _Unary) -> _Unary:
    """Turn GrpcStatusError into the gRPC status the real service would send."""

    @functools.wraps(method)
    def wrapper(request: Any, context: grpc.ServicerContext) -> Any:
        try:
            return method(request, context)
        except GrpcStatusError as error:
            context.abort(error.code, error.message)
        except SubscriptionDeletedError as error:
            context.abort(grpc.StatusCode.NOT_FOUND, f"Subscription deleted: {error}")

    return wrapper


class PubSubServicer:
    def __init__(self, registry: Registry) -> None:
        self.registry = registry
        self.shutting_down = threading.Event()

    # ----------------------------------------------------------------------- publisher

    def create_topic(self, request: Any, context: grpc.ServicerContext) -> Any:
        return self.registry.create_topic(request)

    def get_topic(self, request: Any, context: grpc.ServicerContext) -> Any:
        return self.registry.get_topic(request.topic)

    def list_topics(self, request: Any, context: grpc.ServicerContext) -> Any:
        topics, token = self.registry.list_topics(
            request.project, request.page_size, request.page_token
        )
        response = _pb(types.ListTopicsResponse)()
        response.topics.extend(topics)
        response.next_page_token = token
        return response

    def list_topic_subscriptions(self, request: Any, context: grpc.ServicerContext) -> Any:
        subscriptions, token = self.registry.list_topic_subscriptions(
            request.topic, request.page_size, request.page_token
        )
        response = _pb(types.ListTopicSubscriptionsResponse)()
        response.subscriptions.extend(subscriptions)
        response.next_page_token = token
        return response

    def delete_topic(self, request: Any, context: grpc.ServicerContext) -> Any:
        self.registry.delete_topic(request.topic)
        return empty_pb2.Empty()

    def publish(self, request: Any, context: grpc.ServicerContext) -> Any:
        ids = self.registry.publish(request.topic, list(request.messages))
        response = _pb(types.PublishResponse)()
        response.message_ids.extend(ids)
        return response

    # ---------------------------------------------------------------------- subscriber

    def create_subscription(self, request: Any, context: grpc.ServicerContext) -> Any:
        return self.registry.create_subscription(request)

    def get_subscription(self, request: Any, context: grpc.ServicerContext) -> Any:
        return self.registry.get_subscription(request.subscription)

    def list_subscriptions(self, request: Any, context: grpc.ServicerContext) -> Any:
        subscriptions, token = self.registry.list_subscriptions(
            request.project, request.page_size, request.page_token
        )
        response = _pb(types.ListSubscriptionsResponse)()
        response.subscriptions.extend(subscriptions)
        response.next_page_token = token
        return response

    def delete_subscription(self, request: Any, context: grpc.ServicerContext) -> Any:
        self.registry.delete_subscription(request.subscription)
        return empty_pb2.Empty()

    def acknowledge(self, request: Any, context: grpc.ServicerContext) -> Any:
        delivery = self.registry.subscription(request.subscription).delivery
        delivery.acknowledge(request.ack_ids)
        return empty_pb2.Empty()

    def modify_ack_deadline(self, request: Any, context: grpc.ServicerContext) -> Any:
        delivery = self.registry.subscription(request.subscription).delivery
        seconds = request.ack_deadline_seconds
        if not 0 <= seconds <= 600:
            raise invalid(f"Invalid ack_deadline_seconds {seconds}: must be between 0 and 600.")
        delivery.modify_ack_deadline(request.ack_ids, seconds)
        return empty_pb2.Empty()

    def pull(self, request: Any, context: grpc.ServicerContext) -> bytes:
        delivery = self.registry.subscription(request.subscription).delivery
        if request.max_messages <= 0:
            raise invalid("max_messages must be a positive number.")
        wait = 0.0
        if not request.return_immediately:
            remaining = context.time_remaining()
            wait = MAX_PULL_WAIT_SECONDS
            if remaining is not None:
                wait = max(0.0, min(wait, remaining - 0.5))
        batch = delivery.pull(min(request.max_messages, 1000), wait)
        return wire.pull_response(batch)

    def streaming_pull(
        self, requests: Iterator[Any], context: grpc.ServicerContext
    ) -> Iterator[bytes]:
        first = next(requests, None)
        if first is None:
            return
        try:
            delivery, stream = self._open_stream(first)
        except GrpcStatusError as error:
            context.abort(error.code, error.message)
        except SubscriptionDeletedError:
            context.abort(grpc.StatusCode.NOT_FOUND, "Subscription deleted.")
        name = delivery.name
        _log.debug("stream opened on %s (client %s)", name, first.client_id or "-")
        context.add_callback(lambda: delivery.close_stream(stream))
        reader = threading.Thread(
            target=self._read_stream_requests,
            args=(requests, delivery, stream),
            name=f"stream-reader-{name}",
            daemon=True,
        )
        reader.start()
        try:
            while context.is_active() and not stream.closed and not self.shutting_down.is_set():
                batch = delivery.next_batch(stream, STREAM_IDLE_CHECK_SECONDS)
                if batch:
                    yield wire.pull_response(batch)
        except SubscriptionDeletedError:
            context.abort(grpc.StatusCode.NOT_FOUND, f"Subscription {name} was deleted.")
        finally:
            delivery.close_stream(stream)
            _log.debug("stream closed on %s", name)
        if self.shutting_down.is_set():
            # Like the real service going away: the client reconnects on UNAVAILABLE.
            context.abort(grpc.StatusCode.UNAVAILABLE, "The emulator is shutting down.")

    def _open_stream(self, first: Any) -> tuple[Delivery, Stream]:
        if not first.subscription:
            raise invalid("The first StreamingPull request must name a subscription.")
        delivery = self.registry.subscription(first.subscription).delivery
        deadline = first.stream_ack_deadline_seconds
        if not 10 <= deadline <= 600:
            raise invalid(
                f"Invalid stream_ack_deadline_seconds {deadline}: must be between 10 and 600."
            )
        if first.max_outstanding_messages < 0 or first.max_outstanding_bytes < 0:
            raise invalid("max_outstanding_messages and max_outstanding_bytes must be >= 0.")
        stream = Stream(deadline, first.max_outstanding_messages, first.max_outstanding_bytes)
        delivery.open_stream(stream)
        _apply_stream_request(first, delivery, stream)
        return delivery, stream

    def _read_stream_requests(
        self, requests: Iterator[Any], delivery: Delivery, stream: Stream
    ) -> None:
        """Acks, nacks and deadline changes arrive on the stream; apply them as they come."""
        try:
            for request in requests:
                if stream.closed:
                    break
                _apply_stream_request(request, delivery, stream)
        except Exception as error:
            # Cancelled or broken RPCs end the iterator with an exception; that is a close.
            _log.debug("stream on %s ended: %s", delivery.name, type(error).__name__)
        finally:
            delivery.close_stream(stream)


def _apply_stream_request(request: Any, delivery: Delivery, stream: Stream) -> None:
    if request.stream_ack_deadline_seconds:
        stream.ack_deadline_seconds = min(600, max(10, request.stream_ack_deadline_seconds))
    if request.ack_ids:
        delivery.acknowledge(request.ack_ids)
    if request.modify_deadline_ack_ids:
        by_seconds: dict[int, list[str]] = {}
        for seconds, ack_id in zip(
            request.modify_deadline_seconds, request.modify_deadline_ack_ids, strict=False
        ):
            by_seconds.setdefault(min(600, max(0, seconds)), []).append(ack_id)
        for seconds, ack_ids in by_seconds.items():
            delivery.modify_ack_deadline(ack_ids, seconds)


def _serialize(message: Any) -> bytes:
    data: bytes = message.SerializeToString()
    return data


def build_handlers(servicer: PubSubServicer) -> list[grpc.GenericRpcHandler]:
    def unary(method: _Unary, request_type: Any, raw_response: bool = False) -> Any:
        return grpc.unary_unary_rpc_method_handler(
            _translate_errors(method),
            request_deserializer=_pb(request_type).FromString,
            response_serializer=None if raw_response else _serialize,
        )

    publisher = {
        "CreateTopic": unary(servicer.create_topic, types.Topic),
        "GetTopic": unary(servicer.get_topic, types.GetTopicRequest),
        "ListTopics": unary(servicer.list_topics, types.ListTopicsRequest),
        "ListTopicSubscriptions": unary(
            servicer.list_topic_subscriptions, types.ListTopicSubscriptionsRequest
        ),
        "DeleteTopic": unary(servicer.delete_topic, types.DeleteTopicRequest),
        "Publish": unary(servicer.publish, types.PublishRequest),
    }
    subscriber = {
        "CreateSubscription": unary(servicer.create_subscription, types.Subscription),
        "GetSubscription": unary(servicer.get_subscription, types.GetSubscriptionRequest),
        "ListSubscriptions": unary(servicer.list_subscriptions, types.ListSubscriptionsRequest),
        "DeleteSubscription": unary(servicer.delete_subscription, types.DeleteSubscriptionRequest),
        "Acknowledge": unary(servicer.acknowledge, types.AcknowledgeRequest),
        "ModifyAckDeadline": unary(servicer.modify_ack_deadline, types.ModifyAckDeadlineRequest),
        "Pull": unary(servicer.pull, types.PullRequest, raw_response=True),
        "StreamingPull": grpc.stream_stream_rpc_method_handler(
            servicer.streaming_pull,
            request_deserializer=_pb(types.StreamingPullRequest).FromString,
            response_serializer=None,
        ),
    }
    return [
        grpc.method_handlers_generic_handler("google.pubsub.v1.Publisher", publisher),
        grpc.method_handlers_generic_handler("google.pubsub.v1.Subscriber", subscriber),
    ]
