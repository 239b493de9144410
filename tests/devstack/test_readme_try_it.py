"""The README's "Try it", run as a newcomer would: `make dev`, `make seed n=1000`, a token
for user3, the list, a create, a rerun, a cancel and a delete, each line through bash as
the README writes it. Only what a second stack on this machine needs is changed: the ports
(free ones instead of 8001/8002/8080, given to `make dev` through its DEV_*_PORT settings
and to `make seed` through FIRESTORE_EMULATOR_HOST), the video's directory, and `<id>`
(the created analysis). The demo data must not lock user3 out (429 too_many_active)."""

from __future__ import annotations

import json
import os
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from flokraft_devstack.processes import wait_until
from flokraft_devstack.settings import REPO_ROOT
from tests.devstack.test_local_stack import Stack, _start_stack, _stop, _wait_until
from tests.support.uv import env_with_uv

README = REPO_ROOT / "README.md"


def try_it_lines() -> list[str]:
    text = README.read_text()
    section = text[text.index("## Try it") :]
    start = section.index("```bash\n") + len("```bash\n")
    block = section[start : section.index("```", start)]
    return [line.strip() for line in block.replace("\\\n", " ").splitlines() if line.strip()]


@pytest.fixture
def dev_stack(tmp_path: Path) -> Iterator[Stack]:
    # `make dev` is `flokraft_devstack up` after the install, which is done here.
    lines = try_it_lines()
    assert lines[0].startswith("make dev &"), lines[0]
    stack = _start_stack(tmp_path)
    try:
        for name in ("query-api", "rerun-api", "analyzer"):
            _wait_until(
                lambda name=name: _ready(stack.url(name, "/readyz")), 120, f"{name} ready", stack
            )
        yield stack
    finally:
        if stack.process.poll() is None:
            _stop(stack)


def _ready(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def test_the_readme_try_it_works_for_a_newcomer(dev_stack: Stack, tmp_path: Path) -> None:
    stack = dev_stack
    env = env_with_uv(
        {**os.environ, "FIRESTORE_EMULATOR_HOST": f"127.0.0.1:{stack.ports['firestore']}"}
    )
    env.pop("PUBSUB_EMULATOR_HOST", None)
    video_dir = tmp_path / "videos"
    video_dir.mkdir()

    def adapt(line: str, analysis_id: str | None) -> str:
        line = line.replace("localhost:8001", f"localhost:{stack.ports['query-api']}")
        line = line.replace("localhost:8002", f"localhost:{stack.ports['rerun-api']}")
        line = line.replace("/tmp/demo.mp4", f"{video_dir}/demo.mp4")
        if line.startswith("python3 -c"):  # "Run the python3 -c line with uv run."
            line = "uv run --frozen " + line
        if analysis_id is not None:
            line = line.replace("<id>", analysis_id)
        return line

    def run(line: str) -> str:
        done = subprocess.run(
            ["bash", "-o", "pipefail", "-c", line],
            cwd=REPO_ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert done.returncode == 0, f"{line}\n{done.stdout}\n{done.stderr}"
        return done.stdout

    analysis_id: str | None = None
    outputs: dict[str, str] = {}
    for line in try_it_lines()[1:]:
        command = adapt(line, analysis_id)
        if command.startswith("TOKEN=$("):
            inner = command[len("TOKEN=$(") : command.index(")")]
            env["TOKEN"] = run(inner).strip()
            continue
        if "/rerun" in command:
            # "poll GET /analyses/{id} until done", as the create's comment says.
            assert analysis_id is not None
            _wait_done(stack, env, analysis_id)
        out = run(command)
        if command.startswith("make seed"):
            assert "seeded 1000 analyses" in out
        elif "X POST" in command and _code(command).endswith("/analyses"):
            created = json.loads(out)
            assert created.get("status") == "queued", out  # a 201, not 429 too_many_active
            analysis_id = created["id"]
        outputs[line] = out

    by_kind = {
        kind: next(out for line, out in outputs.items() if key(line))
        for kind, key in CHECKS.items()
    }
    assert len(json.loads(by_kind["list"])) == 5
    assert re.search(r"(?im)^etag: ", by_kind["headers"])
    assert json.loads(by_kind["rerun"])["generation"] == 2
    cancelled = json.loads(by_kind["cancel"])
    # The rerun may already have finished on a fast machine: then 409 with its status.
    assert cancelled.get("status") == "cancelled" or cancelled["error"]["status"] == "done"
    assert by_kind["delete"].strip() == "204"
    gone = httpx.get(
        f"http://127.0.0.1:{stack.ports['query-api']}/analyses/{analysis_id}",
        headers={"Authorization": f"Bearer {env['TOKEN']}"},
        timeout=10,
    )
    assert gone.status_code == 404
    # The video stays where it was uploaded.
    assert (video_dir / "demo.mp4").exists()


def _code(line: str) -> str:
    """The command without its trailing comment."""
    return line.split(" #", 1)[0].strip()


CHECKS = {
    "list": lambda line: "curl -s -H" in line and "analyses?limit=5" in line,
    "headers": lambda line: "curl -si" in line,
    "rerun": lambda line: _code(line).endswith("/rerun"),
    "cancel": lambda line: _code(line).endswith("/cancel"),
    "delete": lambda line: "-X DELETE" in line,
}


def _wait_done(stack: Stack, env: dict[str, str], analysis_id: str) -> None:
    done = wait_until(lambda: _status(stack, env, analysis_id) == "done", 240)
    assert done, stack.text()[-4000:]


def _status(stack: Stack, env: dict[str, str], analysis_id: str) -> str | None:
    response = httpx.get(
        f"http://127.0.0.1:{stack.ports['query-api']}/analyses/{analysis_id}",
        headers={"Authorization": f"Bearer {env['TOKEN']}"},
        timeout=10,
    )
    if response.status_code != 200:
        return None
    status = response.json().get("status")
    if status == "failed":
        pytest.fail(f"the analysis failed: {response.text}\n{stack.text()[-4000:]}")
    return str(status)
