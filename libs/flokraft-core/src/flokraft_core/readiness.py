"""Readiness checks of the real dependencies, shared by the services."""

from __future__ import annotations

from google.cloud import firestore

from flokraft_core.settings import CoreSettings

# A point read of a document that need not exist: the cheapest call that proves the
# database answers (and that our credentials work).
PROBE_DOCUMENT = "_readyz"


async def check_firestore_async(db: firestore.AsyncClient, settings: CoreSettings) -> None:
    await (
        db.collection(settings.firestore_collection)
        .document(PROBE_DOCUMENT)
        .get(timeout=settings.readiness_timeout_seconds, retry=None)
    )


def check_firestore_sync(db: firestore.Client, settings: CoreSettings) -> None:
    db.collection(settings.firestore_collection).document(PROBE_DOCUMENT).get(
        timeout=settings.readiness_timeout_seconds, retry=None
    )
