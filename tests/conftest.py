"""Session fixtures: the emulators run once per test session, on free ports.

Tests isolate their data by project id (the emulators keep each project apart), so no
test needs to wipe what another wrote.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from flokraft_devstack.components import firestore_emulator, pubsub_emulator
from flokraft_devstack.issuer import TestIssuer, running_issuer
from flokraft_devstack.processes import ManagedProcess


@pytest.fixture(scope="session")
def firestore() -> Iterator[ManagedProcess]:
    emulator = firestore_emulator().start(timeout=30)
    os.environ["FIRESTORE_EMULATOR_HOST"] = emulator.host
    yield emulator
    emulator.stop()


@pytest.fixture(scope="session")
def pubsub() -> Iterator[ManagedProcess]:
    emulator = pubsub_emulator().start(timeout=30)
    os.environ["PUBSUB_EMULATOR_HOST"] = emulator.host
    yield emulator
    emulator.stop()


@pytest.fixture
def private_firestore(monkeypatch: pytest.MonkeyPatch) -> Iterator[ManagedProcess]:
    """A Firestore emulator of the test's own, for outage tests that stop or restart it
    (`.stop()`, then `.start()` brings it back on the same port)."""
    emulator = firestore_emulator().start(timeout=30)
    monkeypatch.setenv("FIRESTORE_EMULATOR_HOST", emulator.host)
    try:
        yield emulator
    finally:
        emulator.stop()


@pytest.fixture
def private_pubsub(monkeypatch: pytest.MonkeyPatch) -> Iterator[ManagedProcess]:
    """A Pub/Sub emulator of the test's own, for outage tests that stop, freeze or restart
    it. The test's own clients talk to it too."""
    emulator = pubsub_emulator().start(timeout=30)
    monkeypatch.setenv("PUBSUB_EMULATOR_HOST", emulator.host)
    try:
        yield emulator
    finally:
        emulator.stop()


@pytest.fixture
def project_id() -> str:
    """A fresh project per test: its own Firestore data and Pub/Sub resources."""
    return f"test-{uuid.uuid4().hex[:12]}"


@pytest.fixture(scope="session")
def issuer(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestIssuer]:
    # The audience is checked against AUTH_AUDIENCE, which tests set per service.
    with running_issuer(Path(tmp_path_factory.mktemp("devauth")), audience="flokraft-tests") as it:
        yield it
