"""Bearer-token verification, the same in every environment.

Tokens are RS256 JWTs checked against the keys published at a JWKS URL, with issuer and
audience: Firebase ID tokens in production, the local dev-auth server's tokens locally.
There is deliberately no switch that turns verification off.

Two properties matter under attack:
- Nothing is decoded before its size is checked, and every PyJWT error is a 401 with a
  reason (a malformed header must never reach the 500 handler).
- The signing keys are served stale-while-revalidate: once keys were fetched, a slow or
  hanging JWKS endpoint never holds a request; one background refresh with a short
  timeout runs while the last good keys keep verifying. Keys stale for too long show in
  `flokraft_dependency_up{dependency="jwks"}` and the logs (see `SigningKeys.problem`);
  only a pod that never got keys is unready.

A token that verified is remembered (by its exact text, a bounded least-recently-used
set) until its expiry: a client sends the same token on every request until it refreshes
it, and verifying costs two base64 parses and an RSA check each time, about 0.3 ms of a
request's CPU (bench/rerun_bench.py). A remembered token is answered only while it has
not expired and the key it was verified with is still the one the key set holds for its
`kid`: a key rotation (a refetch) verifies every token again.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.request
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Final

import jwt

from flokraft_core.logs import get_logger
from flokraft_core.settings import CoreSettings

log = get_logger(__name__)

ALGORITHMS = ["RS256"]
# JWKS documents are a few KiB; anything far larger is not a key set.
_MAX_JWKS_BYTES = 1 << 20
# What a hostile token can make the decoder raise besides PyJWT's own errors (a deeply
# nested header is a RecursionError in json, a bad key parameter a ValueError...).
_MALFORMED: tuple[type[Exception], ...] = (
    jwt.PyJWTError,
    ValueError,
    TypeError,
    KeyError,
    RecursionError,
)


@dataclass(frozen=True)
class Principal:
    uid: str
    admin: bool = False
    claims: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)


# Verified tokens remembered per process: one per active client is plenty.
VERIFIED_TOKENS_KEPT: Final = 4096


@dataclass(frozen=True)
class _Verified:
    principal: Principal
    kid: str
    key: jwt.PyJWK
    # Epoch seconds from which PyJWT would call the token expired (exp + leeway).
    expires_at: float


class AuthError(Exception):
    """The request carries no acceptable token (401)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class AuthUnavailable(Exception):
    """The signing keys could not be fetched (503: not the caller's fault)."""


class SigningKeys:
    """The issuer's public keys by `kid`, refreshed in the background.

    Only the very first fetch (no keys yet) is waited for, by one thread at a time and
    within `fetch_timeout`; after that, requests never wait for the JWKS endpoint.
    """

    def __init__(
        self,
        url: str,
        *,
        fresh_seconds: float,
        fetch_timeout: float,
        stale_bound_seconds: float,
        refetch_cooldown: float = 10.0,
    ) -> None:
        self._url = url
        self._fresh = fresh_seconds
        self._timeout = fetch_timeout
        self._stale_bound = stale_bound_seconds
        self._cooldown = refetch_cooldown
        self._keys: dict[str, jwt.PyJWK] = {}
        self._fetched_at: float | None = None  # monotonic time of the last good fetch
        self._attempted_at = float("-inf")  # monotonic time of the last fetch started
        self._last_error: str | None = None
        self._state = threading.Lock()  # guards the fields above; never held during I/O
        self._fetching = threading.Lock()  # one fetch at a time

    def _fetch(self) -> None:
        with self._state:
            self._attempted_at = time.monotonic()
        try:
            # The URL is an HttpUrl setting (http/https only), never caller input.
            request = urllib.request.Request(self._url, headers={"Accept": "application/json"})  # noqa: S310
            with urllib.request.urlopen(request, timeout=self._timeout) as response:  # noqa: S310
                raw = response.read(_MAX_JWKS_BYTES + 1)
            if len(raw) > _MAX_JWKS_BYTES:
                raise ValueError("JWKS document too large")
            keys = {
                key.key_id: key
                for key in jwt.PyJWKSet.from_dict(json.loads(raw)).keys
                if key.key_id is not None
            }
            if not keys:
                raise ValueError("JWKS has no keys with a kid")
        except Exception as exc:  # any failure keeps the last good keys
            with self._state:
                self._last_error = f"{type(exc).__name__}: {str(exc)[:200]}"
            log.warning("jwks_fetch_failed", url=self._url, error=self._last_error)
            return
        with self._state:
            self._keys = keys
            self._fetched_at = time.monotonic()
            self._last_error = None

    def _fetch_once(self, *, wait: bool) -> None:
        """Runs one fetch unless another is already running (then waits for it, or not)."""
        if not self._fetching.acquire(blocking=wait, timeout=self._timeout if wait else -1):
            return
        try:
            self._fetch()
        finally:
            self._fetching.release()

    def _refresh_in_background(self) -> None:
        with self._state:
            if time.monotonic() - self._attempted_at < self._cooldown:
                return
            self._attempted_at = time.monotonic()
        threading.Thread(
            target=self._fetch_once, kwargs={"wait": False}, name="jwks-refresh", daemon=True
        ).start()

    def age(self) -> float | None:
        """Seconds since the last good fetch, or None when there never was one."""
        with self._state:
            return None if self._fetched_at is None else time.monotonic() - self._fetched_at

    def key(self, kid: str) -> jwt.PyJWK:
        with self._state:
            keys, fetched_at = self._keys, self._fetched_at
        if fetched_at is None:
            self._fetch_once(wait=True)
            with self._state:
                keys = self._keys
            if not keys:
                raise AuthUnavailable(f"signing keys unavailable: {self._last_error}")
        elif time.monotonic() - fetched_at > self._fresh or kid not in keys:
            # Stale, or a key we have not seen (a rotation): keep serving what we have,
            # refresh behind the request. The cooldown stops made-up kids from making
            # every request a fetch.
            self._refresh_in_background()
        found = keys.get(kid)
        if found is None:
            raise AuthError("token is not signed by a known key")
        return found

    def refresh_soon(self) -> None:
        """Starts a fetch in the background (at start-up: the keys are ready before the
        first request needs them, and no probe waits for the fetch)."""
        self._refresh_in_background()

    def missing(self) -> str | None:
        """Why this pod has no keys to verify with, or None (readiness: a pod without keys
        cannot serve). Never waits for the JWKS endpoint."""
        if self.age() is None:
            self._refresh_in_background()
            return f"signing keys not fetched yet: {self._last_error or 'fetching'}"
        return None

    def problem(self) -> str | None:
        """Why the keys are missing or stale past the bound, or None. Stale keys still
        verify every token signed by a key they hold; the issuer's endpoint is shared by
        every replica, so this is reported (metrics, logs), not made a readiness failure.
        Never waits for the JWKS endpoint; keeps the keys fresh on an idle pod by
        triggering the background refresh."""
        age = self.age()
        if age is None:
            return self.missing()
        if age > self._fresh:
            self._refresh_in_background()
        if age > self._stale_bound:
            return f"signing keys are {age:.0f} s old (refresh failing: {self._last_error})"
        return None


class TokenVerifier:
    def __init__(self, settings: CoreSettings) -> None:
        self._issuer = settings.auth_issuer
        self._audience = settings.auth_audience
        self._leeway = settings.auth_leeway_seconds
        self._max_bytes = settings.auth_max_token_bytes
        self.keys = SigningKeys(
            str(settings.auth_jwks_url),
            fresh_seconds=settings.auth_jwks_cache_seconds,
            fetch_timeout=settings.auth_jwks_timeout_seconds,
            stale_bound_seconds=settings.auth_jwks_stale_seconds,
        )
        self._verified: OrderedDict[str, _Verified] = OrderedDict()
        self._verified_lock = threading.Lock()  # verify also runs on worker threads

    def may_block(self) -> bool:
        """Whether `verify` may wait on the network: only until the first key fetch."""
        return self.keys.age() is None

    def verify(self, token: str) -> Principal:
        # Before anything parses the token: a multi-megabyte "token" costs one len().
        if len(token) > self._max_bytes:
            raise AuthError(f"token is longer than {self._max_bytes} bytes")
        remembered = self._remembered(token)
        if remembered is not None:
            return remembered
        try:
            header = jwt.get_unverified_header(token)
        except _MALFORMED as exc:
            raise AuthError("token is not a well-formed JWT") from exc
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise AuthError("token header has no valid key id")
        signing_key = self.keys.key(kid)
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
        except _MALFORMED as exc:
            # Every other PyJWT error (crit headers, bad algorithms, malformed claims...)
            # is the caller's token at fault, never a 500.
            raise AuthError(f"token is invalid: {str(exc)[:200]}") from exc
        uid = claims.get("sub")
        if not isinstance(uid, str) or not uid or len(uid) > 128:
            raise AuthError("token subject is not a valid user id")
        principal = Principal(uid=uid, admin=claims.get("admin") is True, claims=claims)
        expires_at = float(claims["exp"]) + self._leeway
        with self._verified_lock:
            self._verified[token] = _Verified(principal, kid, signing_key, expires_at)
            if len(self._verified) > VERIFIED_TOKENS_KEPT:
                self._verified.popitem(last=False)
        return principal

    def _remembered(self, token: str) -> Principal | None:
        """The principal of `token` if it verified before, has not expired since, and its
        key is still the key set's key for its kid; else None (verify it again)."""
        with self._verified_lock:
            entry = self._verified.get(token)
            if entry is None:
                return None
            self._verified.move_to_end(token)
        # Outside the lock: `key` may start a refresh. A kid no longer known raises the
        # same AuthError the full check would.
        if time.time() < entry.expires_at and self.keys.key(entry.kid) is entry.key:
            return entry.principal
        with self._verified_lock:
            self._verified.pop(token, None)
        return None
