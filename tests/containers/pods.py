"""The chart's pods run in the Docker engine: a Deployment from `helm template`'s output
becomes one `docker run`, and the harness does what a kubelet would and the engine does
not (probing).

What is read from the rendered Deployment (nothing of it is written here a second time):
the image, env and envFrom (ConfigMap and Secret references resolved from the same
render), memory and CPU limits and requests, the pod's and container's security context,
the emptyDir volumes, the termination grace period and the three probes. The only
deliberate difference: pods share the host's network namespace (there is no pod network
here) and bind 127.0.0.1 instead of the rendered HOST=0.0.0.0, so nothing listens beyond
this machine (HOST_NETWORK_ENV).

Probes: docker never acts on a failing health check and podman's need systemd timers, so
`Pod` runs a kubelet-like prober thread from the rendered fields: the startup probe until
it passes, then liveness (after failureThreshold misses it sends SIGTERM to PID 1, then
SIGKILL after the grace period, and the engine's restart policy brings the container back,
as the kubelet's restartPolicy: Always does) and readiness (`Pod.ready`, `wait_ready`).

Typical use:
    docs = render_chart(LOCAL_VALUES, {"services": {"query-api": {"port": 18001}}})
    pod = Pod(pod_spec(docs, "query-api"), name="flokraft-query-api-test")
    pod.start(); pod.wait_ready(); ...; exit_code = pod.stop()
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import re
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import yaml

from tests.containers.engine import REPO_ROOT, docker, docker_cli, inspect

CHART = REPO_ROOT / "helm" / "flokraft"
HELM = REPO_ROOT / ".tools" / "bin" / "helm"
RELEASE = "flokraft"
NAMESPACE = "flokraft"
# The one change to what renders: see the module's docstring.
HOST_NETWORK_ENV = {"HOST": "127.0.0.1"}

_MEMORY_UNITS = {
    "Ki": 2**10,
    "Mi": 2**20,
    "Gi": 2**30,
    "Ti": 2**40,
    "k": 10**3,
    "M": 10**6,
    "G": 10**9,
    "T": 10**12,
}


def memory_bytes(quantity: str | int) -> int:
    """A Kubernetes memory quantity ("256Mi", "2Gi", "1G", "1048576") in bytes."""
    text = str(quantity)
    match = re.fullmatch(r"(\d+(?:\.\d+)?)([KMGT]i?|k)?", text)
    if not match:
        raise ValueError(f"memory quantity {text!r}")
    number, unit = match.groups()
    return int(float(number) * (_MEMORY_UNITS[unit] if unit else 1))


def cpu_millis(quantity: str | int | float) -> int:
    """A Kubernetes CPU quantity ("1", "250m", 0.5) in millicores."""
    text = str(quantity)
    return int(text[:-1]) if text.endswith("m") else int(float(text) * 1000)


def render_chart(
    *values: Path | Mapping[str, Any],
) -> list[dict[str, Any]]:
    """`helm template` of the chart with values files and/or values given as mappings
    (each becomes a values file, later ones win): the documents it renders."""
    command = [str(HELM), "template", RELEASE, str(CHART), "--namespace", NAMESPACE]
    with tempfile.TemporaryDirectory(prefix="flokraft-values-") as tmp:
        for index, item in enumerate(values):
            if isinstance(item, Path):
                command += ["-f", str(item)]
                continue
            path = Path(tmp) / f"values-{index}.yaml"
            path.write_text(yaml.safe_dump(dict(item)))
            command += ["-f", str(path)]
        result = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"helm template failed: {result.stderr.strip()}")
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def _find(docs: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    for doc in docs:
        if doc.get("kind") == kind and doc["metadata"]["name"] == name:
            return doc
    raise KeyError(f"the render has no {kind} {name}")


def _config_map(docs: list[dict[str, Any]], name: str) -> dict[str, str]:
    return {k: str(v) for k, v in (_find(docs, "ConfigMap", name).get("data") or {}).items()}


def _secret(docs: list[dict[str, Any]], name: str) -> dict[str, str]:
    secret = _find(docs, "Secret", name)
    values = {k: base64.b64decode(v).decode() for k, v in (secret.get("data") or {}).items()}
    values.update({k: str(v) for k, v in (secret.get("stringData") or {}).items()})
    return values


@dataclass(frozen=True)
class Probe:
    path: str
    port: int
    period: float
    timeout: float
    failure_threshold: int
    initial_delay: float

    @classmethod
    def from_spec(cls, spec: dict[str, Any], ports: Mapping[str, int]) -> Probe:
        http = spec["httpGet"]
        port = http["port"]
        return cls(
            path=http["path"],
            port=ports[port] if isinstance(port, str) else int(port),
            period=float(spec.get("periodSeconds", 10)),
            timeout=float(spec.get("timeoutSeconds", 1)),
            failure_threshold=int(spec.get("failureThreshold", 3)),
            initial_delay=float(spec.get("initialDelaySeconds", 0)),
        )

    def check(self) -> bool:
        """One probe, as the kubelet's: any 200-399 answer within the timeout passes."""
        try:
            response = httpx.get(f"http://127.0.0.1:{self.port}{self.path}", timeout=self.timeout)
        except httpx.HTTPError:
            return False
        return 200 <= response.status_code < 400


@dataclass(frozen=True)
class PodSpec:
    """One Deployment's pod, as rendered (first container)."""

    deployment: str
    container: str
    image: str
    port: int
    env: dict[str, str]
    memory_limit: int | None
    memory_request: int | None
    cpu_limit_millis: int | None
    cpu_request_millis: int | None
    run_as_user: int | None
    run_as_group: int | None
    supplemental_groups: tuple[int, ...]
    read_only_root: bool
    drop_capabilities: tuple[str, ...]
    add_capabilities: tuple[str, ...]
    no_new_privileges: bool
    empty_dirs: dict[str, dict[str, Any]]
    grace_seconds: int
    startup: Probe | None
    liveness: Probe | None
    readiness: Probe | None
    restart_policy: str


def pod_spec(docs: list[dict[str, Any]], service: str) -> PodSpec:
    """The pod of the Deployment that runs `service` (its container is named so)."""
    deployment = next(
        d
        for d in docs
        if d.get("kind") == "Deployment"
        and d["spec"]["template"]["spec"]["containers"][0]["name"] == service
    )
    pod = deployment["spec"]["template"]["spec"]
    container = pod["containers"][0]
    ports = {p["name"]: int(p["containerPort"]) for p in container.get("ports", [])}
    # Kubernetes' order: envFrom first, then env (a later entry wins).
    env: dict[str, str] = {}
    for source in container.get("envFrom", []):
        prefix = source.get("prefix", "")
        if "configMapRef" in source:
            values = _config_map(docs, source["configMapRef"]["name"])
        else:
            values = _secret(docs, source["secretRef"]["name"])
        env.update({prefix + k: v for k, v in values.items()})
    for item in container.get("env", []):
        if "value" in item:
            env[item["name"]] = str(item["value"])
            continue
        ref = item["valueFrom"]
        if "secretKeyRef" in ref:
            key = ref["secretKeyRef"]
            env[item["name"]] = _secret(docs, key["name"])[key["key"]]
        elif "configMapKeyRef" in ref:
            key = ref["configMapKeyRef"]
            env[item["name"]] = _config_map(docs, key["name"])[key["key"]]
        else:
            raise NotImplementedError(f"env {item['name']}: {sorted(ref)} is not translated")
    resources = container.get("resources", {})
    limits, requests = resources.get("limits", {}), resources.get("requests", {})
    pod_security = pod.get("securityContext", {})
    security = {**pod_security, **container.get("securityContext", {})}
    capabilities = security.get("capabilities", {})
    volumes = {v["name"]: v for v in pod.get("volumes", [])}
    empty_dirs = {
        mount["mountPath"]: volumes[mount["name"]]["emptyDir"] or {}
        for mount in container.get("volumeMounts", [])
        if "emptyDir" in volumes[mount["name"]]
    }
    if len(empty_dirs) != len(container.get("volumeMounts", [])):
        raise NotImplementedError("only emptyDir volumes are translated")
    groups = [*pod_security.get("supplementalGroups", [])]
    if "fsGroup" in pod_security:
        groups.append(pod_security["fsGroup"])  # the kubelet adds it to every container
    return PodSpec(
        deployment=deployment["metadata"]["name"],
        container=container["name"],
        image=container["image"],
        port=ports["http"],
        env=env,
        memory_limit=memory_bytes(limits["memory"]) if "memory" in limits else None,
        memory_request=memory_bytes(requests["memory"]) if "memory" in requests else None,
        cpu_limit_millis=cpu_millis(limits["cpu"]) if "cpu" in limits else None,
        cpu_request_millis=cpu_millis(requests["cpu"]) if "cpu" in requests else None,
        run_as_user=security.get("runAsUser"),
        run_as_group=security.get("runAsGroup"),
        supplemental_groups=tuple(int(g) for g in groups),
        read_only_root=bool(security.get("readOnlyRootFilesystem", False)),
        drop_capabilities=tuple(capabilities.get("drop", [])),
        add_capabilities=tuple(capabilities.get("add", [])),
        no_new_privileges=security.get("allowPrivilegeEscalation") is False,
        empty_dirs=empty_dirs,
        grace_seconds=int(pod.get("terminationGracePeriodSeconds", 30)),
        startup=Probe.from_spec(container["startupProbe"], ports)
        if "startupProbe" in container
        else None,
        liveness=Probe.from_spec(container["livenessProbe"], ports)
        if "livenessProbe" in container
        else None,
        readiness=Probe.from_spec(container["readinessProbe"], ports)
        if "readinessProbe" in container
        else None,
        restart_policy=pod.get("restartPolicy", "Always"),
    )


def run_env(spec: PodSpec) -> dict[str, str]:
    """What the container's environment is given: the rendered env, on the host network."""
    return {**spec.env, **HOST_NETWORK_ENV}


def docker_run_args(spec: PodSpec, name: str, env_file: Path) -> list[str]:
    """`docker run` arguments for `spec` (the env goes through a 0600 file, so secrets are
    never on a command line)."""
    restart = {"Always": "always", "OnFailure": "on-failure", "Never": "no"}[spec.restart_policy]
    args = [
        "run",
        "--detach",
        "--name",
        name,
        "--network",
        "host",
        "--restart",
        restart,
        "--env-file",
        str(env_file),
        "--stop-signal",
        "SIGTERM",
        "--stop-timeout",
        str(spec.grace_seconds),
        "--label",
        f"flokraft.deployment={spec.deployment}",
    ]
    if spec.memory_limit is not None:
        # No swap, as on a Kubernetes node: the limit is the memory limit.
        args += ["--memory", str(spec.memory_limit), "--memory-swap", str(spec.memory_limit)]
    if spec.memory_request is not None:
        args += ["--memory-reservation", str(spec.memory_request)]
    if spec.cpu_limit_millis is not None:
        args += ["--cpus", f"{spec.cpu_limit_millis / 1000:g}"]
    if spec.cpu_request_millis is not None:
        # The kubelet's mapping of a request to CFS shares.
        args += ["--cpu-shares", str(max(2, spec.cpu_request_millis * 1024 // 1000))]
    if spec.run_as_user is not None:
        user = str(spec.run_as_user)
        if spec.run_as_group is not None:
            user += f":{spec.run_as_group}"
        args += ["--user", user]
    for group in spec.supplemental_groups:
        args += ["--group-add", str(group)]
    if spec.read_only_root:
        args.append("--read-only")
    for capability in spec.drop_capabilities:
        args += ["--cap-drop", capability]
    for capability in spec.add_capabilities:
        args += ["--cap-add", capability]
    if spec.no_new_privileges:
        args += ["--security-opt", "no-new-privileges"]
    for path, empty_dir in spec.empty_dirs.items():
        if empty_dir.get("medium") == "Memory":
            size = empty_dir.get("sizeLimit")
            args += ["--tmpfs", f"{path}:size={memory_bytes(size)}" if size else path]
        else:
            # Disk-backed, like the kubelet's emptyDir: an anonymous volume, removed with
            # the container. (sizeLimit is enforced by kubelet eviction; docker has none.)
            args += ["--mount", f"type=volume,destination={path}"]
    return [*args, spec.image]


@dataclass
class ContainerEvent:
    action: str
    at: float
    attributes: dict[str, str]


@dataclass
class Pod:
    """One rendered pod running as a container, with a kubelet-like prober."""

    spec: PodSpec
    name: str
    events: list[ContainerEvent] = field(default_factory=list)
    liveness_restarts: int = 0
    ready: bool = False
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)
    _events_process: subprocess.Popen[str] | None = None
    _workdir: Path | None = None

    # -- life cycle -------------------------------------------------------------------
    def start(self) -> Pod:
        docker("rm", "--force", "--volumes", self.name, check=False)
        self._workdir = Path(tempfile.mkdtemp(prefix=f"{self.name}-"))
        env_file = self._workdir / "env"
        env_file.touch(mode=0o600)
        env_file.write_text("".join(f"{k}={v}\n" for k, v in run_env(self.spec).items()))
        self._watch_events()
        docker(*docker_run_args(self.spec, self.name, env_file))
        self._stop.clear()
        prober = threading.Thread(target=self._probe_forever, daemon=True, name=self.name)
        prober.start()
        self._threads.append(prober)
        return self

    def wait_ready(self, timeout: float = 60.0) -> float:
        """Seconds until the readiness probe passed (probed at its own period)."""
        started = time.monotonic()
        deadline = started + timeout
        while time.monotonic() < deadline:
            if self.ready:
                return time.monotonic() - started
            if not self.running() and self.restart_policy_gives_up():
                raise RuntimeError(f"{self.name} exited:\n{self.logs()}")
            time.sleep(0.05)
        raise TimeoutError(f"{self.name} not ready after {timeout} s:\n{self.logs()}")

    def stop(self, timeout: float | None = None) -> int:
        """SIGTERM to PID 1 (`docker stop`), SIGKILL after the rendered grace period; the
        container's exit code. A stop is final: the restart policy does not apply."""
        self._stop.set()
        grace = self.spec.grace_seconds if timeout is None else timeout
        docker("stop", "--time", str(int(grace)), self.name, timeout=grace + 60)
        return int(self.state()["ExitCode"])

    def remove(self) -> None:
        self._stop.set()
        docker("rm", "--force", "--volumes", self.name, check=False)
        if self._events_process is not None:
            self._events_process.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._events_process.wait(timeout=5)
        for thread in self._threads:
            thread.join(timeout=5)
        if self._workdir is not None:
            for path in self._workdir.iterdir():
                path.unlink()
            self._workdir.rmdir()

    # -- what a test looks at ---------------------------------------------------------
    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.spec.port}"

    def inspect(self) -> dict[str, Any]:
        return inspect(self.name)

    def state(self) -> dict[str, Any]:
        state: dict[str, Any] = self.inspect()["State"]
        return state

    def running(self) -> bool:
        return bool(self.state()["Running"])

    def restart_policy_gives_up(self) -> bool:
        return self.spec.restart_policy == "Never"

    def restart_count(self) -> int:
        """Restarts done by the engine (its restart policy), whatever killed PID 1."""
        return int(self.inspect()["RestartCount"])

    def pid(self) -> int:
        """PID 1 of the container, as the host sees it (0 while it is not running)."""
        return int(self.state()["Pid"])

    def signal_pid1(self, sig: int) -> int:
        """`sig` to PID 1 from outside the engine, as the kernel's OOM killer or a node's
        kubelet does (`docker kill` would count as a manual stop and defeat the restart
        policy)."""
        pid = self.pid()
        if not pid:
            raise RuntimeError(f"{self.name} is not running")
        os.kill(pid, sig)
        return pid

    def oom_events(self) -> int:
        return sum(1 for event in self.events if event.action == "oom")

    def deaths(self) -> list[ContainerEvent]:
        return [event for event in self.events if event.action == "die"]

    def logs(self, tail: int = 60) -> str:
        result = docker("logs", "--tail", str(tail), self.name, check=False)
        return result.stdout + result.stderr

    def exec(self, *command: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return docker("exec", self.name, *command, check=False, timeout=timeout)

    def cgroup_memory(self) -> dict[str, int]:
        """The container's memory cgroup as its own processes see it (v2 or v1): limit,
        usage and working set (usage less inactive file pages, what the OOM killer
        weighs), and the kernel's OOM-kill count where it keeps one."""
        script = (
            "import json,pathlib;r=pathlib.Path('/sys/fs/cgroup');"
            "v2=(r/'memory.max').exists();m=r if v2 else r/'memory';"
            "rd=lambda n:(m/n).read_text().strip();"
            "st=dict(l.split() for l in rd('memory.stat').splitlines());"
            "ev=dict(l.split() for l in rd('memory.events' if v2 else 'memory.oom_control')"
            ".splitlines());"
            "lim=rd('memory.max' if v2 else 'memory.limit_in_bytes');"
            "use=int(rd('memory.current' if v2 else 'memory.usage_in_bytes'));"
            "ina=int(st.get('inactive_file' if v2 else 'total_inactive_file',0));"
            "print(json.dumps({'limit':-1 if lim=='max' else int(lim),'usage':use,"
            "'working_set':max(0,use-ina),'oom_kill':int(ev.get('oom_kill',-1))}))"
        )
        result = self.exec("python3", "-c", script)
        if result.returncode != 0:
            raise RuntimeError(f"reading the cgroup failed: {result.stderr}")
        values: dict[str, int] = json.loads(result.stdout)
        return values

    # -- the kubelet's part -----------------------------------------------------------
    def _watch_events(self) -> None:
        self._events_process = subprocess.Popen(
            [
                docker_cli(),
                "events",
                "--filter",
                f"container={self.name}",
                "--format",
                "{{json .}}",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        process = self._events_process

        def read() -> None:
            assert process.stdout is not None
            for line in process.stdout:
                with contextlib.suppress(ValueError, KeyError):
                    raw = json.loads(line)
                    self.events.append(
                        ContainerEvent(
                            action=str(raw.get("Action") or raw.get("status")),
                            at=time.time(),
                            attributes={
                                str(k): str(v)
                                for k, v in raw.get("Actor", {}).get("Attributes", {}).items()
                            },
                        )
                    )

        thread = threading.Thread(target=read, daemon=True, name=f"{self.name}-events")
        thread.start()
        self._threads.append(thread)
        time.sleep(0.2)  # `docker events` subscribes before the container starts

    def _probe_forever(self) -> None:
        while not self._stop.is_set():
            pid = self._wait_for_pid()
            if pid is None:
                return
            self.ready = False
            if not self._startup_passed(pid):
                continue
            self._probe_running(pid)

    def _wait_for_pid(self) -> int | None:
        while not self._stop.is_set():
            with contextlib.suppress(RuntimeError):
                pid = self.pid()
                if pid and self._same_process(pid):
                    return pid
            self._stop.wait(0.2)
        return None

    @staticmethod
    def _same_process(pid: int) -> bool:
        """PID 1 of this run still exists (read from /proc: cheaper than asking docker at
        every probe tick; a pid is not reused within a test's time)."""
        return Path(f"/proc/{pid}").exists()

    def _startup_passed(self, pid: int) -> bool:
        probe = self.spec.startup
        if probe is None:
            return True
        self._stop.wait(probe.initial_delay)
        for _ in range(probe.failure_threshold):
            if self._stop.is_set() or not self._same_process(pid):
                return False
            if probe.check():
                return True
            self._stop.wait(probe.period)
        self._kill_for_liveness(pid)
        return False

    def _probe_running(self, pid: int) -> None:
        liveness, readiness = self.spec.liveness, self.spec.readiness
        next_live = time.monotonic() + (liveness.initial_delay if liveness else 0)
        next_ready = time.monotonic() + (readiness.initial_delay if readiness else 0)
        live_failures = ready_failures = 0
        if readiness is None:
            self.ready = True
        while not self._stop.is_set() and self._same_process(pid):
            now = time.monotonic()
            if readiness is not None and now >= next_ready:
                if readiness.check():
                    ready_failures = 0
                    self.ready = True
                else:
                    ready_failures += 1
                    if ready_failures >= readiness.failure_threshold:
                        self.ready = False
                next_ready = now + readiness.period
            if liveness is not None and now >= next_live:
                if liveness.check():
                    live_failures = 0
                else:
                    live_failures += 1
                    if live_failures >= liveness.failure_threshold:
                        self._kill_for_liveness(pid)
                        return
                next_live = now + liveness.period
            self._stop.wait(0.05)
        self.ready = False

    def _kill_for_liveness(self, pid: int) -> None:
        """What the kubelet does to a container that failed liveness: SIGTERM, SIGKILL
        after the grace period; the restart policy then restarts it."""
        self.ready = False
        self.liveness_restarts += 1
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + self.spec.grace_seconds
        while time.monotonic() < deadline and self._same_process(pid):
            time.sleep(0.1)
        with contextlib.suppress(ProcessLookupError):
            if self._same_process(pid):
                os.kill(pid, signal.SIGKILL)


@contextlib.contextmanager
def running_pod(spec: PodSpec, name: str, ready_timeout: float = 90.0) -> Iterator[Pod]:
    """A started, ready pod, removed afterwards (its logs are kept in the failure text)."""
    pod = Pod(spec=spec, name=name).start()
    try:
        pod.wait_ready(ready_timeout)
        yield pod
    finally:
        pod.remove()
