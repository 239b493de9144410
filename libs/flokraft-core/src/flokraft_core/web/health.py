"""/healthz and /readyz.

Liveness checks only the process itself (a service may add a heartbeat check of its own
loop). Readiness checks only this pod: started, signing keys loaded, not draining, event
loop responsive (`flokraft_core.readiness`). Neither reads anything over the network, so
a probe costs no Firestore read and a shared dependency's outage fails no probe: the
replicas stay in the load balancer and answer 503 + Retry-After themselves. The last
background check of each shared dependency is shown under `dependencies`, for a person;
it never changes the status.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse

from flokraft_core.readiness import DependencyMonitor

# Each returns why the pod cannot serve, or None. Cheap and local: no I/O.
PodCheck = Callable[[FastAPI], str | None]
LivenessCheck = Callable[[FastAPI], str | None]  # returns why the process is not alive


def health_router(
    readiness: Mapping[str, PodCheck],
    dependencies: DependencyMonitor | None = None,
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
        results: dict[str, str] = {}
        for name, check in readiness.items():
            try:
                problem = check(request.app)
            except Exception as exc:  # a broken check is a pod that cannot tell: unready
                problem = f"{type(exc).__name__}: {str(exc)[:200]}"
            results[name] = problem or "ok"
        ready = all(v == "ok" for v in results.values())
        body: dict[str, object] = {"status": "ready" if ready else "unready", "checks": results}
        if dependencies is not None:
            body["dependencies"] = dependencies.report()
        return JSONResponse(body, status_code=200 if ready else 503)

    return router
