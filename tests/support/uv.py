"""Running the commands a newcomer types (`uv ...`) from a test."""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping
from pathlib import Path


def env_with_uv(env: Mapping[str, str]) -> dict[str, str]:
    """`env` with the uv that runs the tests first on PATH, for commands typed as `uv ...`.

    `uv run` names itself in UV; make installs uv into ~/.local/bin when missing, which a
    fresh machine's PATH may not include, so a bare `uv` in a subprocess would not be found.
    """
    uv = env.get("UV") or shutil.which("uv") or str(Path.home() / ".local" / "bin" / "uv")
    return {**env, "PATH": os.pathsep.join([str(Path(uv).parent), env.get("PATH", "")])}
