"""Bearer-token verification, the same in every environment.

Tokens are RS256 JWTs checked against the keys published at a JWKS URL, with issuer and
audience: Firebase ID tokens in production, the local dev-auth server's tokens locally.
There is deliberately no switch that turns verification off.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import jwt

from flokraft_core.settings import CoreSettings

ALGORITHMS = ["RS256"]


@dataclass(frozen=True)
class Principal:
    uid: str
    admin: bool = False
    claims: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)


class AuthError(Exception):
    """The request carries no acceptable token (401)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class AuthUnavailable(Exception):
    """The signing keys could not be fetched (503: not the caller's fault)."""


class TokenVerifier:
    def __init__(self, settings: CoreSettings) -> None:
        self._issuer = settings.auth_issuer
        self._audience = settings.auth_audience
        self._leeway = settings.auth_leeway_seconds
        self._jwks = jwt.PyJWKClient(
            str(settings.auth_jwks_url),
            cache_jwk_set=True,
            lifespan=max(settings.auth_jwks_cache_seconds, 1),
            timeout=5,
        )

    def verify(self, token: str) -> Principal:
        try:
            signing_key = self._jwks.get_signing_key_from_jwt(token)
        except jwt.PyJWKClientConnectionError as exc:
            raise AuthUnavailable(f"signing keys unavailable: {exc}") from exc
        except jwt.DecodeError as exc:
            raise AuthError("token is not a well-formed JWT") from exc
        except jwt.PyJWKClientError as exc:
            raise AuthError("token is not signed by a known key") from exc
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                signing_key.key,
                algorithms=ALGORITHMS,
                audience=self._audience,
                issuer=self._issuer,
                leeway=self._leeway,
                options={"require": ["exp", "iat", "sub", "aud", "iss"]},
            )
        except jwt.ExpiredSignatureError as exc:
            raise AuthError("token has expired") from exc
        except jwt.InvalidAudienceError as exc:
            raise AuthError("token is for another audience") from exc
        except jwt.InvalidIssuerError as exc:
            raise AuthError("token is from another issuer") from exc
        except jwt.InvalidSignatureError as exc:
            raise AuthError("token signature is invalid") from exc
        except jwt.MissingRequiredClaimError as exc:
            raise AuthError(f"token lacks the {exc.claim!r} claim") from exc
        except jwt.InvalidTokenError as exc:
            raise AuthError(f"token is invalid: {exc}") from exc
        uid = claims.get("sub")
        if not isinstance(uid, str) or not uid or len(uid) > 128:
            raise AuthError("token subject is not a valid user id")
        return Principal(uid=uid, admin=claims.get("admin") is True, claims=claims)
