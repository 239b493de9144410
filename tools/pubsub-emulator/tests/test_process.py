"""The emulator as a process: clean shutdown on signals and restart on the same port."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time

import pytest
from google.api_core import exceptions
from google.cloud import pubsub_v1

from flokraft_devstack.components import start_pubsub_emulator


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_signal_stops_cleanly_and_port_is_reusable(
    signum: signal.Signals, monkeypatch: pytest.MonkeyPatch
) -> None:
    emulator = start_pubsub_emulator()
    try:
        monkeypatch.setenv("PUBSUB_EMULATOR_HOST", emulator.host)
        publisher = pubsub_v1.PublisherClient()
        subscriber = pubsub_v1.SubscriberClient()
        topic = publisher.create_topic(name="projects/proc/topics/restart").name
        subscription = "projects/proc/subscriptions/restart"
        subscriber.create_subscription(name=subscription, topic=topic)
        # An open stream must not delay the shutdown.
        future = subscriber.subscribe(subscription, lambda message: message.ack())
        time.sleep(0.2)
        started = time.monotonic()
        emulator.process.send_signal(signum)
        assert emulator.process.wait(timeout=5) == 0
        assert time.monotonic() - started < 2.5
        future.cancel()

        restarted = start_pubsub_emulator(port=emulator.port)
        try:
            assert restarted.port == emulator.port
            # In-memory only: the restarted emulator starts empty.
            with pytest.raises(exceptions.NotFound):
                publisher.get_topic(topic=topic)
        finally:
            restarted.stop()
            restarted.stop()  # idempotent
    finally:
        emulator.stop()


def test_busy_port_is_an_error() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "-m", "pubsub_emulator", "--host", "127.0.0.1", "--port", str(port)],
            capture_output=True,
            timeout=30,
            check=False,
        )
    assert result.returncode != 0
    assert b"cannot listen" in result.stderr
