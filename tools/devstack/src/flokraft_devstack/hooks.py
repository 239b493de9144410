"""circus hooks. The Pub/Sub emulator keeps nothing across restarts, so every time it is
spawned the topology from the shared definition is applied again (in the background, so
circus's event loop never waits on it)."""

from __future__ import annotations

import os
import threading
from typing import Any

from flokraft_core.messaging.topology import apply_topology, load_topology
from flokraft_devstack.processes import port_open, wait_until


def _apply_when_ready(host: str, port: int, project: str) -> None:
    if not wait_until(lambda: port_open(port, host), 30, 0.1):
        print(f"[devstack] pubsub emulator not listening on {port}: topology not applied")
        return
    try:
        created = apply_topology(project, load_topology())
    except Exception as exc:  # a failed setup must not take circus down
        print(f"[devstack] applying the pubsub topology failed: {exc}", flush=True)
        return
    print(f"[devstack] pubsub topology applied ({len(created)} created)", flush=True)


def apply_pubsub_topology(watcher: Any, arbiter: Any, hook_name: str, **kwargs: Any) -> bool:
    host, _, port = os.environ["PUBSUB_EMULATOR_HOST"].rpartition(":")
    project = os.environ.get("GOOGLE_CLOUD_PROJECT", "demo-flokraft")
    threading.Thread(
        target=_apply_when_ready, args=(host or "127.0.0.1", int(port), project), daemon=True
    ).start()
    return True
