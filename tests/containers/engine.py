"""The Docker engine the container tests and `make dev-containers` use: found or started
(scripts/container-engine.sh), and the three images built (scripts/build-images.sh).

Docker, not `podman kube play`: the proof needs the engine to restart a container whose
PID 1 died (docker's restart policy does; podman 4.3 has no back-off and its liveness
checks need systemd timers, absent on these machines), to report the kernel's OOM kill
(`docker events` "oom", State.OOMKilled) and to change a running container's limit
(`docker update`). The pod spec itself is translated from `helm template`'s output
(tests/containers/pods.py), never written by hand.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]
SERVICES = ("query-api", "rerun-api", "analyzer")
IMAGE_TAG = "local"


class EngineUnavailable(RuntimeError):
    """No Docker engine answers and none could be started here."""


def docker_cli() -> str:
    """Debian's client (the daemon's own version, BuildKit built in) when present."""
    if Path("/usr/bin/docker").exists():
        return "/usr/bin/docker"
    return shutil.which("docker") or "docker"


def docker(
    *args: str, check: bool = True, timeout: float = 120, input: str | None = None
) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [docker_cli(), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        input=input,
        check=False,
    )
    if check and result.returncode != 0:
        raise RuntimeError(
            f"docker {' '.join(args)} exited {result.returncode}: {result.stderr.strip()}"
        )
    return result


def inspect(name: str) -> dict[str, Any]:
    data: list[dict[str, Any]] = json.loads(docker("inspect", name).stdout)
    return data[0]


def ensure_engine() -> None:
    """A running engine, or EngineUnavailable saying why (the script's own words)."""
    script = REPO_ROOT / "scripts" / "container-engine.sh"
    result = subprocess.run(
        ["bash", str(script)], capture_output=True, text=True, timeout=600, check=False
    )
    if result.returncode != 0:
        raise EngineUnavailable((result.stdout + result.stderr).strip()[-2000:])


def image(service: str) -> str:
    return f"flokraft-{service}:{IMAGE_TAG}"


def ensure_images() -> str:
    """Builds the three images (a warm build of unchanged sources takes seconds), so what
    runs is always this checkout. FLOKRAFT_SKIP_IMAGE_BUILD=1 keeps existing images."""
    if os.environ.get("FLOKRAFT_SKIP_IMAGE_BUILD") == "1" and all(
        docker("image", "inspect", image(s), check=False).returncode == 0 for s in SERVICES
    ):
        return "kept the existing images (FLOKRAFT_SKIP_IMAGE_BUILD=1)"
    result = subprocess.run(
        ["bash", str(REPO_ROOT / "scripts" / "build-images.sh")],
        capture_output=True,
        text=True,
        timeout=1800,
        check=False,
        cwd=REPO_ROOT,
    )
    if result.returncode != 0:
        raise RuntimeError(f"make images failed:\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}")
    return result.stdout
