"""A dev-auth issuer in this process, for tests and benchmarks: its own key, a JWKS server
on a free port, and a minter for good and deliberately bad tokens. (`make dev` runs
dev-auth as a process of its own instead.)"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric import rsa

from flokraft_core.dev import devauth


@dataclass
class TestIssuer:
    __test__ = False  # a fixture's type, not a test class

    key: rsa.RSAPrivateKey
    jwks_url: str
    issuer: str
    audience: str

    def token(self, uid: str, *, admin: bool = False, **kwargs: Any) -> str:
        kwargs.setdefault("audience", self.audience)
        kwargs.setdefault("issuer", self.issuer)
        return devauth.mint_token(self.key, uid, admin=admin, **kwargs)

    def headers(self, uid: str, *, admin: bool = False) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(uid, admin=admin)}"}

    def env(self) -> dict[str, str]:
        return {
            "AUTH_JWKS_URL": self.jwks_url,
            "AUTH_ISSUER": self.issuer,
            "AUTH_AUDIENCE": self.audience,
        }


@contextmanager
def running_issuer(tmp_dir: Path, audience: str) -> Iterator[TestIssuer]:
    key = devauth.load_or_create_key(tmp_dir / "signing-key.pem")
    server = devauth.make_server("127.0.0.1", 0, key)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    port = server.server_address[1]
    try:
        yield TestIssuer(
            key=key,
            jwks_url=f"http://127.0.0.1:{port}{devauth.JWKS_PATH}",
            issuer=devauth.DEV_ISSUER,
            audience=audience,
        )
    finally:
        server.shutdown()
        server.server_close()
