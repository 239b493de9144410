"""Local identities: a signing key, its JWKS endpoint and a token minter.

Locally (and in the chart's dev values) the services verify tokens exactly as in
production, only against this issuer's keys instead of Firebase's. Nothing here can make
a production service accept a token: production trusts Firebase's JWKS and issuer.

    python -m flokraft_core.dev.devauth serve [--host 127.0.0.1] [--port 8090]
    python -m flokraft_core.dev.devauth token --uid alice [--admin] [--ttl 3600]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import signal
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

DEV_ISSUER = "flokraft-dev"
JWKS_PATH = "/.well-known/jwks.json"
DEFAULT_KEY_FILE = Path(".local/devauth/signing-key.pem")


def key_file() -> Path:
    return Path(os.environ.get("DEVAUTH_KEY_FILE", DEFAULT_KEY_FILE))


def load_or_create_key(path: Path | None = None) -> rsa.RSAPrivateKey:
    path = path or key_file()
    if path.exists():
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
        if not isinstance(key, rsa.RSAPrivateKey):
            raise ValueError(f"{path} does not hold an RSA private key")
        return key
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    path.parent.mkdir(parents=True, exist_ok=True)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    # Written owner-only, then renamed, so a concurrent reader never sees half a key.
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(pem)
    tmp.chmod(0o600)
    tmp.replace(path)
    return key


def key_id(key: rsa.RSAPrivateKey) -> str:
    der = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return hashlib.sha256(der).hexdigest()[:16]


def jwks(key: rsa.RSAPrivateKey) -> dict[str, Any]:
    public: dict[str, Any] = json.loads(RSAAlgorithm.to_jwk(key.public_key()))
    public.update({"kid": key_id(key), "alg": "RS256", "use": "sig"})
    return {"keys": [public]}


def mint_token(
    key: rsa.RSAPrivateKey,
    uid: str,
    *,
    admin: bool = False,
    audience: str,
    issuer: str = DEV_ISSUER,
    ttl_seconds: int = 3600,
    now: float | None = None,
    extra_claims: dict[str, Any] | None = None,
) -> str:
    issued = int(now if now is not None else time.time())
    claims: dict[str, Any] = {
        "iss": issuer,
        "aud": audience,
        "sub": uid,
        "user_id": uid,
        "iat": issued,
        "auth_time": issued,
        "exp": issued + ttl_seconds,
    }
    if admin:
        claims["admin"] = True
    claims.update(extra_claims or {})
    return jwt.encode(claims, key, algorithm="RS256", headers={"kid": key_id(key)})


def make_server(host: str, port: int, key: rsa.RSAPrivateKey) -> ThreadingHTTPServer:
    """An HTTP server for the JWKS (port 0 picks a free one); the caller runs it."""
    body = json.dumps(jwks(key)).encode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path in (JWKS_PATH, "/healthz"):
                payload = body if self.path == JWKS_PATH else b'{"status":"alive"}'
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Cache-Control", "public, max-age=300")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)
            else:
                self.send_error(404)

        def log_message(self, format: str, *args: Any) -> None:
            return  # the JWKS is fetched rarely and is not worth a log line each time

    return ThreadingHTTPServer((host, port), Handler)


def serve(host: str, port: int, key: rsa.RSAPrivateKey) -> None:
    server = make_server(host, port, key)
    print(f"[devauth] JWKS on http://{host}:{port}{JWKS_PATH} (issuer {DEV_ISSUER})", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


def _raise_keyboard_interrupt(*_: object) -> None:
    # SIGTERM from a process manager ends the server like Ctrl-C does.
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Local signing key, JWKS and tokens.")
    sub = parser.add_subparsers(dest="command", required=True)
    serve_cmd = sub.add_parser("serve", help="serve the JWKS")
    serve_cmd.add_argument("--host", default="127.0.0.1")
    serve_cmd.add_argument("--port", type=int, default=8090)
    token_cmd = sub.add_parser("token", help="print a token")
    token_cmd.add_argument("--uid", required=True)
    token_cmd.add_argument("--admin", action="store_true")
    token_cmd.add_argument("--ttl", type=int, default=3600)
    token_cmd.add_argument(
        "--audience", default=os.environ.get("GOOGLE_CLOUD_PROJECT", "demo-flokraft")
    )
    args = parser.parse_args(argv)
    key = load_or_create_key()
    if args.command == "serve":
        signal.signal(signal.SIGTERM, _raise_keyboard_interrupt)
        serve(args.host, args.port, key)
    else:
        print(
            mint_token(
                key, args.uid, admin=args.admin, audience=args.audience, ttl_seconds=args.ttl
            )
        )


if __name__ == "__main__":
    main()
