"""/healthz and /readyz.

Liveness checks only the process itself (a service may add a heartbeat check of its own
loop); readiness checks the real dependencies, each within a time budget, so an outage of
Firestore makes pods unready and never gets them restarted."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse

ReadinessCheck = Callable[[FastAPI], Awaitable[None]]
LivenessCheck = Callable[[FastAPI], str | None]  # returns why the process is not alive


def health_router(
    readiness: Mapping[str, ReadinessCheck],
    timeout_seconds: float,
    liveness: LivenessCheck | None = None,
) -> APIRouter:
    router = APIRouter(include_in_schema=False)

    @router.get("/healthz")
    async def healthz(request: Request) -> JSONResponse:
        problem = liveness(request.app) if liveness else None
        if problem:
            return JSONResponse({"status": "dead", "reason": problem}, status_code=503)
        return JSONResponse({"status": "alive"})

    @router.get("/readyz")
    async def readyz(request: Request) -> JSONResponse:
        async def run(name: str, check: ReadinessCheck) -> tuple[str, str]:
            try:
                await asyncio.wait_for(check(request.app), timeout=timeout_seconds)
            except TimeoutError:
                return name, f"timed out after {timeout_seconds} s"
            except Exception as exc:  # any failure of a dependency is "not ready"
                return name, f"{type(exc).__name__}: {str(exc)[:200]}"
            return name, "ok"

        results = dict(await asyncio.gather(*(run(n, c) for n, c in readiness.items())))
        ready = all(v == "ok" for v in results.values())
        return JSONResponse(
            {"status": "ready" if ready else "unready", "checks": results},
            status_code=200 if ready else 503,
        )

    return router
