"""FastAPI dependencies for what a service's lifespan built once and keeps on app.state.

Routes never read app.state themselves: a service's dependencies module names each
object once, e.g. `Reads = Annotated[AnalysisReads, Depends(from_app_state("reads",
AnalysisReads))]`, and routes take `reads: Reads`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

from fastapi import Request

T = TypeVar("T")


def from_app_state(name: str, kind: type[T]) -> Callable[[Request], Awaitable[T]]:
    # A coroutine, so that FastAPI calls it on the event loop instead of handing it to
    # its thread pool (a thread hop per dependency per request).
    async def get(request: Request) -> T:
        value = getattr(request.app.state, name)
        if not isinstance(value, kind):
            raise TypeError(f"app.state.{name} is {type(value).__name__}, not {kind.__name__}")
        return value

    get.__name__ = f"get_{name}"
    return get
