"""Starting and stopping the real processes the tests talk to (emulators, services).

The harness (ManagedProcess: start, wait for a port, stop a process tree, its log) and the
components' definitions live in flokraft_devstack, shared with the benchmarks and
`make dev`; the tests import them here, beside what only the tests need.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping
from pathlib import Path

from flokraft_devstack.components import (
    LOG_DIR,
    firestore_emulator,
    pubsub_emulator,
    service,
    storage_emulator,
)
from flokraft_devstack.processes import ManagedProcess, free_port
from flokraft_devstack.settings import REPO_ROOT

__all__ = [
    "LOG_DIR",
    "REPO_ROOT",
    "ManagedProcess",
    "env_with_uv",
    "firestore_emulator",
    "free_port",
    "pubsub_emulator",
    "service",
    "storage_emulator",
]


def env_with_uv(env: Mapping[str, str]) -> dict[str, str]:
    """`env` with the uv that runs the tests first on PATH, for commands typed as `uv ...`.

    `uv run` names itself in UV; make installs uv into ~/.local/bin when missing, which a
    fresh machine's PATH may not include, so a bare `uv` in a subprocess would not be found.
    """
    uv = env.get("UV") or shutil.which("uv") or str(Path.home() / ".local" / "bin" / "uv")
    return {**env, "PATH": os.pathsep.join([str(Path(uv).parent), env.get("PATH", "")])}
