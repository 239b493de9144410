"""A circus plugin that gives a watcher a Kubernetes-style memory limit.

A pod's limit covers every process in its cgroup, so the analyzer's worker and the child
processes that run analyses count together. circus's own ResourceWatcher checks each
process separately, which would miss exactly the case that matters here. When the sum of
RSS over the watcher's process trees passes the limit, every process of the tree gets
SIGKILL (what the OOM killer does) and circus respawns the watcher.
"""

from __future__ import annotations

import os
import signal
from typing import Any

import psutil
from circus.plugins import CircusPlugin
from circus.util import human2bytes
from tornado.ioloop import PeriodicCallback


class TreeMemoryLimit(CircusPlugin):  # type: ignore[misc]
    name = "tree_memory_limit"

    def __init__(self, *args: Any, **config: Any) -> None:
        super().__init__(*args, **config)
        self.watcher: str = config["watcher"]
        self.limit_bytes: int = int(human2bytes(str(config["max_mem"])))
        self.interval_ms = int(float(config.get("interval", 0.25)) * 1000)
        # circus runs plugins as their own processes with their output discarded (unless
        # circusd is in debug mode), so the launcher names a file to report to: circusd's
        # own stdout, where every other line of the stack goes.
        self.report_to: str | None = config.get("report_to")
        self._periodic: PeriodicCallback | None = None

    def handle_init(self) -> None:
        self._periodic = PeriodicCallback(self.check, self.interval_ms)
        self._periodic.start()

    def handle_stop(self) -> None:
        if self._periodic is not None:
            self._periodic.stop()

    def handle_recv(self, data: Any) -> None:
        return  # driven by the timer, not by circus events

    def report(self, line: str) -> None:
        if self.report_to is None:
            return
        try:
            with open(self.report_to, "a") as out:
                out.write(line + "\n")
        except OSError:
            return  # the terminal went away: nothing to tell

    def check(self) -> None:
        answer = self.call("list", name=self.watcher)
        pids = [int(p) for p in answer.get("pids", [])]
        tree: list[psutil.Process] = []
        for pid in pids:
            try:
                parent = psutil.Process(pid)
                tree.append(parent)
                tree.extend(parent.children(recursive=True))
            except psutil.NoSuchProcess:
                continue
        total = 0
        for proc in tree:
            try:
                total += proc.memory_info().rss
            except psutil.NoSuchProcess:
                continue
        if total <= self.limit_bytes:
            return
        self.report(
            f"[devstack] {self.watcher}: {total / 2**20:.0f} MiB > limit "
            f"{self.limit_bytes / 2**20:.0f} MiB: killing it like the OOM killer would"
        )
        for proc in tree:
            try:
                os.kill(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                continue
