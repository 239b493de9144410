"""Fixtures of the container tests: an engine (started here when possible), the images
(built from this checkout), and the three rendered pods with the emulators, dev-auth and a
Cloud Storage emulator (the videos) on the host.

Without an engine these tests are skipped with the reason printed, except in CI
(CI=true), where they fail: CI must prove the images, not skip them.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from analyzer.engine.synthetic import write_dance_video
from flokraft_core.messaging.topology import apply_topology
from flokraft_devstack.components import storage_emulator
from flokraft_devstack.issuer import TestIssuer
from flokraft_devstack.processes import ManagedProcess

# The analyzer tests' fast job topology (the production names, short deadlines).
from tests.analyzer.conftest import fast_topology
from tests.containers.engine import EngineUnavailable, ensure_engine, ensure_images
from tests.containers.stack import Addresses, Stack, host_port, host_side, running_stack

# The user whose analyses the isolation tests create and poll.
USER = "dancer-1"
# The first test of the module pays for the session's image build (minutes on a fresh
# machine: the Debian base, then three images) inside pytest-timeout's budget.
CONTAINER_TEST_TIMEOUT = 1200


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.timeout(CONTAINER_TEST_TIMEOUT))


@pytest.fixture(scope="session")
def engine() -> str:
    try:
        ensure_engine()
    except EngineUnavailable as exc:
        reason = f"no container engine could be started here, so the images are NOT tested: {exc}"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    return ensure_images()


@pytest.fixture(scope="session")
def videos() -> Iterator[Path]:
    """The videos the tests upload: <uid>/<name>.mp4."""
    root = Path(tempfile.mkdtemp(prefix="container-videos-"))
    (root / USER).mkdir()
    # Long enough that a job is surely mid-way when the tests kill its worker (3 minutes
    # of video: about 15 s of analysis here), small enough to write in a few seconds.
    write_dance_video(
        root / USER / "long.mp4", duration_seconds=180, dancers="mirrored", size=(320, 180)
    )
    write_dance_video(
        root / USER / "short.mp4", duration_seconds=4, dancers="mirrored", size=(320, 180)
    )
    yield root
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def videos_bucket_emulator() -> Iterator[ManagedProcess]:
    """gcp-storage-emulator on a free port: the videos' bucket."""
    emulator = storage_emulator().start(timeout=120)
    yield emulator
    emulator.stop()


@pytest.fixture(scope="session")
def addresses(
    engine: str,
    firestore: ManagedProcess,
    pubsub: ManagedProcess,
    videos_bucket_emulator: ManagedProcess,
    issuer: TestIssuer,
    videos: Path,
) -> Addresses:
    project = f"containers-{uuid.uuid4().hex[:10]}"
    # The production topology's names, with a short ack deadline so a job whose worker
    # was killed is redelivered within seconds.
    apply_topology(project, fast_topology())
    return host_side(
        project,
        f"videos-{project}",
        firestore=firestore,
        pubsub=pubsub,
        storage_emulator=videos_bucket_emulator,
        issuer=issuer,
        videos=videos,
    )


@pytest.fixture(scope="session")
def stack(addresses: Addresses) -> Iterator[Stack]:
    ports = {service: host_port() for service in ("query-api", "rerun-api", "analyzer")}
    with running_stack(addresses, ports, name_prefix=f"flokraft-test-{os.getpid()}") as it:
        yield it
