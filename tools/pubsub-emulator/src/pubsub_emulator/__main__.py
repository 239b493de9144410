"""Command line: ``python -m pubsub_emulator [--host H] [--port P] ...``."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
from collections.abc import Sequence
from types import FrameType

from pubsub_emulator.server import DEFAULT_WORKERS, EmulatorServer
from pubsub_emulator.state import Limits

_log = logging.getLogger("pubsub_emulator")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    defaults = Limits()
    parser = argparse.ArgumentParser(
        prog="pubsub-emulator",
        description="Local google.pubsub.v1 emulator (in-memory, gRPC, insecure).",
    )
    parser.add_argument("--host", default="localhost", help="address to bind (default localhost)")
    parser.add_argument("--port", type=int, default=8085, help="port (default 8085; 0 = any)")
    parser.add_argument(
        "--max-backlog-messages",
        type=int,
        default=defaults.max_backlog_messages,
        help="per-subscription unacked message cap; Publish fails beyond it",
    )
    parser.add_argument(
        "--max-backlog-bytes",
        type=int,
        default=defaults.max_backlog_bytes,
        help="per-subscription unacked byte cap; Publish fails beyond it",
    )
    parser.add_argument("--workers", type=int, default=DEFAULT_WORKERS, help=argparse.SUPPRESS)
    parser.add_argument("--verbose", "-v", action="store_true", help="log message flow")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    if args.verbose:
        logging.getLogger("pubsub_emulator").setLevel(logging.DEBUG)
    limits = Limits(args.max_backlog_messages, args.max_backlog_bytes)
    try:
        server = EmulatorServer(args.host, args.port, limits, args.workers)
    except OSError as error:
        _log.error("%s", error)
        return 1

    stop_requested = threading.Event()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        stop_requested.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    server.start()
    # The ready line is for humans and scripts; tests poll the port instead.
    print(f"pubsub-emulator ready on {args.host}:{server.port}", flush=True)
    while not stop_requested.wait(0.5):
        pass
    _log.info("shutting down")
    # A handler stuck in user-visible I/O must not keep the process alive past ~2 s.
    watchdog = threading.Timer(2.5, lambda: os._exit(0))
    watchdog.daemon = True
    watchdog.start()
    server.stop()
    logging.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
