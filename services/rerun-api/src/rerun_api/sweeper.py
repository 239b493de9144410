"""The stale-work sweeper: ends work nobody is doing, so nothing stays queued or running
for ever (and holds its owner's active-cap slots for ever).

It runs in every rerun-api replica beside the outbox reconciler, for the same reasons:
it needs what rerun-api already has (the command-side client, the publisher, the outbox
marker), and every move it makes is a transaction that re-reads the document and checks
it is still stale, so two replicas sweeping at once move a document at most once (the
second finds it fresh and skips it). No Deployment, RBAC or network policy of its own.

A pass, every SWEEP_INTERVAL_SECONDS (with jitter):
- `running` whose last write is older than SWEEP_RUNNING_AFTER_SECONDS. A live job writes
  its progress and renews its lease every PROGRESS_INTERVAL_SECONDS (2 s); a dead
  worker's message comes back from Pub/Sub within the ack deadline plus the retry
  back-off (at most 60 s + 600 s) and re-claims it. So past the bound no delivery is live.
- `queued` with no publish pending (that is the outbox's) and no write for longer than
  SWEEP_QUEUED_AFTER_SECONDS: a lost message, or a worker gone before it claimed it.
- The old backend's rows left `queued`/`running` without any `updated_at`: judged by
  their creation time. Documents without a known status are no active work and are left
  alone (they can be rerun).

Each is re-dispatched as a new generation (so the lost run's message and worker are
refused as stale: no double run) at most SWEEP_MAX_REDISPATCHES times, then failed with
a reason the user can read. `rerun_api_sweeper_swept_total{status, outcome}` counts it.
"""

from __future__ import annotations

import asyncio
import random
from datetime import timedelta
from typing import Final

from prometheus_client import Counter, Gauge

from flokraft_core.logs import get_logger
from flokraft_core.messaging.publisher import JobPublisher
from flokraft_core.store.document import Status
from flokraft_core.store.read_costs import reads_labelled
from rerun_api.commands import AnalysisCommands
from rerun_api.lifecycle import AnalysisLifecycle, SweepOutcome
from rerun_api.settings import RerunApiSettings

log = get_logger(__name__)

SWEPT: Final = Counter(
    "rerun_api_sweeper_swept_total",
    "Stale analyses the sweeper handled, by the status it found and what it did.",
    ["status", "outcome"],
)
LAST_FOUND: Final = Gauge(
    "rerun_api_sweeper_last_found", "Stale analyses found by the latest sweeper pass."
)
SWEEP_FAILURES: Final = Counter(
    "rerun_api_sweeper_failures_total", "Sweeper passes that failed (retried next tick)."
)
for _status in (Status.QUEUED, Status.RUNNING):
    for _outcome in SweepOutcome:
        SWEPT.labels(_status.value, _outcome.value)


class StaleWorkSweeper:
    def __init__(
        self,
        lifecycle: AnalysisLifecycle,
        commands: AnalysisCommands,
        publisher: JobPublisher,
        settings: RerunApiSettings,
    ) -> None:
        self._lifecycle = lifecycle
        self._commands = commands
        self._publisher = publisher
        self._settings = settings

    def _idle_for(self, status: Status) -> timedelta:
        settings = self._settings
        seconds = (
            settings.sweep_running_after_seconds
            if status is Status.RUNNING
            else settings.sweep_queued_after_seconds
        )
        return timedelta(seconds=seconds)

    async def run_once(self) -> dict[SweepOutcome, int]:
        """One pass over both statuses; returns how many documents got each outcome."""
        settings = self._settings
        done = dict.fromkeys(SweepOutcome, 0)
        found = 0
        for status in (Status.RUNNING, Status.QUEUED):
            idle_for = self._idle_for(status)
            stale = await self._lifecycle.find_stale(
                status, idle_for=idle_for, limit=settings.sweep_batch_size
            )
            found += len(stale)
            for item in stale:
                result = await self._lifecycle.sweep_one(
                    item, idle_for=idle_for, max_redispatches=settings.sweep_max_redispatches
                )
                SWEPT.labels(status.value, result.outcome.value).inc()
                done[result.outcome] += 1
                if result.queued is not None:
                    # Published now; if Pub/Sub is down the marker stays for the outbox.
                    published = await self._commands.publish_and_clear(
                        self._publisher,
                        result.queued,
                        trace_id=None,
                        publish_timeout=settings.publish_timeout_seconds,
                    )
                    log.warning(
                        "stale_work_redispatched",
                        analysis_id=item.analysis_id,
                        was=status.value,
                        generation=result.queued.generation,
                        published=published,
                    )
                elif result.outcome is SweepOutcome.ABANDONED:
                    log.warning("stale_work_abandoned", analysis_id=item.analysis_id, was=status)
        LAST_FOUND.set(found)
        if found:
            log.info("sweeper_pass", found=found, **{k.value: v for k, v in done.items()})
        return done

    async def run_forever(self) -> None:
        interval = self._settings.sweep_interval_seconds
        while True:
            # Jitter keeps replicas started together from sweeping in lockstep.
            await asyncio.sleep(interval * random.uniform(0.8, 1.2))  # noqa: S311
            try:
                with reads_labelled("sweeper"):
                    await self.run_once()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # an outage must never end the loop
                SWEEP_FAILURES.inc()
                log.warning("sweeper_pass_failed", error=type(exc).__name__, detail=str(exc)[:300])
