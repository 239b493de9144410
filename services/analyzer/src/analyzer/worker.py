"""The subscriber: streaming pull on the job subscription (and the dead-letter one), one
job per message, a heartbeat for /healthz and a graceful shutdown on SIGTERM.

The client library extends each message's lease while our callback holds it (up to
FlowControl.max_lease_duration = job time limit + margin), so a job runs synchronously
inside the callback; flow control caps how many run at once.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from google.cloud import pubsub_v1  # type: ignore[attr-defined]
from google.cloud.pubsub_v1.subscriber.message import Message
from google.cloud.pubsub_v1.subscriber.scheduler import ThreadScheduler
from google.cloud.pubsub_v1.types import FlowControl

from analyzer import metrics
from analyzer.dead_letters import handle_dead_letter
from analyzer.failures import Failure, FailureKind, attempt_limit, invalid_failure
from analyzer.job_runner import JobFailed, JobRunner, JobSucceeded, JobSuperseded
from analyzer.job_store import AnalysisJobStore, ClaimOutcome
from analyzer.settings import AnalyzerSettings
from analyzer.sources import source_refusal
from flokraft_core.logs import BoundLog, get_logger
from flokraft_core.messaging.job_message import InvalidJobMessage, JobMessage, decode_job
from flokraft_core.store.client import sync_client
from flokraft_core.store.document import OWNER_FIELD, AnalysisType, Fields
from flokraft_core.store.read_costs import reads_labelled

log = get_logger(__name__)

_HEARTBEAT_SECONDS = 1.0
_RESUBSCRIBE_SECONDS = 5.0


class Action(StrEnum):
    ACK = "ack"
    NACK = "nack"


@dataclass(frozen=True)
class JobContext:
    """One claimed job, as everything after the claim needs it."""

    job: JobMessage
    message: Message
    # The analysis document as the claim read it.
    document: dict[str, Any]
    # The document's attempt count including this claim (what we know when the
    # subscription has no dead-letter policy to count deliveries).
    attempts: int
    # The logger bound to the analysis, generation, trace id and delivery attempt.
    log: BoundLog


def worker_id() -> str:
    return f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


class Worker:
    def __init__(self, settings: AnalyzerSettings) -> None:
        self.settings = settings
        self.db = sync_client(settings)
        self.store = AnalysisJobStore(
            self.db,
            settings.firestore_collection,
            markers_collection=settings.firestore_feed_collection,
            owner=worker_id(),
            timeout=settings.firestore_timeout_seconds,
            lease_seconds=settings.lease_seconds,
        )
        self.runner = JobRunner(settings)
        self.subscriber = pubsub_v1.SubscriberClient()
        project = settings.google_cloud_project
        self.subscription_path = self.subscriber.subscription_path(
            project, settings.pubsub_subscription
        )
        self.dead_letter_path = self.subscriber.subscription_path(
            project, settings.pubsub_dead_letter_subscription
        )
        self._futures: dict[str, Any] = {}
        self._stopping = threading.Event()
        # Set when the shutdown grace is over: running children are killed and nacked.
        self._abort = threading.Event()
        self._in_flight = 0
        self._lock = threading.Lock()
        self._last_beat: float | None = None
        self._heartbeat: threading.Thread | None = None

    # --- lifecycle -------------------------------------------------------------------

    def start(self) -> None:
        self._subscribe_all()
        self._heartbeat = threading.Thread(
            target=self._heartbeat_loop, name="analyzer-heartbeat", daemon=True
        )
        self._heartbeat.start()
        log.info(
            "worker_started",
            subscription=self.subscription_path,
            dead_letters=self.dead_letter_path,
            owner=self.store.owner,
            max_concurrent_jobs=self.settings.max_concurrent_jobs,
        )

    def _subscribe(self, path: str) -> Any:
        settings = self.settings
        if path == self.subscription_path:
            concurrency = settings.max_concurrent_jobs
            callback = self._on_job
            lease = int(settings.job_timeout_seconds + settings.lease_margin_seconds)
        else:
            concurrency, callback, lease = 1, self._on_dead_letter, 600
        return self.subscriber.subscribe(
            path,
            callback,
            flow_control=FlowControl(max_messages=concurrency, max_lease_duration=lease),
            scheduler=ThreadScheduler(
                ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="analyzer-job")
            ),
            # So a job still running at SIGTERM can ack/nack before the stream closes.
            await_callbacks_on_shutdown=True,
        )

    def _subscribe_all(self) -> None:
        for path in (self.subscription_path, self.dead_letter_path):
            future = self._futures.get(path)
            if future is None or future.done():
                self._futures[path] = self._subscribe(path)

    def _heartbeat_loop(self) -> None:
        last_attempt = time.monotonic()
        while not self._stopping.is_set():
            dead = [path for path, future in self._futures.items() if future.done()]
            if not dead:
                self._last_beat = time.monotonic()
            elif time.monotonic() - last_attempt >= _RESUBSCRIBE_SECONDS:
                # A pull that ended on its own (e.g. subscription missing) is restarted;
                # while it is down the heartbeat stops, so /healthz reports it.
                for path in dead:
                    with contextlib.suppress(Exception):
                        log.error(
                            "pull_stopped",
                            subscription=path,
                            error=str(self._futures[path].exception(timeout=0))[:300],
                        )
                last_attempt = time.monotonic()
                with contextlib.suppress(Exception):
                    self._subscribe_all()
            self._stopping.wait(_HEARTBEAT_SECONDS)

    def liveness(self) -> str | None:
        if self._last_beat is None:
            return "the pull loop has not started"
        silent = time.monotonic() - self._last_beat
        if silent > self.settings.heartbeat_timeout_seconds:
            return f"the pull loop has not beaten for {silent:.0f} s"
        return None

    def subscription_exists(self) -> None:
        self.subscriber.get_subscription(
            request={"subscription": self.subscription_path},
            timeout=self.settings.readiness_timeout_seconds,
            retry=None,
        )

    def stopping(self) -> bool:
        return self._stopping.is_set()

    def stop_pulling(self) -> None:
        """Called from the SIGTERM handler: no new message is taken from here on."""
        self._stopping.set()
        for future in self._futures.values():
            future.cancel()

    def shutdown(self) -> None:
        """Stop pulling; let running jobs finish within the grace period, then kill their
        children and nack their messages so another worker picks them up."""
        self.stop_pulling()
        deadline = time.monotonic() + self.settings.shutdown_grace_seconds
        while self.in_flight() and time.monotonic() < deadline:
            time.sleep(0.1)
        if self.in_flight():
            log.warning("shutdown_grace_over", in_flight=self.in_flight())
            self._abort.set()
        for future in self._futures.values():
            with contextlib.suppress(Exception):
                future.result(timeout=30)
        self.subscriber.close()
        self.db.close()  # type: ignore[no-untyped-call]
        log.info("worker_stopped")

    def in_flight(self) -> int:
        with self._lock:
            return self._in_flight

    @contextlib.contextmanager
    def _running(self) -> Iterator[None]:
        with self._lock:
            self._in_flight += 1
        metrics.JOBS_IN_FLIGHT.inc()
        try:
            yield
        finally:
            metrics.JOBS_IN_FLIGHT.dec()
            with self._lock:
                self._in_flight -= 1

    # --- job messages ----------------------------------------------------------------

    def _on_job(self, message: Message) -> None:
        with self._running(), reads_labelled("job"):
            try:
                action, outcome = self.process(message)
            except Exception as exc:  # Firestore down, etc.: the message comes back later
                log.exception("job_error", message_id=message.message_id, error=type(exc).__name__)
                action, outcome = Action.NACK, "error"
            metrics.JOBS.labels(outcome).inc()
            if action is Action.ACK:
                message.ack()
            else:
                message.nack()

    def process(self, message: Message) -> tuple[Action, str]:
        try:
            job = decode_job(message.data, dict(message.attributes))
        except InvalidJobMessage as exc:
            return self._invalid(message, exc)
        bound = log.bind(
            analysis_id=job.analysis_id,
            generation=job.generation,
            trace_id=message.attributes.get("trace_id"),
            delivery_attempt=message.delivery_attempt,
        )
        claim = self.store.claim(job.analysis_id, job.generation)
        waited_until = time.monotonic() + self.settings.job_timeout_seconds
        while claim.outcome is ClaimOutcome.LEASED:
            # A duplicate delivery while another live worker runs this job: wait for that
            # worker to finish or its lease to lapse (it died) instead of running twice.
            if self._stopping.is_set() or time.monotonic() > waited_until:
                bound.info("job_leased_elsewhere")
                return Action.NACK, "leased"
            remaining = 1.0
            if claim.lease_until is not None:
                remaining = (claim.lease_until - datetime.now(UTC)).total_seconds()
            time.sleep(min(max(remaining, 0.2), 5.0))
            claim = self.store.claim(job.analysis_id, job.generation)
        if claim.outcome is not ClaimOutcome.CLAIMED:
            bound.info("job_skipped", reason=claim.outcome.value)
            return Action.ACK, claim.outcome.value
        return self._run(JobContext(job, message, claim.data or {}, claim.attempts, bound))

    def _invalid(self, message: Message, exc: InvalidJobMessage) -> tuple[Action, str]:
        metrics.INVALID_MESSAGES.inc()
        log.warning(
            "invalid_job_message",
            message_id=message.message_id,
            reason=exc.reason,
            analysis_id=exc.analysis_id,
        )
        if exc.analysis_id is not None:
            self.store.mark_failed(
                exc.analysis_id, None, f"the analysis request was invalid ({exc.reason})"
            )
        return Action.ACK, "invalid"

    def _run(self, context: JobContext) -> tuple[Action, str]:
        job, data, bound = context.job, context.document, context.log
        video_url = data.get(Fields.VIDEO_URL)
        analysis_type = (
            data.get(Fields.ANALYSIS_TYPE) or AnalysisType.COUPLE.value
        )  # the old backend's default
        if not isinstance(video_url, str) or not video_url:
            return self._failed(context, invalid_failure("the analysis has no video"))
        if analysis_type not in set(AnalysisType):
            failure = invalid_failure(f"unknown analysis type {str(analysis_type)[:40]!r}")
            return self._failed(context, failure)
        refused = source_refusal(video_url, data.get(OWNER_FIELD), self.settings)
        if refused:  # not the owner's upload: nothing is fetched (issue 12)
            return self._failed(context, invalid_failure(f"video_url {refused}"))
        bound.info("job_started", attempts=context.attempts)

        def on_progress(value: float) -> bool:
            return self.store.write_progress(job.analysis_id, job.generation, value)

        outcome = self.runner.run(
            video_url, str(analysis_type), on_progress=on_progress, abort=self._abort
        )
        metrics.JOB_PEAK_MEMORY.observe(outcome.peak_rss_bytes)
        if isinstance(outcome, JobSucceeded):
            metrics.JOB_DURATION.labels("done").observe(outcome.seconds)
            written = self.store.complete(
                job.analysis_id, job.generation, metrics=outcome.metrics, text=outcome.text
            )
            bound.info(
                "job_done",
                written=written,
                seconds=round(outcome.seconds, 2),
                peak_rss_mb=round(outcome.peak_rss_bytes / 2**20, 1),
                total_score=outcome.metrics.get("total_score"),
            )
            return Action.ACK, "done" if written else "stale"
        if isinstance(outcome, JobSuperseded):
            metrics.JOB_DURATION.labels("superseded").observe(outcome.seconds)
            bound.info("job_superseded")
            return Action.ACK, "superseded"
        assert isinstance(outcome, JobFailed)
        metrics.JOB_DURATION.labels("failed").observe(outcome.seconds)
        return self._failed(context, outcome.failure)

    def _failed(self, context: JobContext, failure: Failure) -> tuple[Action, str]:
        job, bound = context.job, context.log
        # delivery_attempt is set when the subscription has a dead-letter policy; without
        # one the document's own attempt count is the best we know.
        attempt = context.message.delivery_attempt or context.attempts
        if failure.kind is FailureKind.SHUTDOWN:
            self.store.record_failed_attempt(job.analysis_id, job.generation, failure.reason)
            bound.warning("job_interrupted", reason=failure.reason)
            return Action.NACK, "interrupted"
        if not failure.retryable or attempt >= attempt_limit(failure, self.settings):
            self.store.mark_failed(job.analysis_id, job.generation, failure.reason)
            bound.warning(
                "job_failed", kind=failure.kind.value, reason=failure.reason, attempt=attempt
            )
            return Action.ACK, "failed"
        self.store.record_failed_attempt(job.analysis_id, job.generation, failure.reason)
        bound.warning("job_retry", kind=failure.kind.value, reason=failure.reason, attempt=attempt)
        return Action.NACK, "retried"

    # --- dead letters ----------------------------------------------------------------

    def _on_dead_letter(self, message: Message) -> None:
        with reads_labelled("dead_letter"):
            self._handle_dead_letter(message)

    def _handle_dead_letter(self, message: Message) -> None:
        try:
            action = handle_dead_letter(self.store, message.data, dict(message.attributes))
        except Exception as exc:
            log.exception("dead_letter_error", error=type(exc).__name__)
            message.nack()
            return
        metrics.DEAD_LETTERS.labels(action).inc()
        message.ack()
