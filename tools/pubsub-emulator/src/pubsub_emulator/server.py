"""Building, running and stopping the gRPC server."""

from __future__ import annotations

import logging
import threading
from concurrent.futures import ThreadPoolExecutor

import grpc

from pubsub_emulator.servicers import PubSubServicer, build_handlers
from pubsub_emulator.state import Limits, Registry

_log = logging.getLogger("pubsub_emulator")

# Each StreamingPull holds a pool thread for its whole life; size the pool so that many
# concurrent subscribers cannot starve unary calls such as Publish and Acknowledge.
DEFAULT_WORKERS = 128


class EmulatorServer:
    def __init__(
        self,
        host: str,
        port: int,
        limits: Limits | None = None,
        max_workers: int = DEFAULT_WORKERS,
    ) -> None:
        self.registry = Registry(limits)
        self.servicer = PubSubServicer(self.registry)
        self._server = grpc.server(
            ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="grpc"),
            handlers=build_handlers(self.servicer),
            options=[
                # grpc enables SO_REUSEPORT by default, which would let a second emulator
                # silently share a port with a live one.  SO_REUSEADDR (always on) is
                # what makes an immediate restart on the same port work.
                ("grpc.so_reuseport", 0),
                ("grpc.max_receive_message_length", 20 * 1024 * 1024),
                ("grpc.max_send_message_length", 20 * 1024 * 1024),
            ],
        )
        address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        try:
            self.port = self._server.add_insecure_port(address)
        except RuntimeError as error:
            raise OSError(f"cannot listen on {address}: {error}") from error
        if self.port == 0:
            raise OSError(f"cannot listen on {address}")
        self.host = host

    def start(self) -> None:
        self._server.start()
        _log.info("listening on %s:%d", self.host, self.port)

    def stop(self, grace: float = 0.5) -> None:
        """Stop accepting, end open streams, and return once handlers have finished."""
        self.servicer.shutting_down.set()
        self.registry.wake_all()
        done: threading.Event = self._server.stop(grace)
        done.wait(grace + 1.0)
        self.registry.scheduler.stop()
