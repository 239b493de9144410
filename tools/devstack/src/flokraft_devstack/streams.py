"""A circus output stream that prefixes every line with the process's name."""

from __future__ import annotations

import sys
from typing import Any

from circus.stream import StdoutStream

_COLORS = {"red": 31, "green": 32, "yellow": 33, "blue": 34, "magenta": 35, "cyan": 36}


class PrefixedStream(StdoutStream):  # type: ignore[misc]
    """`stdout_stream.prefix = query-api` in the watcher section sets the name."""

    def __init__(self, prefix: str = "", color: str = "", width: int = 17, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        label = prefix.ljust(width)
        code = _COLORS.get(color)
        self._prefix = (
            f"\033[{code}m{label}\033[0m | " if code and sys.stdout.isatty() else f"{label} | "
        )

    def __call__(self, data: dict[str, Any]) -> None:
        text = data["data"]
        if isinstance(text, bytes):
            text = text.decode("utf-8", errors="replace")
        for line in text.splitlines():
            if line:
                sys.stdout.write(self._prefix + line + "\n")
        sys.stdout.flush()
