"""The chart's pods as they really run: what the engine runs is what `helm template`
rendered, each service reads its limit from the container's cgroup, the security context
holds inside the container, and SIGTERM drains and exits 0 within the grace period."""

from __future__ import annotations

import dataclasses
import re
import threading
import time
from typing import Any

import httpx
import pytest
from google.cloud import firestore, pubsub_v1

from flokraft_core.messaging.job_message import new_job
from flokraft_core.messaging.topology import apply_topology
from flokraft_devstack.issuer import TestIssuer
from flokraft_devstack.probes import metric_value
from tests.analyzer.conftest import JobWorld, fast_topology
from tests.containers.conftest import USER
from tests.containers.engine import SERVICES
from tests.containers.pods import HOST_NETWORK_ENV, Pod, memory_bytes, pod_spec
from tests.containers.stack import Stack, host_port, render_specs


def rendered_container(stack: Stack, service: str) -> tuple[dict[str, Any], dict[str, Any]]:
    deployment = next(
        d
        for d in stack.docs
        if d.get("kind") == "Deployment"
        and d["spec"]["template"]["spec"]["containers"][0]["name"] == service
    )
    pod = deployment["spec"]["template"]["spec"]
    return pod, pod["containers"][0]


@pytest.mark.parametrize("service", SERVICES)
def test_what_runs_is_what_renders(stack: Stack, service: str) -> None:
    """Read straight from the rendered YAML and from `docker inspect`, field by field."""
    pod, container = rendered_container(stack, service)
    running = stack.pods[service].inspect()
    host, config = running["HostConfig"], running["Config"]

    assert config["Image"] == container["image"]
    limits, requests = container["resources"]["limits"], container["resources"]["requests"]
    assert host["Memory"] == memory_bytes(limits["memory"])
    assert host["MemorySwap"] == memory_bytes(limits["memory"]), "no swap beyond the limit"
    assert host["MemoryReservation"] == memory_bytes(requests["memory"])
    assert host["NanoCpus"] == int(float(str(limits["cpu"]).rstrip("m")) * 1e9) or (
        str(limits["cpu"]).endswith("m")
        and host["NanoCpus"] == int(str(limits["cpu"])[:-1]) * 10**6
    )
    security = {**pod["securityContext"], **container["securityContext"]}
    assert config["User"] == f"{security['runAsUser']}:{security['runAsGroup']}"
    assert security["runAsNonRoot"] is True
    assert security["runAsUser"] != 0
    assert host["ReadonlyRootfs"] is security["readOnlyRootFilesystem"] is True
    assert host["CapDrop"] == security["capabilities"]["drop"] == ["ALL"]
    assert security["allowPrivilegeEscalation"] is False
    assert "no-new-privileges" in host["SecurityOpt"]
    assert host["NetworkMode"] == "host"
    assert host["RestartPolicy"]["Name"] == "always"  # a Deployment's restartPolicy
    assert config["StopTimeout"] == pod["terminationGracePeriodSeconds"]
    mounts = {m["Destination"]: m for m in running["Mounts"]}
    for mount in container["volumeMounts"]:
        volume = next(v for v in pod["volumes"] if v["name"] == mount["name"])
        assert "emptyDir" in volume
        assert volume["emptyDir"].get("medium") != "Memory"
        assert mounts[mount["mountPath"]]["Type"] == "volume", "disk-backed, like the emptyDir"

    # Every rendered env var, with ConfigMap and Secret references resolved from the same
    # render, is in the container's environment with the same value; nothing else is added
    # but the image's own variables and the host-network bind address.
    env = dict(item.split("=", 1) for item in config["Env"])
    expected = pod_spec(stack.docs, service).env
    names = {e["name"] for e in container["env"]}
    assert names <= set(expected)
    for name, value in expected.items():
        assert env[name] == HOST_NETWORK_ENV.get(name, value), name
    image_env = {"PATH", "PYTHONUNBUFFERED", "PYTHONDONTWRITEBYTECODE", "WORK_DIR"}
    assert set(env) - set(expected) <= image_env
    if any("secretKeyRef" in e.get("valueFrom", {}) for e in container["env"]):
        assert len(env["PAGE_TOKEN_SECRET"]) >= 32, "the rendered Secret's value"


@pytest.mark.parametrize("service", SERVICES)
def test_limits_and_security_inside_the_container(stack: Stack, service: str) -> None:
    pod = stack.pods[service]
    spec = pod.spec
    cgroup = pod.cgroup_memory()
    assert cgroup["limit"] == spec.memory_limit
    # The service reports the limit it reads from its cgroup, not a configured one.
    assert metric_value(pod.url, "flokraft_memory_limit_bytes", source="cgroup") == float(
        cgroup["limit"]
    )
    status = pod.exec("cat", "/proc/1/status").stdout
    fields = dict(re.findall(r"^(\w+):\s+(.*)$", status, re.MULTILINE))
    assert fields["Uid"].split()[0] == str(spec.run_as_user)
    assert fields["Gid"].split()[0] == str(spec.run_as_group)
    assert int(fields["CapEff"], 16) == 0
    assert int(fields["CapBnd"], 16) == 0
    assert fields["NoNewPrivs"] == "1"
    denied = pod.exec("touch", "/app/written")
    assert denied.returncode != 0
    assert "Read-only file system" in denied.stderr
    writable = pod.exec("touch", "/tmp/written")
    assert writable.returncode == 0, writable.stderr


def test_sigterm_drains_in_flight_requests_and_exits_0(stack: Stack, issuer: TestIssuer) -> None:
    """A second query-api pod from the same render. Pollers keep it busy; at the stop they
    send nothing new (on a cluster the endpoint is removed) and every request already sent
    must be answered while PID 1 drains; the container exits 0 within the grace period and
    is not restarted (a stop is final, as a deleted pod's)."""
    ports = {service: host_port() for service in SERVICES}
    # Five clients polling flat out would pass the per-user limit within a second.
    unlimited = {"services": {"query-api": {"env": {"RATE_LIMIT": "100000/minute"}}}}
    _, specs = render_specs(stack.addresses, ports, unlimited)
    pod = Pod(spec=specs["query-api"], name=f"{stack.pods['query-api'].name}-drain").start()
    try:
        pod.wait_ready(90)
        headers = issuer.headers(USER)
        stopping = threading.Event()
        # (sent at, answered at, status or exception name) per request
        results: list[tuple[float, float, int | str]] = []

        def poll() -> None:
            with httpx.Client(base_url=pod.url, timeout=10) as client:
                while not stopping.is_set():
                    sent = time.monotonic()
                    try:
                        outcome: int | str = client.get("/analyses", headers=headers).status_code
                    except httpx.HTTPError as exc:
                        outcome = type(exc).__name__
                    results.append((sent, time.monotonic(), outcome))

        threads = [threading.Thread(target=poll) for _ in range(5)]
        for thread in threads:
            thread.start()
        time.sleep(1.0)
        stopping.set()
        sigterm_at = time.monotonic()
        # `docker stop`: SIGTERM to PID 1, SIGKILL only after the rendered grace period,
        # and no restart afterwards (as the kubelet deleting a pod).
        exit_code = pod.stop()
        took = time.monotonic() - sigterm_at
        for thread in threads:
            thread.join()
        assert exit_code == 0, pod.logs()
        assert took < pod.spec.grace_seconds, "drained before the SIGKILL"
        assert not pod.state()["OOMKilled"]
        # uvicorn closes, at its shutdown, every connection it is not serving a request on,
        # including one whose next request is still unread in the socket: that client sees
        # a reset, at most once each. On a cluster the endpoint is removed as the pod stops
        # (and a preStop delay would cover even this); here it is allowed and counted.
        failed = [
            (round(t - sigterm_at, 3), outcome) for t, _, outcome in results if outcome != 200
        ]
        resets = [f for f in failed if f[1] in ("ReadError", "RemoteProtocolError")]
        assert failed == resets, failed
        assert len(resets) <= len(threads), resets
        print(f"\nquery-api drain: {len(results)} requests, {len(resets)} reset, {took:.1f} s")
        in_flight = [r for r in results if r[1] > sigterm_at]
        assert in_flight, "some requests were in flight at the SIGTERM"
        time.sleep(2)
        assert not pod.running()
        assert pod.restart_count() == 0
    finally:
        pod.remove()


def test_sigterm_lets_the_analyzers_running_job_finish_and_exits_0(
    stack: Stack, issuer: TestIssuer
) -> None:
    """A second analyzer pod, on a project of its own (so the shared analyzer cannot take
    its job): SIGTERM mid-job, the job finishes within SHUTDOWN_GRACE_SECONDS, the
    container exits 0 before terminationGracePeriodSeconds, nothing is redelivered."""
    addresses = dataclasses.replace(stack.addresses, project=f"{stack.addresses.project}-drain")
    apply_topology(addresses.project, fast_topology())
    ports = {service: host_port() for service in SERVICES}
    _, specs = render_specs(addresses, ports)
    spec = specs["analyzer"]
    assert spec.grace_seconds > float(spec.env["SHUTDOWN_GRACE_SECONDS"])
    db = firestore.Client(project=addresses.project)
    publisher = pubsub_v1.PublisherClient(
        publisher_options=pubsub_v1.types.PublisherOptions(enable_message_ordering=True)
    )
    world = JobWorld(project=addresses.project, db=db, publisher=publisher)
    pod = Pod(spec=spec, name=f"{stack.pods['analyzer'].name}-drain").start()
    try:
        pod.wait_ready(120)
        analysis_id = world.create(addresses.video_url(USER, "long.mp4"), user_id=USER)
        world.publish_raw(new_job(analysis_id, 1, USER).encode(), ordering_key=analysis_id)
        world.wait_for(analysis_id, lambda d: d["status"] == "running" and d["progress"] > 0, 120)
        started = time.monotonic()
        exit_code = pod.stop()
        took = time.monotonic() - started
        assert exit_code == 0, pod.logs()
        assert took < spec.grace_seconds
        done = world.get(analysis_id)
        assert done["status"] == "done", done
        assert done["attempts"] == 1
        assert done["completions"] == 1
        assert '"event": "worker_stopped"' in pod.logs(tail=30)
        print(f"\nanalyzer drain: the running job finished, exit 0 in {took:.1f} s")
    finally:
        pod.remove()
        publisher.stop()
        db.close()
