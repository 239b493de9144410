"""Publishing job messages to the `analysis-jobs` topic.

Ordering keys are per analysis. The client pauses an ordering key after a failed publish
and refuses further publishes on it until `resume_publish`; since the outbox retries
failed publishes later, we resume the key right away so the retry can go through.
"""

from __future__ import annotations

import contextlib
from typing import Any

from google.api_core import exceptions as gexc
from google.cloud import pubsub_v1  # type: ignore[attr-defined]
from google.cloud.pubsub_v1.publisher.exceptions import PublishToPausedOrderingKeyException
from google.cloud.pubsub_v1.types import BatchSettings, PublisherOptions

from flokraft_core.messaging.job_message import JobMessage, job_attributes
from flokraft_core.settings import CoreSettings

# The wait outlasts the RPC's own deadline a little, so the RPC's outcome is what we see.
_WAIT_GRACE_SECONDS = 1.0


class PublishFailed(RuntimeError):
    """The job was not confirmed by Pub/Sub; the outbox marker stays set."""


class JobPublisher:
    def __init__(self, settings: CoreSettings) -> None:
        self._client = pubsub_v1.PublisherClient(
            # A job is one small message: send it at once instead of waiting for a batch.
            batch_settings=BatchSettings(max_messages=1, max_latency=0.0),
            publisher_options=PublisherOptions(enable_message_ordering=True),
        )
        self.topic_path = self._client.topic_path(
            settings.google_cloud_project, settings.pubsub_topic
        )

    def publish(self, job: JobMessage, *, trace_id: str | None, timeout: float) -> str:
        """Blocks until Pub/Sub confirms; returns the message id."""
        future: Any = None
        try:
            future = self._send(job, trace_id, timeout)
            try:
                return str(future.result(timeout=timeout + _WAIT_GRACE_SECONDS))
            except PublishToPausedOrderingKeyException:
                # Paused by an earlier failure that ended only after its caller had given
                # up waiting (so that caller's resume found nothing to resume).
                self._resume(job.ordering_key())
                future = self._send(job, trace_id, timeout)
                return str(future.result(timeout=timeout + _WAIT_GRACE_SECONDS))
        except Exception as exc:  # timeout, API error or a client-side failure alike
            if future is not None:
                future.cancel()
            self._resume(job.ordering_key())
            raise PublishFailed(f"publish of {job.analysis_id} not confirmed: {exc}") from exc

    def _send(self, job: JobMessage, trace_id: str | None, timeout: float) -> Any:
        return self._client.publish(
            self.topic_path,
            job.encode(),
            ordering_key=job.ordering_key(),
            # One attempt with a deadline: with ordering enabled the client would otherwise
            # retry forever in the background, and a publish given up on here would land
            # later next to the outbox's re-publish of the same job.
            retry=None,
            timeout=timeout,
            **job_attributes(trace_id),
        )

    def _resume(self, ordering_key: str) -> None:
        # Raises when the key is not paused (the failure was only our wait timing out).
        with contextlib.suppress(RuntimeError):
            self._client.resume_publish(self.topic_path, ordering_key)

    def topic_exists(self, timeout: float) -> bool:
        try:
            self._client.get_topic(request={"topic": self.topic_path}, timeout=timeout)
        except gexc.NotFound:
            return False
        return True

    def close(self) -> None:
        self._client.stop()
