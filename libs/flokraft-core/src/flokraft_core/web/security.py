"""FastAPI dependencies: the caller is who the verified bearer token says.

Missing, expired, badly signed, oversized or malformed tokens get 401 with a JSON reason
and a `WWW-Authenticate` header; a valid token without the right gets 403. The per-user
rate limit is applied here too, because the user is known here.

Requests that carry a body are authenticated earlier, by `RequestGuard` (web/guard.py),
before a byte of the body is read; the dependency then takes the principal it found.
"""

from __future__ import annotations

from typing import Annotated

import anyio.to_thread
from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from flokraft_core.auth import AuthError, AuthUnavailable, Principal, TokenVerifier
from flokraft_core.web.errors import ApiError, unavailable
from flokraft_core.web.rate_limit import RateLimiter
from flokraft_core.web.state import from_app_state

_bearer = HTTPBearer(auto_error=False, description="Firebase ID token (dev-auth locally)")

PRINCIPAL_STATE = "principal"


# What the app factory's lifespan built, as dependencies (web.state). They are coroutines:
# FastAPI runs a plain function in its thread pool, a hop that cost more CPU than the
# function itself (measured with make bench-rerun).
get_verifier = from_app_state("verifier", TokenVerifier)
get_rate_limiter = from_app_state("rate_limiter", RateLimiter)


def unauthenticated(reason: str) -> ApiError:
    # The reason goes into a quoted header parameter: keep it to safe characters.
    quoted = "".join(c for c in reason if c.isalnum() or c in " .,:'-_()")
    return ApiError(
        401,
        "unauthenticated",
        reason,
        headers={"WWW-Authenticate": f'Bearer error="invalid_token", error_description="{quoted}"'},
    )


def bearer_token(authorization: str | None) -> str | None:
    if not authorization:
        return None
    scheme, _, token = authorization.partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token else None


def authenticate(token: str | None, verifier: TokenVerifier, limiter: RateLimiter) -> Principal:
    """Verifies the token and counts the request against its user's limit. A 401 is
    counted against the client's address by the request guard (web/guard.py), with every
    other failed request. May block: see `authenticate_off_loop`."""
    try:
        if token is None:
            raise AuthError("missing bearer token")
        principal = verifier.verify(token)
    except AuthError as exc:
        raise unauthenticated(exc.reason) from exc
    except AuthUnavailable as exc:
        raise unavailable("token keys are unavailable; try again shortly") from exc
    limiter.hit(f"user:{principal.uid}")
    return principal


async def authenticate_off_loop(
    token: str | None, verifier: TokenVerifier, limiter: RateLimiter
) -> Principal:
    """`authenticate` without blocking the event loop: in a worker thread while it may
    wait on the network (before the first JWKS fetch, or with shared rate-limit counters),
    and inline otherwise, where a thread hop would cost more CPU than the verification."""
    if verifier.may_block() or not limiter.in_memory:
        return await anyio.to_thread.run_sync(authenticate, token, verifier, limiter)
    return authenticate(token, verifier, limiter)


async def current_user(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    verifier: Annotated[TokenVerifier, Depends(get_verifier)],
    limiter: Annotated[RateLimiter, Depends(get_rate_limiter)],
) -> Principal:
    principal: Principal | None = getattr(request.state, PRINCIPAL_STATE, None)
    if principal is None:
        token = None
        if credentials is not None and credentials.scheme.lower() == "bearer":
            token = credentials.credentials
        # (A request with a body was authenticated by the guard already.)
        principal = await authenticate_off_loop(token, verifier, limiter)
    request.state.uid = principal.uid
    return principal


async def admin_user(principal: Annotated[Principal, Depends(current_user)]) -> Principal:
    if not principal.admin:
        raise ApiError(403, "permission_denied", "this route needs the admin claim")
    return principal


CurrentUser = Annotated[Principal, Depends(current_user)]
AdminUser = Annotated[Principal, Depends(admin_user)]
