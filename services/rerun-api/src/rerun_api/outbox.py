"""The request path's publish (`publish_now`) and the outbox reconciler, which publishes
the jobs of analyses still marked `publish_pending`.

A marker older than OUTBOX_MAX_AGE_SECONDS means the request that set it could not
publish (Pub/Sub down, a timeout, a replica killed between commit and publish). Every
replica runs this loop; two replicas re-publishing the same job is harmless because the
analyzer ignores a message whose generation is not the document's current one, and
the marker is cleared only while the document is still at the published generation.
"""

from __future__ import annotations

import asyncio
import random
from datetime import timedelta
from typing import Final

from google.api_core import exceptions as gexc
from prometheus_client import Counter, Gauge

from flokraft_core.logs import get_logger
from flokraft_core.messaging.job_message import new_job
from flokraft_core.messaging.publisher import JobPublisher, PublishFailed
from flokraft_core.store.read_costs import reads_labelled
from rerun_api.commands import AnalysisCommands, PendingPublish, QueuedAnalysis
from rerun_api.settings import RerunApiSettings

log = get_logger(__name__)

PUBLISHES = Counter(
    "rerun_api_publishes_total",
    "Job publishes on the request path, by outcome (deferred = left to the outbox).",
    ["operation", "outcome"],
)
# Errors that leave the already committed write in place: the request still succeeds.
_AFTER_COMMIT_ERRORS: Final = (gexc.GoogleAPICallError, gexc.RetryError, TimeoutError)

PENDING_FOUND = Counter(
    "rerun_api_outbox_pending_found_total", "Pending publishes found by the reconciler."
)
REPUBLISHED = Counter("rerun_api_outbox_republished_total", "Jobs re-published by the reconciler.")
REPUBLISH_FAILED = Counter(
    "rerun_api_outbox_republish_failed_total", "Re-publishes that Pub/Sub did not confirm."
)
SCAN_FAILURES = Counter(
    "rerun_api_outbox_scan_failures_total", "Reconciler passes that failed (retried next tick)."
)
LAST_PENDING = Gauge(
    "rerun_api_outbox_last_pending", "Pending publishes found by the latest reconciler pass."
)


async def publish_now(
    commands: AnalysisCommands,
    publisher: JobPublisher,
    settings: RerunApiSettings,
    trace_id: str | None,
    queued: QueuedAnalysis,
    operation: str,
) -> bool:
    """Publishes a committed job on the request path, or leaves it to the reconciler;
    whether Pub/Sub confirmed it."""
    try:
        published = await commands.publish_and_clear(
            publisher,
            queued,
            trace_id=trace_id,
            publish_timeout=settings.publish_timeout_seconds,
        )
    except _AFTER_COMMIT_ERRORS as exc:
        # Published, but the marker could not be cleared: the outbox will send a
        # duplicate, which the analyzer ignores.
        log.warning("publish_marker_not_cleared", analysis_id=queued.analysis_id, error=str(exc))
        published = True
    PUBLISHES.labels(operation, "confirmed" if published else "deferred").inc()
    if not published:
        log.warning(
            "publish_deferred_to_outbox",
            analysis_id=queued.analysis_id,
            generation=queued.generation,
        )
    return published


class OutboxReconciler:
    def __init__(
        self, commands: AnalysisCommands, publisher: JobPublisher, settings: RerunApiSettings
    ) -> None:
        self._commands = commands
        self._publisher = publisher
        self._settings = settings

    async def run_once(self) -> int:
        """One pass; returns how many jobs were re-published and their markers cleared."""
        settings = self._settings
        pending = await self._commands.find_pending_publishes(
            older_than=timedelta(seconds=settings.outbox_max_age_seconds),
            limit=settings.outbox_batch_size,
        )
        PENDING_FOUND.inc(len(pending))
        LAST_PENDING.set(len(pending))
        done = 0
        for item in pending:
            if not await self._republish(item):
                # Pub/Sub is most likely down: the rest would fail the same way.
                break
            done += 1
        if pending:
            log.info("outbox_pass", found=len(pending), republished=done)
        return done

    async def _republish(self, item: PendingPublish) -> bool:
        settings = self._settings
        job = new_job(item.analysis_id, item.generation, item.requested_by)
        try:
            await asyncio.to_thread(
                self._publisher.publish,
                job,
                trace_id=None,
                timeout=settings.publish_timeout_seconds,
            )
        except PublishFailed as exc:
            REPUBLISH_FAILED.inc()
            log.warning("outbox_republish_failed", analysis_id=item.analysis_id, error=str(exc))
            return False
        REPUBLISHED.inc()
        cleared = await self._commands.clear_publish_pending(item.analysis_id, item.generation)
        log.info(
            "outbox_republished",
            analysis_id=item.analysis_id,
            generation=item.generation,
            cleared=cleared,
        )
        return True

    async def run_forever(self) -> None:
        interval = self._settings.outbox_scan_interval_seconds
        while True:
            # Jitter keeps replicas started together from scanning in lockstep.
            await asyncio.sleep(interval * random.uniform(0.8, 1.2))  # noqa: S311
            try:
                with reads_labelled("outbox"):
                    await self.run_once()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # an outage must never end the loop
                SCAN_FAILURES.inc()
                log.warning("outbox_pass_failed", error=type(exc).__name__, detail=str(exc)[:300])
