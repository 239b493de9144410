"""`make dev-containers`: the chart's three pods in the local Docker engine, rendered by
`helm template` (the default pods with tests/containers/values-local.yaml), with the
emulators and dev-auth as host processes. Ports 18001-18003, clear of `make dev`'s.
Ctrl-C stops each pod with SIGTERM (its grace period) and the host processes.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading

from flokraft_core.messaging.topology import apply_topology, load_topology
from flokraft_devstack.components import firestore_emulator, pubsub_emulator, storage_emulator
from flokraft_devstack.issuer import running_issuer
from flokraft_devstack.settings import REPO_ROOT
from tests.containers.engine import ensure_engine, ensure_images
from tests.containers.stack import DEV_PORTS, host_side, running_stack

PROJECT = "demo-flokraft"
BUCKET = "flokraft-videos"
AUDIENCE = "flokraft-local"


def main() -> None:
    ensure_engine()
    print(ensure_images())
    hosts = [firestore_emulator(), pubsub_emulator(), storage_emulator()]
    with contextlib.ExitStack() as stack:
        for process in hosts:
            process.start(timeout=120)
            stack.callback(process.stop)
        firestore, pubsub, videos = hosts
        os.environ["FIRESTORE_EMULATOR_HOST"] = firestore.host
        os.environ["PUBSUB_EMULATOR_HOST"] = pubsub.host
        apply_topology(PROJECT, load_topology())
        key_dir = REPO_ROOT / ".local" / "dev-containers"
        key_dir.mkdir(parents=True, exist_ok=True)
        issuer = stack.enter_context(running_issuer(key_dir, audience=AUDIENCE))
        addresses = host_side(
            PROJECT,
            BUCKET,
            firestore=firestore,
            pubsub=pubsub,
            storage_emulator=videos,
            issuer=issuer,
        )
        pods = stack.enter_context(running_stack(addresses, DEV_PORTS, name_prefix="flokraft-dev"))
        print("\nThe chart's pods, running in the engine (docker ps --filter name=flokraft-dev):")
        for service, pod in pods.pods.items():
            print(f"  {service:<10} {pod.url}  limit {pod.spec.memory_limit // 2**20} MiB")
        print(f"  Firestore emulator {firestore.host}, Pub/Sub emulator {pubsub.host}, ")
        print(f"  Cloud Storage emulator {videos.url} (bucket {BUCKET}), JWKS {issuer.jwks_url}")
        print(f"\nA token for alice:\n  {issuer.token('alice')}\n")
        print(f"  curl -H 'Authorization: Bearer <token>' {pods.url('query-api')}/analyses")
        print("\nCtrl-C stops the pods (SIGTERM, their grace periods) and the emulators.")
        done = threading.Event()
        signal.signal(signal.SIGINT, lambda *_: done.set())
        signal.signal(signal.SIGTERM, lambda *_: done.set())
        done.wait()
        for service, pod in pods.pods.items():
            print(f"stopping {service}: exit code {pod.stop()}")


if __name__ == "__main__":
    main()
