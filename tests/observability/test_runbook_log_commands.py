"""The log commands of docs/runbooks.md find what the services actually print: each
`kubectl logs … | grep …` there is run, with the grep as written, over lines printed by
the services' own logging (flokraft_core.logs, JSON as in a container) for an unhandled
error, a 503's dependency error, a dependency going down and up, and ordinary info lines.
A grep for a field the lines do not carry (such as `"level": "error"` before `severity`
was there, or with other spacing) finds nothing and fails here."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

from flokraft_devstack.settings import REPO_ROOT

RUNBOOKS = REPO_ROOT / "docs" / "runbooks.md"
# `kubectl logs deploy/flokraft-<container> | grep <pattern>` inside backticks.
COMMAND = re.compile(r"`kubectl logs deploy/flokraft-<container> \| (grep [^`]+)`")

EMIT = """
import logging
from flokraft_core.logs import configure_logging, get_logger
configure_logging("rerun-api", log_format="json")
log = get_logger("runbook")
log.info("analysis_created", analysis_id="a1", request_id="r1")
log.warning("dependency_down", dependency="firestore", error="DeadlineExceeded")
log.warning("dependency_unavailable", error="ServiceUnavailable", request_id="r2")
try:
    raise RuntimeError("boom")
except RuntimeError:
    log.exception("unhandled_error", error="RuntimeError", request_id="r3")
log.critical("worker_lost", request_id="r4")
log.info("dependency_up", dependency="firestore", down_seconds=12.0)
logging.getLogger("uvicorn.error").error("from a library")
"""


def printed_lines(tmp_path: Path) -> Path:
    out = subprocess.run(
        [sys.executable, "-c", EMIT], capture_output=True, text=True, check=True, timeout=60
    ).stdout
    path = tmp_path / "service.log"
    path.write_text(out)
    return path


def grep(command: str, log: Path) -> list[dict[str, Any]]:
    # The command as the runbook writes it, over the printed lines instead of kubectl's.
    result = subprocess.run(
        f"cat {log} | {command}", shell=True, capture_output=True, text=True, timeout=30
    )
    assert result.returncode in (0, 1), result.stderr
    return [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]


def test_every_log_grep_of_the_runbooks_finds_what_it_looks_for(tmp_path: Path) -> None:
    commands = COMMAND.findall(RUNBOOKS.read_text())
    assert len(commands) >= 3, commands
    log = printed_lines(tmp_path)
    for command in commands:
        found = grep(command, log)
        assert found, f"{command!r} finds nothing in what the services print"
        event = re.search(r'"event": "(\w+)"', command)
        if event:
            assert {line["event"] for line in found} == {event.group(1)}, command
        elif "severity" in command:
            # Every error and critical line, the library's too, and nothing below.
            assert {line["event"] for line in found} == {
                "unhandled_error",
                "worker_lost",
                "from a library",
            }, command
            assert "RuntimeError: boom" in next(
                line["message"] for line in found if line["event"] == "unhandled_error"
            )
        else:
            prefix = command.split()[-1].strip("'\"")
            assert all(line["event"].startswith(prefix) for line in found), command
