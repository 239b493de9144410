"""`make dev-observability`: Debian's Prometheus beside the stack, scraping every service
with the chart's alert rules loaded (DEV_PROMETHEUS=true; the graph UI and API on
localhost:DEV_PROMETHEUS_PORT, 9090 by default)."""

from __future__ import annotations

import shlex
import shutil

from flokraft_devstack.settings import Process, StackSettings
from flokraft_observability.local import Target, command, write_config

SERVICES = ("query-api", "rerun-api", "analyzer")


def prometheus_process(s: StackSettings) -> Process:
    binary = shutil.which("prometheus")
    if binary is None:
        raise SystemExit("prometheus is not installed: apt-get install prometheus")
    ports = s.ports()
    targets = [Target(name, f"{s.host}:{ports[name]}") for name in SERVICES]
    directory = s.state_dir / "prometheus"
    config = write_config(directory, targets)
    argv = command(binary, config, directory / "data", f"{s.host}:{s.prometheus_port}")
    # After the services (lower priority starts later); its own log is noisy at info.
    return Process("prometheus", shlex.join([*argv, "--log.level=warn"]), "red", priority=5)
