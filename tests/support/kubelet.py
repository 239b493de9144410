"""What Kubernetes does to a pod, played against real processes with the chart's own
numbers: the readiness probe (period, timeout, failure threshold), the preStop pause and
terminationGracePeriodSeconds, read from `helm template` output.

- `Prober` probes like the kubelet (and like an endpoints controller that routes by the
  result): one GET per period, a failure past the timeout or on any status but 2xx/3xx.
- `terminate` stops a process like the kubelet: preStop pause, SIGTERM, SIGKILL after
  the grace period.
"""

from __future__ import annotations

import functools
import signal
import subprocess
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import httpx
import yaml

from flokraft_devstack.processes import ManagedProcess
from flokraft_devstack.settings import REPO_ROOT

CHART = REPO_ROOT / "helm" / "flokraft"
HELM = REPO_ROOT / ".tools" / "bin" / "helm"


@dataclass(frozen=True)
class PodShape:
    """What the chart renders for one service's pod."""

    period: float
    timeout: float
    failure_threshold: int
    pre_stop_seconds: float
    grace_seconds: float
    env: dict[str, str]


@functools.cache
def pod_shape(service: str) -> PodShape:
    if not HELM.exists():
        subprocess.run(
            ["bash", str(REPO_ROOT / "scripts" / "install-k8s-tools.sh")],
            check=True,
            cwd=REPO_ROOT,
            timeout=300,
        )
    out = subprocess.run(
        [str(HELM), "template", "flokraft", str(CHART), "--namespace", "flokraft"],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    ).stdout
    (deployment,) = [
        doc
        for doc in yaml.safe_load_all(out)
        if doc
        and doc["kind"] == "Deployment"
        and doc["metadata"]["labels"].get("app.kubernetes.io/component") == service
    ]
    pod: dict[str, Any] = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    probe = container["readinessProbe"]
    pre_stop = container.get("lifecycle", {}).get("preStop", {})
    return PodShape(
        period=float(probe["periodSeconds"]),
        timeout=float(probe["timeoutSeconds"]),
        failure_threshold=int(probe["failureThreshold"]),
        pre_stop_seconds=float(pre_stop.get("sleep", {}).get("seconds", 0)),
        grace_seconds=float(pod["terminationGracePeriodSeconds"]),
        env={e["name"]: str(e["value"]) for e in container["env"] if "value" in e},
    )


@dataclass
class Probe:
    at: float  # monotonic
    ok: bool
    detail: str


@dataclass
class Prober:
    """The kubelet's readiness probe of one process, in a thread."""

    url: str
    period: float
    timeout: float
    failure_threshold: int
    results: list[Probe] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    @classmethod
    def for_service(cls, service: str, url: str) -> Prober:
        shape = pod_shape(service)
        return cls(url, shape.period, shape.timeout, shape.failure_threshold)

    def probe_once(self) -> Probe:
        started = time.monotonic()
        try:
            # A fresh connection per probe, as the kubelet's httpGet makes.
            response = httpx.get(self.url + "/readyz", timeout=self.timeout)
            probe = Probe(started, 200 <= response.status_code < 400, str(response.status_code))
        except httpx.HTTPError as exc:
            probe = Probe(started, False, type(exc).__name__)
        self.results.append(probe)
        return probe

    @property
    def ready(self) -> bool:
        """As the endpoints controller sees it: ready until `failure_threshold` probes in
        a row failed, unready until one succeeds."""
        if not self.results:
            return False
        if self.results[-1].ok:
            return True
        tail = self.results[-self.failure_threshold :]
        return not (len(tail) == self.failure_threshold and not any(p.ok for p in tail))

    def start(self) -> Prober:
        self._thread = threading.Thread(target=self._run, daemon=True, name=f"probe {self.url}")
        self._thread.start()
        return self

    def _run(self) -> None:
        next_at = time.monotonic()
        while not self._stop.is_set():
            self.probe_once()
            next_at += self.period
            self._stop.wait(max(0.0, next_at - time.monotonic()))

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.timeout + self.period + 5)

    def failures(self, since: float = 0.0) -> list[Probe]:
        return [p for p in self.results if p.at >= since and not p.ok]


def terminate(process: ManagedProcess, service: str) -> float:
    """Deletes the pod as the kubelet would: the rendered preStop pause, SIGTERM, and
    SIGKILL once terminationGracePeriodSeconds (counted from the start) is over.
    Returns how long the process took to exit, from the start of the preStop."""
    shape = pod_shape(service)
    assert process.process is not None
    started = time.monotonic()
    time.sleep(shape.pre_stop_seconds)
    process.process.send_signal(signal.SIGTERM)
    try:
        process.process.wait(timeout=max(0.0, shape.grace_seconds - shape.pre_stop_seconds))
    except subprocess.TimeoutExpired:
        process.process.send_signal(signal.SIGKILL)
        process.process.wait(timeout=10)
        raise AssertionError(f"{service} outlived terminationGracePeriodSeconds") from None
    return time.monotonic() - started
