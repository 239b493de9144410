"""Dead-lettered job messages: Pub/Sub gave up on them (the worker died or gave the job
back on every attempt), so the analysis is ended as `failed` instead of staying queued
or running forever."""

from __future__ import annotations

from collections.abc import Mapping

from analyzer.failures import gave_up
from analyzer.job_store import AnalysisJobStore
from flokraft_core.logs import get_logger
from flokraft_core.messaging.job_message import InvalidJobMessage, decode_job
from flokraft_core.store.document import Fields
from flokraft_core.store.status_table import Move

log = get_logger(__name__)


def handle_dead_letter(store: AnalysisJobStore, data: bytes, attributes: Mapping[str, str]) -> str:
    """Returns what was done (a metrics label); the caller acks in every case."""
    try:
        job = decode_job(data, attributes)
    except InvalidJobMessage as exc:
        # An invalid message was already handled (failed) by the job consumer.
        log.warning("dead_letter_invalid", reason=exc.reason, analysis_id=exc.analysis_id)
        return "invalid"
    document = store.load(job.analysis_id)
    if document is None:
        return "missing"
    attempts = int(document.get(Fields.ATTEMPTS) or 0)
    error = document.get(Fields.ERROR)
    reason = gave_up(attempts, error if isinstance(error, str) else None)
    # mark_failed checks the generation and never touches a done analysis.
    if store.mark_failed(job.analysis_id, job.generation, reason, move=Move.GIVE_UP):
        log.warning("dead_letter_failed", analysis_id=job.analysis_id, reason=reason)
        return "marked_failed"
    return "ignored"
