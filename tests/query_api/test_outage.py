"""A Firestore outage is the answers' business, not the probes': during a 15 s stall every
request answers 503 + Retry-After quickly, no readiness probe fails (so no replica leaves
the load balancer), the dependency's health shows in metrics, logs and /readyz's body,
and the service recovers by itself. Probes cost no Firestore read. A pod whose process
really cannot serve (wedged) still fails its probe."""

from __future__ import annotations

import os
import signal
import time
import uuid

import httpx

from flokraft_devstack.issuer import TestIssuer as Issuer
from flokraft_devstack.probes import metric_value
from flokraft_devstack.processes import ManagedProcess, wait_until
from tests.query_api.conftest import running_query_api, start_query_api
from tests.support.kubelet import Prober, pod_shape

STALL_SECONDS = 15


def read_counts(url: str) -> dict[str, float]:
    """firestore_documents_read_total by route."""
    counts: dict[str, float] = {}
    for line in httpx.get(url + "/metrics", timeout=10).text.splitlines():
        if line.startswith("firestore_documents_read_total{"):
            labels, value = line.rsplit(" ", 1)
            route = labels.split('route="', 1)[1].split('"', 1)[0]
            counts[route] = float(value)
    return counts


def test_a_firestore_stall_fails_no_probe_and_answers_503_with_retry_after(
    private_firestore: ManagedProcess, issuer: Issuer
) -> None:
    proc = start_query_api(
        private_firestore.host,
        issuer,
        f"out-{uuid.uuid4().hex[:8]}",
        FIRESTORE_TIMEOUT_SECONDS="2",
        FIRESTORE_RETRY_SECONDS="1",
        DEPENDENCY_CHECK_INTERVAL_SECONDS="1",
    )
    headers = issuer.headers("u1")
    # The chart's probe timeout, probed ten times as often as its period (every prober
    # of a GKE health check and the kubelet together).
    prober = Prober(proc.url, 0.5, pod_shape("query-api").timeout, 1)
    assert private_firestore.process is not None
    try:
        assert wait_until(lambda: prober.probe_once().ok, 30), proc.tail()
        assert httpx.get(proc.url + "/analyses", headers=headers, timeout=10).status_code == 200
        prober.start()

        os.killpg(private_firestore.process.pid, signal.SIGSTOP)
        stalled_at = time.monotonic()
        answers = []
        try:
            while time.monotonic() - stalled_at < STALL_SECONDS:
                started = time.monotonic()
                down = httpx.get(proc.url + "/analyses", headers=headers, timeout=30)
                answers.append((down, time.monotonic() - started))
            report = httpx.get(proc.url + "/readyz", timeout=10)
            up = metric_value(proc.url, "flokraft_dependency_up", dependency="firestore")
        finally:
            os.killpg(private_firestore.process.pid, signal.SIGCONT)

        assert answers
        for down, elapsed in answers:
            assert down.status_code == 503, down.text
            assert down.json()["error"]["code"] == "unavailable"
            assert int(down.headers["retry-after"]) > 0
            # Within the call's own deadline (FIRESTORE_TIMEOUT_SECONDS + retry budget),
            # with margin for a loaded machine.
            assert elapsed < 10, elapsed
        # The probes passed all along: the replica stayed in the load balancer.
        during = [p for p in prober.results if p.at >= stalled_at]
        assert len(during) >= STALL_SECONDS, during
        assert prober.failures(since=stalled_at) == []
        assert report.status_code == 200
        assert report.json()["dependencies"]["firestore"].startswith("down for")
        assert up == 0
        latencies = sorted(elapsed for _, elapsed in answers)
        print(
            f"\nquery-api, {STALL_SECONDS} s Firestore stall: {len(during)} probes, "
            f"{len(prober.failures(since=stalled_at))} failed; {len(answers)} requests, all 503, "
            f"{latencies[len(latencies) // 2]:.2f} s median, {latencies[-1]:.2f} s max"
        )

        # Back by itself: answers, metrics and a log line say so.
        assert wait_until(
            lambda: (
                httpx.get(proc.url + "/analyses", headers=headers, timeout=30).status_code == 200
            ),
            30,
            interval=0.5,
        ), proc.tail()
        assert wait_until(
            lambda: metric_value(proc.url, "flokraft_dependency_up", dependency="firestore") == 1,
            30,
        )
        prober.stop()
        assert prober.failures() == [], prober.failures()
        log = proc.log_path.read_text(errors="replace")
        assert '"event": "dependency_down"' in log
        assert '"event": "dependency_up"' in log
    finally:
        prober.stop()
        proc.stop()


def test_probes_read_nothing_from_firestore(firestore: ManagedProcess, issuer: Issuer) -> None:
    # One background check at start-up, then none for an hour: every read after it is
    # someone else's.
    with running_query_api(
        firestore.host, issuer, "probe-reads", DEPENDENCY_CHECK_INTERVAL_SECONDS="3600"
    ) as api:
        prober = Prober.for_service("query-api", api.url)
        assert wait_until(lambda: prober.probe_once().ok, 30)
        assert wait_until(lambda: read_counts(api.url).get("dependency_check") == 1, 10)
        before = read_counts(api.url)
        for _ in range(50):
            assert prober.probe_once().ok
        assert read_counts(api.url) == before
        assert "/readyz" not in before


def test_a_wedged_process_fails_its_probe_and_stays_out_until_its_loop_is_steady(
    firestore: ManagedProcess, issuer: Issuer
) -> None:
    """SIGSTOP freezes the whole process, as a wedged event loop (or a thread holding the
    GIL) does: the kubelet's probe times out. Once it runs again, /readyz still says the
    loop was blocked until its window has passed, so a pod that keeps wedging does not
    flap back into rotation between stalls."""
    with running_query_api(firestore.host, issuer, "wedged") as api:
        prober = Prober.for_service("query-api", api.url)
        assert wait_until(lambda: prober.probe_once().ok, 30)
        assert api.process.process is not None
        pid = api.process.process.pid
        os.killpg(pid, signal.SIGSTOP)
        try:
            time.sleep(3)
            frozen = [prober.probe_once() for _ in range(prober.failure_threshold)]
        finally:
            os.killpg(pid, signal.SIGCONT)
        assert [p.ok for p in frozen] == [False] * prober.failure_threshold, frozen
        assert not prober.ready

        after = httpx.get(api.url + "/readyz", timeout=10)
        assert after.status_code == 503, after.text
        assert "the event loop was blocked" in after.json()["checks"]["event_loop"]
        assert httpx.get(api.url + "/healthz", timeout=10).status_code == 200
        # Steady again: ready once the window (10 s) has passed.
        assert wait_until(lambda: prober.probe_once().ok, 30)
