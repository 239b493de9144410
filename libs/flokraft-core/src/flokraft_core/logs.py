"""Logging for every service (structlog), with the request or trace id bound per request
through contextvars. Standard-library loggers (uvicorn, google clients) are routed through
the same renderer, so every line of a service has one format: a JSON object in containers
(what log collectors parse), structlog's console rendering for a person at a terminal.

A JSON line carries structlog's `event` and `level` (what our tests and local tools read)
and the same in the names Cloud Logging reads from a container's JSON line: `severity`
(DEBUG, INFO, WARNING, ERROR, CRITICAL) and `message` (the summary shown in the log
viewer; with a traceback appended when the line has one, so Error Reporting sees it).
Without them every line shows as DEFAULT with no summary, and severity filters and
log-based alerts match nothing."""

from __future__ import annotations

import logging
import sys
from typing import Any, Literal, TextIO

import structlog

LogFormat = Literal["auto", "json", "console"]
# What `get_logger(...).bind(...)` gives (the wrapper class `configure` sets), for code
# that keeps a bound logger in a typed value.
BoundLog = structlog.stdlib.BoundLogger


def use_console(log_format: LogFormat, stream: TextIO) -> bool:
    """auto means: a terminal is read by a person, anything else (a pipe, a container's
    log file) by a machine."""
    if log_format == "auto":
        return stream.isatty()
    return log_format == "console"


def configure_logging(service: str, level: str = "INFO", *, log_format: LogFormat = "auto") -> None:
    timestamper = structlog.processors.TimeStamper(fmt="iso", utc=True)
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        timestamper,
        structlog.processors.StackInfoRenderer(),
        structlog.processors.format_exc_info,
    ]
    console = use_console(log_format, sys.stdout)
    renderers: list[Any] = (
        [structlog.dev.ConsoleRenderer(colors=sys.stdout.isatty())]
        if console
        else [cloud_logging_fields, structlog.processors.JSONRenderer()]
    )
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            _add_service(service),
            *renderers,
        ],
    )
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # uvicorn's own access log is replaced by ours (with request id and user).
    logging.getLogger("uvicorn.access").disabled = True
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True


# structlog's level names (and the stdlib's, lower-cased) -> Cloud Logging's LogSeverity.
_SEVERITY = {
    "debug": "DEBUG",
    "info": "INFO",
    "warning": "WARNING",
    "warn": "WARNING",
    "error": "ERROR",
    "exception": "ERROR",
    "critical": "CRITICAL",
    "fatal": "CRITICAL",
}


def cloud_logging_fields(_: Any, method_name: str, event: dict[str, Any]) -> dict[str, Any]:
    """Adds `severity` and `message` (Cloud Logging's special JSON fields) beside `level`
    and `event`, which stay as they are."""
    level = str(event.get("level", method_name)).lower()
    event["severity"] = _SEVERITY.get(level, "DEFAULT")
    if "message" not in event:
        summary = str(event.get("event", ""))
        trace = event.get("exception")
        event["message"] = f"{summary}\n{trace}" if trace else summary
    return event


def _add_service(service: str) -> Any:
    def processor(_: Any, __: str, event: dict[str, Any]) -> dict[str, Any]:
        event.setdefault("service", service)
        return event

    return processor


def get_logger(name: str) -> Any:
    return structlog.stdlib.get_logger(name)
