"""A rolling restart under polling load loses no request.

Real query-api processes behind a round-robin proxy that routes only to backends whose
readiness passes (probed at the chart's readinessProbe period: the endpoints controller
and the load balancer), replaced one at a time as the Deployment's strategy does
(maxSurge 1, maxUnavailable 0): start a new one, wait for it to be routed to, then delete
an old one as the kubelet does (the rendered preStop pause, SIGTERM, SIGKILL after
terminationGracePeriodSeconds). Every response of the polling load is counted.
"""

from __future__ import annotations

import signal
import threading
import time
import uuid
from dataclasses import dataclass, field

import httpx
from google.cloud import firestore as gfirestore

from flokraft_devstack.issuer import TestIssuer
from flokraft_devstack.processes import ManagedProcess, wait_until
from tests.query_api.conftest import COLLECTION, analysis_doc, start_query_api
from tests.support.balancer import Balancer, running_balancer
from tests.support.kubelet import Prober, pod_shape, terminate
from tests.support.sse import EventStream

POLLERS = 4
USERS = [f"roll-{i}" for i in range(POLLERS)]


@dataclass
class Load:
    """Pollers like the frontend's: a conditional GET /analyses, again and again."""

    url: str
    issuer: TestIssuer
    answers: list[int] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)

    def start(self) -> None:
        for user in USERS:
            thread = threading.Thread(target=self._poll, args=(user,), daemon=True)
            thread.start()
            self._threads.append(thread)

    def _poll(self, user: str) -> None:
        headers = self.issuer.headers(user)
        etag: str | None = None
        # Keep-alive to the proxy, as a browser keeps its connection to the load balancer.
        with httpx.Client(base_url=self.url, timeout=30) as client:
            while not self._stop.is_set():
                sent = dict(headers, **({"If-None-Match": etag} if etag else {}))
                try:
                    response = client.get("/analyses", params={"limit": 20}, headers=sent)
                except httpx.HTTPError as exc:
                    self.failures.append(f"{type(exc).__name__}: {exc}")
                    continue
                self.answers.append(response.status_code)
                if response.status_code in (200, 304):
                    etag = response.headers.get("etag", etag)
                else:
                    self.failures.append(f"{response.status_code}: {response.text[:200]}")
                time.sleep(0.02)

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=60)


def start_replica(project: str, firestore: ManagedProcess, issuer: TestIssuer) -> ManagedProcess:
    # The chart's DRAIN_SECONDS, as the Deployment sets it.
    drain = pod_shape("query-api").env["DRAIN_SECONDS"]
    return start_query_api(firestore.host, issuer, project, DRAIN_SECONDS=drain)


def add_and_wait_routed(balancer: Balancer, replica: ManagedProcess) -> None:
    balancer.add(Prober.for_service("query-api", replica.url))
    assert wait_until(lambda: replica.url in balancer.ready_backends(), 30), replica.tail()


def test_a_rolling_restart_under_polling_load_loses_no_request(
    firestore: ManagedProcess, issuer: TestIssuer
) -> None:
    shape = pod_shape("query-api")
    assert shape.pre_stop_seconds > 0
    project = f"roll-{uuid.uuid4().hex[:12]}"
    db = gfirestore.Client(project=project)
    for user in USERS:
        for index in range(3):
            db.collection(COLLECTION).document(f"{user}-{index}").set(analysis_doc(user, index))

    replicas = [start_replica(project, firestore, issuer) for _ in range(2)]
    started = list(replicas)
    load: Load | None = None
    try:
        with running_balancer() as balancer:
            for replica in replicas:
                add_and_wait_routed(balancer, replica)
            load = Load(balancer.url, issuer)
            load.start()
            time.sleep(2)

            stopped_in: list[float] = []
            goodbyes: list[tuple[float, float]] = []
            routed_at_exit: list[bool] = []
            for old in list(replicas):
                new = start_replica(project, firestore, issuer)
                started.append(new)
                add_and_wait_routed(balancer, new)
                # An event stream open on the old replica gets its final `reconnect`.
                stream = EventStream(old.url + "/analyses/events", issuer.headers(USERS[0])).open()
                assert stream.next(timeout=10).event == "ready"
                deleted_at = time.monotonic()
                stopped_in.append(terminate(old, "query-api"))
                exited_at = time.monotonic()
                goodbye = stream.next(timeout=1)
                stream.close()
                assert (goodbye.event, goodbye.json) == ("reconnect", {"reason": "shutdown"})
                assert goodbye.received_at < exited_at
                goodbyes.append((goodbye.received_at - deleted_at, exited_at - deleted_at))
                # The proxy had stopped routing to it before it stopped accepting: the
                # drain's failing readiness, seen by probes alone.
                routed_at_exit.append(old.url in balancer.ready_backends())
                assert old.process is not None
                assert old.process.returncode in (0, -signal.SIGTERM), old.tail()
                # (Without a drain, the endpoint would leave only after its probes failed.)
                wait_until(lambda o=old: o.url not in balancer.ready_backends(), 30)
                balancer.remove(old.url)
                replicas.remove(old)
                replicas.append(new)
            time.sleep(2)
            load.stop()

            routed = dict(balancer.routed)
        assert load.failures == [], load.failures[:10]
        assert routed_at_exit == [False, False]
        assert len(load.answers) >= 200, len(load.answers)
        # Every replica, old and new, answered part of the load.
        assert all(routed.get(p.url, 0) > 0 for p in started), routed
        # Deleted to exited: preStop + drain + the graceful shutdown, inside the grace.
        for seconds in stopped_in:
            assert seconds < shape.grace_seconds, stopped_in
        print(
            f"\nrolling restart: {len(load.answers)} answers, {len(load.failures)} failures; "
            f"deleted->exited {[round(s, 1) for s in stopped_in]} s; "
            f"deleted->stream reconnect {[round(g, 1) for g, _ in goodbyes]} s"
        )
    finally:
        if load is not None:
            load.stop()
        for process in started:
            process.stop()
        db.close()


def test_sigterm_fails_readiness_at_once_and_answers_go_on_until_the_drain_ends(
    firestore: ManagedProcess, issuer: TestIssuer
) -> None:
    drain = 3.0
    api = start_query_api(
        firestore.host, issuer, f"drain-{uuid.uuid4().hex[:8]}", DRAIN_SECONDS=str(drain)
    )
    headers = issuer.headers("drainer")
    try:
        assert wait_until(lambda: httpx.get(api.url + "/readyz", timeout=5).status_code == 200, 30)
        with httpx.Client(base_url=api.url, timeout=10) as client:
            before = client.get("/analyses", headers=headers)
            assert before.status_code == 200
            assert before.headers.get("connection") != "close"  # kept alive
            assert api.process is not None
            api.process.send_signal(signal.SIGTERM)
            signalled = time.monotonic()
            assert wait_until(lambda: client.get("/readyz").status_code == 503, 1, interval=0.05)
            unready_in = time.monotonic() - signalled
            ready = client.get("/readyz")
            assert ready.json()["checks"]["draining"].startswith("draining")
            # Still answering, and every answer closes its connection.
            during = client.get("/analyses", headers=headers)
            assert during.status_code == 200
            assert during.headers["connection"] == "close"
            assert time.monotonic() - signalled < drain
        # Once the drain is over it stops accepting and exits.
        assert api.process.wait(timeout=drain + 15) in (0, -signal.SIGTERM)
        exited_in = time.monotonic() - signalled
        assert drain <= exited_in < drain + 10, exited_in
        assert unready_in < 0.5, unready_in
        log = api.log_path.read_text(errors="replace")
        assert '"event": "drain_started"' in log
        assert '"event": "drain_done"' in log
    finally:
        api.stop()
