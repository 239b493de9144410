"""The local stack's definition: which processes, on which ports, with which settings.

It is rendered into a circus configuration, so the process manager (restarts with
back-off, Ctrl-C stopping every process tree, per-process log prefixes) is circus's, and
the memory limit is the one plugin of ours.
"""

from __future__ import annotations

import configparser
import secrets
import shlex
import sys
import tempfile

from circus.util import human2bytes

from flokraft_core.logs import use_console
from flokraft_devstack.components import firestore_command, pubsub_command
from flokraft_devstack.prometheus import prometheus_process
from flokraft_devstack.settings import REPO_ROOT, Process, StackSettings


def shared_env(s: StackSettings) -> dict[str, str]:
    return {
        "GOOGLE_CLOUD_PROJECT": s.project,
        "FIRESTORE_EMULATOR_HOST": f"{s.host}:{s.firestore_port}",
        "PUBSUB_EMULATOR_HOST": f"{s.host}:{s.pubsub_port}",
        "AUTH_JWKS_URL": f"http://{s.host}:{s.devauth_port}/.well-known/jwks.json",
        "AUTH_ISSUER": "flokraft-dev",
        "AUTH_AUDIENCE": s.project,
        "DEVAUTH_KEY_FILE": str(REPO_ROOT / ".local" / "devauth" / "signing-key.pem"),
        "LOG_FORMAT": "console" if use_console(s.log_format, sys.stdout) else "json",
        "PYTHONUNBUFFERED": "1",
        # A frontend dev server on any local port may call the APIs (CORS).
        "CORS_ALLOW_ORIGIN_REGEX": r"http://(localhost|127\.0\.0\.1)(:[0-9]{1,5})?",
    }


def processes(s: StackSettings) -> list[Process]:
    py = sys.executable
    tmp = tempfile.gettempdir()
    return [
        Process(
            "firestore",
            shlex.join(firestore_command(s.firestore_port)),
            "yellow",
            priority=30,
        ),
        Process(
            "pubsub",
            shlex.join(pubsub_command(s.pubsub_port, s.host)),
            "magenta",
            priority=30,
            options={"hooks.after_spawn": "flokraft_devstack.hooks.apply_pubsub_topology"},
        ),
        Process(
            "devauth",
            f"{py} -m flokraft_core.dev.devauth serve --host {s.host} --port {s.devauth_port}",
            "white",
            priority=30,
        ),
        Process(
            "query-api",
            f"{py} -m query_api.main",
            "green",
            priority=10,
            # Generated per `make dev`: page tokens only need to outlive one session. The
            # event stream's live demo page (/demo/events) is for the local profile only.
            env={
                "HOST": s.host,
                "PORT": str(s.query_api_port),
                "PAGE_TOKEN_SECRET": secrets.token_urlsafe(32),
                "EVENTS_DEMO_PAGE": "true",
            },
        ),
        Process(
            "rerun-api",
            f"{py} -m rerun_api.main",
            "blue",
            priority=10,
            env={
                "HOST": s.host,
                "PORT": str(s.rerun_api_port),
                "ALLOW_FILE_URLS": "true",
                "ALLOWED_FILE_ROOTS": f'["{tmp}"]',
            },
        ),
        Process(
            "analyzer",
            f"{py} -m analyzer.main",
            "cyan",
            priority=10,
            env={
                "HOST": s.host,
                "PORT": str(s.analyzer_port),
                "ALLOW_FILE_URLS": "true",
                "ALLOWED_FILE_ROOTS": f'["{tmp}"]',
                # The tree limit the circus plugin enforces, exported as the analyzer's limit.
                "MEMORY_LIMIT_BYTES": str(int(human2bytes(s.analyzer_memory_limit))),
            },
            # Longer than the analyzer's own shutdown grace, so a running job can finish.
            options={"graceful_timeout": "75"},
        ),
        *([prometheus_process(s)] if s.prometheus else []),
    ]


def circus_config(s: StackSettings, report_to: str | None = None) -> configparser.ConfigParser:
    state = s.state_dir
    config = configparser.ConfigParser(interpolation=None)
    config["circus"] = {
        "endpoint": f"ipc://{state / 'endpoint.sock'}",
        "pubsub_endpoint": f"ipc://{state / 'pubsub.sock'}",
        "stats_endpoint": f"ipc://{state / 'stats.sock'}",
        "statsd": "false",
        "check_delay": "5",
        "warmup_delay": "0",
        "loglevel": "info",
    }
    base_env = shared_env(s)
    for proc in processes(s):
        section = {
            "cmd": proc.cmd,
            "working_dir": str(REPO_ROOT),
            "copy_env": "true",
            "numprocesses": "1",
            "respawn": "true",
            "stop_children": "true",
            "graceful_timeout": "10",
            "priority": str(proc.priority),
            "stdout_stream.class": "flokraft_devstack.streams.PrefixedStream",
            "stdout_stream.prefix": proc.name,
            "stdout_stream.color": proc.color,
            "stderr_stream.class": "flokraft_devstack.streams.PrefixedStream",
            "stderr_stream.prefix": proc.name,
            "stderr_stream.color": proc.color,
        }
        section.update(proc.options)
        config[f"watcher:{proc.name}"] = section
        config[f"env:{proc.name}"] = {**base_env, **proc.env}
    # A process that keeps dying is restarted after a pause instead of in a tight loop.
    config["plugin:flapping"] = {
        "use": "circus.plugins.flapping.Flapping",
        "attempts": "3",
        "window": "30",
        "retry_in": "5",
        "max_retry": "-1",
    }
    config["plugin:analyzer-memory"] = {
        "use": "flokraft_devstack.memory_limit.TreeMemoryLimit",
        "watcher": "analyzer",
        "max_mem": s.analyzer_memory_limit,
        "interval": "0.25",
        **({"report_to": report_to} if report_to else {}),
    }
    return config
