"""`make dev`: python -m flokraft_devstack [up]   (Ctrl-C stops everything)."""

from __future__ import annotations

import argparse
import os
import sys

from circus.circusd import main as circusd_main

from flokraft_devstack.processes import port_open
from flokraft_devstack.settings import StackSettings
from flokraft_devstack.stack import circus_config, shared_env


def _busy_ports(settings: StackSettings) -> list[str]:
    return [
        f"{name} ({port})"
        for name, port in settings.ports().items()
        if port_open(port, settings.host)
    ]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("command", nargs="?", default="up", choices=["up", "config"])
    args = parser.parse_args(argv)
    settings = StackSettings()
    # circusd runs in this very process (below), so its stdout is ours.
    config = circus_config(settings, report_to=f"/proc/{os.getpid()}/fd/1")
    settings.state_dir.mkdir(parents=True, exist_ok=True)
    path = settings.state_dir / "circus.ini"
    with path.open("w") as handle:
        config.write(handle)
    if args.command == "config":
        print(path.read_text())
        return
    busy = _busy_ports(settings)
    if busy:
        sys.exit(
            "ports already in use: " + ", ".join(busy) + " (another `make dev`? set DEV_*_PORT)"
        )
    # circus's hooks run inside circusd and need the same view of the emulators.
    os.environ.update(shared_env(settings))
    print(f"[devstack] starting {', '.join(settings.ports())} (config {path})", flush=True)
    sys.argv = ["circusd", str(path)]
    circusd_main()


if __name__ == "__main__":
    main()
