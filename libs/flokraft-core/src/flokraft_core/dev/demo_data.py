"""Production-shaped demo analyses (`make seed n=N`, benchmarks, tests).

Ten users `user0`..`user9`, a 10 KB `text`, a `video_url`, mixed couple/solo analyses and
statuses. At most MAX_ACTIVE_PER_USER of a user's analyses are queued or running (further
draws of those become done), so the demo data never puts a user at the active cap
(MAX_ACTIVE_ANALYSES_PER_USER, 5 by default): a newcomer's first create is a 201, not a
429. The queued and running ones are stale (no job was ever published for them), as the
old backend left its rows: rerun-api's sweeper re-dispatches them once they are older than
its bounds. Written in batches small enough for the emulator's 4 MiB message cap (and
well under Firestore's 500 writes per batch).

    python -m flokraft_core.dev.demo_data --n 5000 [--project ID] [--collection analyses]
"""

from __future__ import annotations

import argparse
import os
import random
import string
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from google.cloud import firestore

from flokraft_core.store.document import OWNER_FIELD, AnalysisType, Fields, Status

BATCH_SIZE = 200
DANCE_TYPES = ("salsa", "bachata", "tango", "waltz", "hip-hop", "contemporary", "swing")
STATUS_WEIGHTS = ((Status.DONE, 80), (Status.FAILED, 5), (Status.QUEUED, 10), (Status.RUNNING, 5))
ACTIVE = frozenset({Status.QUEUED, Status.RUNNING})
# Below the default active cap of 5, with room for a few creates of one's own.
MAX_ACTIVE_PER_USER = 2


def demo_owner(index: int, users: int) -> str:
    return f"user{index % users}"


def demo_analysis(
    index: int,
    rng: random.Random,
    *,
    users: int = 10,
    text_bytes: int = 10_240,
    now: datetime | None = None,
    allow_active: bool = True,
) -> tuple[str, dict[str, Any]]:
    """Analysis number `index`; with `allow_active=False` a queued or running draw becomes
    done (the caller keeps count of each user's active ones)."""
    now = now or datetime.now(UTC)
    status = rng.choices([s for s, _ in STATUS_WEIGHTS], [w for _, w in STATUS_WEIGHTS])[0]
    if status in ACTIVE and not allow_active:
        status = Status.DONE
    analysis_type = AnalysisType.COUPLE if rng.random() < 0.6 else AnalysisType.SOLO
    done = status is Status.DONE
    created = now - timedelta(seconds=index * 37 + rng.randint(0, 30))
    dancers = ["lead", "follow"] if analysis_type is AnalysisType.COUPLE else ["solo"]
    doc_id = f"demo-{index:07d}"
    words = "".join(rng.choices(string.ascii_lowercase + " ", k=text_bytes))
    return doc_id, {
        OWNER_FIELD: demo_owner(index, users),
        Fields.TIMESTAMP: created,
        Fields.CREATED_AT: created,
        Fields.UPDATED_AT: created,
        Fields.DANCE_TYPE: rng.choice(DANCE_TYPES),
        Fields.DANCERS: dancers,
        Fields.ANALYSIS_TYPE: analysis_type.value,
        Fields.STATUS: status.value,
        Fields.PROCESSED: done,
        Fields.TOTAL_SCORE: round(rng.uniform(40, 98), 1) if done else None,
        Fields.TEXT: words if done else None,
        Fields.VIDEO_URL: f"gs://flokraft-demo-videos/{doc_id}.mp4",
        Fields.GENERATION: 1,
        Fields.ATTEMPTS: 1 if status is not Status.QUEUED else 0,
        Fields.PROGRESS: 1.0 if done else 0.0,
        Fields.ERROR: "the video could not be decoded: demo failure"
        if status is Status.FAILED
        else None,
        Fields.PUBLISH_PENDING: False,
    }


def _batches(n: int, seed: int, **kwargs: Any) -> Iterator[list[tuple[str, dict[str, Any]]]]:
    rng = random.Random(seed)  # noqa: S311  (demo data, not secrets)
    now = datetime.now(UTC)
    batch: list[tuple[str, dict[str, Any]]] = []
    active: Counter[str] = Counter()
    for index in range(n):
        owner = demo_owner(index, kwargs.get("users", 10))
        allow_active = active[owner] < MAX_ACTIVE_PER_USER
        doc_id, data = demo_analysis(index, rng, now=now, allow_active=allow_active, **kwargs)
        if data[Fields.STATUS] in ACTIVE:
            active[owner] += 1
        batch.append((doc_id, data))
        if len(batch) == BATCH_SIZE:
            yield batch
            batch = []
    if batch:
        yield batch


def seed_analyses(
    db: firestore.Client, collection: str, n: int, *, seed: int = 42, **kwargs: Any
) -> int:
    """Writes n analyses (idempotent per index: the ids are fixed) and returns n."""
    ref = db.collection(collection)
    for batch in _batches(n, seed, **kwargs):
        writer = db.batch()
        for doc_id, data in batch:
            writer.set(ref.document(doc_id), data)
        writer.commit()
    return n


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Write production-shaped demo analyses.")
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument(
        "--project", default=os.environ.get("GOOGLE_CLOUD_PROJECT", "demo-flokraft")
    )
    parser.add_argument("--collection", default=os.environ.get("FIRESTORE_COLLECTION", "analyses"))
    parser.add_argument("--users", type=int, default=10)
    args = parser.parse_args(argv)
    if args.n < 0:
        parser.error("--n must be >= 0")
    db = firestore.Client(project=args.project)
    seed_analyses(db, args.collection, args.n, users=args.users)
    print(f"seeded {args.n} analyses into {args.project}/{args.collection}")


if __name__ == "__main__":
    main()
