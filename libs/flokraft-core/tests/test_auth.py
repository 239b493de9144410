from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import jwt
import pytest

from flokraft_core.auth import AuthError, AuthUnavailable, TokenVerifier
from flokraft_core.dev import devauth
from flokraft_core.settings import CoreSettings

AUDIENCE = "proj-a"


@pytest.fixture(scope="module")
def key_and_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[object, str]]:
    key = devauth.load_or_create_key(Path(tmp_path_factory.mktemp("k")) / "key.pem")
    server = devauth.make_server("127.0.0.1", 0, key)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield key, f"http://127.0.0.1:{server.server_address[1]}{devauth.JWKS_PATH}"
    server.shutdown()
    server.server_close()


@pytest.fixture
def verifier(key_and_url: tuple[object, str]) -> TokenVerifier:
    return TokenVerifier(
        CoreSettings(
            auth_jwks_url=key_and_url[1],  # type: ignore[arg-type]
            auth_issuer=devauth.DEV_ISSUER,
            auth_audience=AUDIENCE,
        )
    )


def token(key_and_url: tuple[object, str], **kwargs: object) -> str:
    kwargs.setdefault("audience", AUDIENCE)
    return devauth.mint_token(key_and_url[0], "alice", **kwargs)  # type: ignore[arg-type]


def test_valid_token_names_the_user(verifier: TokenVerifier, key_and_url) -> None:
    principal = verifier.verify(token(key_and_url))
    assert principal.uid == "alice"
    assert not principal.admin
    assert verifier.verify(token(key_and_url, admin=True)).admin


@pytest.mark.parametrize(
    ("kwargs", "reason"),
    [
        ({"audience": "another-project"}, "another audience"),
        ({"issuer": "https://evil.example"}, "another issuer"),
        ({"now": time.time() - 7200, "ttl_seconds": 60}, "expired"),
    ],
)
def test_bad_claims_are_refused(verifier, key_and_url, kwargs, reason) -> None:
    with pytest.raises(AuthError, match=reason):
        verifier.verify(token(key_and_url, **kwargs))


def test_token_signed_by_another_key_is_refused(verifier, tmp_path: Path) -> None:
    other = devauth.load_or_create_key(tmp_path / "other.pem")
    forged = devauth.mint_token(other, "alice", audience=AUDIENCE)
    with pytest.raises(AuthError, match="known key"):
        verifier.verify(forged)


def test_tampered_payload_is_refused(verifier, key_and_url) -> None:
    header, _, signature = token(key_and_url).split(".")
    _, other_payload, _ = token(key_and_url, admin=True).split(".")
    with pytest.raises(AuthError):
        verifier.verify(f"{header}.{other_payload}.{signature}")


@pytest.mark.parametrize("garbage", ["", "abc", "a.b.c", "e30.e30.e30"])
def test_garbage_is_refused(verifier, garbage: str) -> None:
    with pytest.raises(AuthError):
        verifier.verify(garbage)


def test_unreachable_jwks_is_unavailable_not_unauthenticated(key_and_url) -> None:
    verifier = TokenVerifier(
        CoreSettings(
            auth_jwks_url="http://127.0.0.1:9/jwks.json",  # type: ignore[arg-type]
            auth_issuer=devauth.DEV_ISSUER,
            auth_audience=AUDIENCE,
        )
    )
    with pytest.raises(AuthUnavailable):
        verifier.verify(token(key_and_url))


def _counting_decodes(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    decoded: list[str] = []
    decode = jwt.decode

    def counting(token: str, *args: object, **kwargs: object) -> object:
        decoded.append(token)
        return decode(token, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(jwt, "decode", counting)
    return decoded


def test_a_verified_token_is_not_verified_again_until_it_expires(
    verifier: TokenVerifier, key_and_url, monkeypatch: pytest.MonkeyPatch
) -> None:
    decoded = _counting_decodes(monkeypatch)
    alice = token(key_and_url)
    first = verifier.verify(alice)
    assert verifier.verify(alice) == first
    assert verifier.verify(alice).uid == "alice"
    assert len(decoded) == 1
    # Another token (here: another user's claims) is its own entry.
    assert verifier.verify(token(key_and_url, admin=True)).admin
    assert len(decoded) == 2

    # One whose expiry (with the leeway, 30 s) passes while remembered is refused then.
    leeway = 30
    short = token(key_and_url, now=time.time() - leeway - 55, ttl_seconds=60)
    assert verifier.verify(short).uid == "alice"
    time.sleep(5.3)
    with pytest.raises(AuthError, match="expired"):
        verifier.verify(short)


def test_a_key_set_refetch_verifies_remembered_tokens_again(
    verifier: TokenVerifier, key_and_url, monkeypatch: pytest.MonkeyPatch
) -> None:
    decoded = _counting_decodes(monkeypatch)
    alice = token(key_and_url)
    verifier.verify(alice)
    verifier.verify(alice)
    assert len(decoded) == 1
    verifier.keys._fetch()  # what the background refresh does: new key objects
    assert verifier.verify(alice).uid == "alice"
    assert len(decoded) == 2
    # A tampered copy of a remembered token is not the same text: checked, refused.
    header, payload, signature = alice.split(".")
    with pytest.raises(AuthError):
        verifier.verify(f"{header}.{payload}.{signature[:-4]}AAAA")
