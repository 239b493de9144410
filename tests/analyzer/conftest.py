"""Fixtures of the analyzer's integration tests: a fast job topology per test project,
synthetic videos, analysis documents, and the analyzer run as a real process."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from google.cloud import firestore, pubsub_v1

from analyzer.engine.synthetic import write_dance_video
from flokraft_core.messaging.job_message import job_attributes, new_job
from flokraft_core.messaging.topology import (
    DeadLetterPolicy,
    RetryPolicy,
    SubscriptionSpec,
    TopicSpec,
    Topology,
    apply_topology,
)
from flokraft_devstack import components
from flokraft_devstack.components import service
from flokraft_devstack.processes import ManagedProcess
from flokraft_devstack.settings import REPO_ROOT

# Pub/Sub's minimum; equal to the analyzer's MAX_ATTEMPTS below.
MAX_ATTEMPTS = 5


def fast_topology() -> Topology:
    """The production topology with a short ack deadline and back-off, so a job that
    fails five times ends within seconds."""
    return Topology(
        topics=[TopicSpec(name="analysis-jobs"), TopicSpec(name="analysis-jobs-dead-letter")],
        subscriptions=[
            SubscriptionSpec(
                name="analysis-jobs-analyzer",
                topic="analysis-jobs",
                ack_deadline_seconds=10,
                enable_message_ordering=True,
                retry_policy=RetryPolicy(minimum_backoff_seconds=0, maximum_backoff_seconds=1),
                dead_letter_policy=DeadLetterPolicy(
                    dead_letter_topic="analysis-jobs-dead-letter",
                    max_delivery_attempts=MAX_ATTEMPTS,
                ),
            ),
            SubscriptionSpec(
                name="analysis-jobs-dead-letter-analyzer",
                topic="analysis-jobs-dead-letter",
                ack_deadline_seconds=10,
            ),
        ],
    )


@pytest.fixture(scope="session")
def video_dir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="analyzer-videos-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session")
def dance_video(video_dir: Path) -> Path:
    """A short real video; the faulty engines pick their fault from copies' names."""
    path = video_dir / "dance.mp4"
    write_dance_video(path, duration_seconds=6, dancers="mirrored", size=(320, 180))
    return path


def video_named(video_dir: Path, source: Path, name: str) -> Path:
    target = video_dir / name
    if not target.exists():
        shutil.copyfile(source, target)
    return target


@dataclass
class JobWorld:
    """One test project: its Firestore collection, its topics and helpers."""

    project: str
    db: firestore.Client
    publisher: pubsub_v1.PublisherClient
    collection: str = "analyses"
    _counter: int = field(default=0)

    def ref(self, analysis_id: str) -> firestore.DocumentReference:
        return self.db.collection(self.collection).document(analysis_id)

    def create(self, video_url: str, *, generation: int = 1, **extra: Any) -> str:
        self._counter += 1
        analysis_id = f"a{self._counter}-{int(time.time() * 1000) % 100000}"
        now = datetime.now(UTC)
        self.ref(analysis_id).set(
            {
                "user_id": "user1",
                "timestamp": now,
                "created_at": now,
                "updated_at": now,
                "dance_type": "salsa",
                "dancers": ["lead", "follow"],
                "analysis_type": "couple",
                "status": "queued",
                "processed": False,
                "total_score": None,
                "text": None,
                "video_url": video_url,
                "generation": generation,
                "attempts": 0,
                "progress": 0.0,
                "error": None,
                "publish_pending": False,
                **extra,
            }
        )
        return analysis_id

    def publish(self, analysis_id: str, generation: int = 1) -> None:
        job = new_job(analysis_id, generation, "user1")
        self.publish_raw(job.encode(), ordering_key=analysis_id)

    def publish_raw(
        self, data: bytes, *, ordering_key: str = "", topic: str = "analysis-jobs", **attrs: str
    ) -> None:
        path = self.publisher.topic_path(self.project, topic)
        attributes = {**job_attributes(), **attrs}
        self.publisher.publish(path, data, ordering_key=ordering_key, **attributes).result(
            timeout=10
        )

    def get(self, analysis_id: str) -> dict[str, Any]:
        data = self.ref(analysis_id).get().to_dict()
        assert data is not None
        return data

    def wait_for(
        self,
        analysis_id: str,
        predicate: Callable[[dict[str, Any]], bool],
        timeout: float = 60.0,
        process: ManagedProcess | None = None,
    ) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        data: dict[str, Any] = {}
        while time.monotonic() < deadline:
            data = self.get(analysis_id)
            if predicate(data):
                return data
            time.sleep(0.2)
        tail = process.tail(60) if process is not None else ""
        raise AssertionError(f"{analysis_id} never matched; last state {data!r}\n{tail}")

    def wait_status(
        self, analysis_id: str, status: str, timeout: float = 60.0, **kwargs: Any
    ) -> dict[str, Any]:
        return self.wait_for(analysis_id, lambda d: d.get("status") == status, timeout, **kwargs)


@pytest.fixture
def world(firestore: ManagedProcess, pubsub: ManagedProcess, project_id: str) -> Iterator[JobWorld]:
    apply_topology(project_id, fast_topology())
    db = firestore_client(project_id)
    publisher = pubsub_v1.PublisherClient(
        publisher_options=pubsub_v1.types.PublisherOptions(enable_message_ordering=True)
    )
    yield JobWorld(project=project_id, db=db, publisher=publisher)
    publisher.stop()
    db.close()


def firestore_client(project: str) -> firestore.Client:
    return firestore.Client(project=project)


def analyzer_env(world: JobWorld, video_dir: Path, **overrides: str) -> dict[str, str]:
    env = {
        "GOOGLE_CLOUD_PROJECT": world.project,
        "FIRESTORE_EMULATOR_HOST": os.environ["FIRESTORE_EMULATOR_HOST"],
        "PUBSUB_EMULATOR_HOST": os.environ["PUBSUB_EMULATOR_HOST"],
        # The child imports the fault-injecting engines from tests/.
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")])),
        "ENGINE": "tests.analyzer.faulty_engines:by_file_name",
        "ALLOW_FILE_URLS": "true",
        "ALLOWED_FILE_ROOTS": json.dumps([str(video_dir)]),
        "MAX_ATTEMPTS": str(MAX_ATTEMPTS),
        "JOB_MEMORY_LIMIT_MB": "400",
        "JOB_TIMEOUT_SECONDS": "30",
        "PROGRESS_INTERVAL_SECONDS": "0.5",
        "LEASE_SECONDS": "4",
        "SHUTDOWN_GRACE_SECONDS": "20",
        "HEARTBEAT_TIMEOUT_SECONDS": "3",
        "LEASE_MARGIN_SECONDS": "30",
    }
    env.update(overrides)
    return env


@pytest.fixture
def start_analyzer() -> Iterator[Callable[..., ManagedProcess]]:
    started: list[ManagedProcess] = []

    def start(env: dict[str, str], *, ready: bool = True) -> ManagedProcess:
        process = service("analyzer", "analyzer.main", env)
        started.append(process)
        return process.start(ready_path="/healthz" if ready else None, timeout=60)

    yield start
    for process in started:
        process.stop(timeout=30)


@pytest.fixture(scope="session")
def storage_emulator() -> Iterator[ManagedProcess]:
    emulator = components.storage_emulator().start(timeout=120)
    yield emulator
    emulator.stop()
