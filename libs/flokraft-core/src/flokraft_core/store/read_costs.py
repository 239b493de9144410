"""What the database costs: Firestore documents read, by service and route.

Firestore bills per document read, and a query that returns nothing still bills one, so
that is how reads are counted here (`count_query`). The route is the FastAPI route
template of the request being served (bound by `bind_route`), or the name of the
background loop doing the read (`listener`, `outbox`, `worker`, ...), so the dashboard
can show reads per poll without unbounded label values.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Final

from prometheus_client import Counter

DOCUMENTS_READ: Final = Counter(
    "firestore_documents_read_total",
    "Firestore documents read (as billed: a query returning nothing counts one).",
    ["service", "route"],
)

_service = "flokraft"
_route: ContextVar[str] = ContextVar("firestore_read_route", default="other")


def set_service(name: str) -> None:
    """Called once at start-up: the process's service label."""
    global _service  # one process, one service name
    _service = name


def bind_route(route: str) -> None:
    """Labels the reads of the current request (or task) with `route`."""
    _route.set(route)


@contextmanager
def reads_labelled(route: str) -> Iterator[None]:
    """For background loops: their reads count under `route` while the block runs."""
    token = _route.set(route)
    try:
        yield
    finally:
        _route.reset(token)


def count_reads(documents: int) -> None:
    DOCUMENTS_READ.labels(_service, _route.get()).inc(documents)


def count_query(documents_returned: int) -> None:
    count_reads(max(1, documents_returned))
