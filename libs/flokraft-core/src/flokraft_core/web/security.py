"""FastAPI dependencies: the caller is who the verified bearer token says.

Missing, expired, badly signed or wrong-audience tokens get 401 with a JSON reason and a
`WWW-Authenticate` header; a valid token without the right gets 403. Rate limiting is
applied here too, because the key (user, or client IP when auth fails) is known here.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from flokraft_core.auth import AuthError, AuthUnavailable, Principal, TokenVerifier
from flokraft_core.web.errors import ApiError
from flokraft_core.web.rate_limit import RateLimiter

_bearer = HTTPBearer(auto_error=False, description="Firebase ID token (dev-auth locally)")


def get_verifier(request: Request) -> TokenVerifier:
    verifier: TokenVerifier = request.app.state.verifier
    return verifier


def get_rate_limiter(request: Request) -> RateLimiter:
    limiter: RateLimiter = request.app.state.rate_limiter
    return limiter


def _unauthenticated(reason: str) -> ApiError:
    return ApiError(
        401,
        "unauthenticated",
        reason,
        headers={"WWW-Authenticate": f'Bearer error="invalid_token", error_description="{reason}"'},
    )


def _client_ip(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def current_user(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    verifier: Annotated[TokenVerifier, Depends(get_verifier)],
    limiter: Annotated[RateLimiter, Depends(get_rate_limiter)],
) -> Principal:
    # A sync dependency on purpose: FastAPI runs it in the threadpool, where the JWKS
    # client may block on its (rare) key refresh without stalling the event loop.
    try:
        if credentials is None or credentials.scheme.lower() != "bearer":
            raise AuthError("missing bearer token")
        principal = verifier.verify(credentials.credentials)
    except AuthError as exc:
        limiter.hit(f"ip:{_client_ip(request)}")
        raise _unauthenticated(exc.reason) from exc
    except AuthUnavailable as exc:
        raise ApiError(503, "unavailable", "token keys are unavailable; try again shortly") from exc
    request.state.uid = principal.uid
    limiter.hit(f"user:{principal.uid}")
    return principal


def admin_user(principal: Annotated[Principal, Depends(current_user)]) -> Principal:
    if not principal.admin:
        raise ApiError(403, "permission_denied", "this route needs the admin claim")
    return principal


CurrentUser = Annotated[Principal, Depends(current_user)]
AdminUser = Annotated[Principal, Depends(admin_user)]
