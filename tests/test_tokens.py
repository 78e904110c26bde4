"""The chat function's own JWT verification, against a JWKS served over HTTP on 127.0.0.1."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from chat_sessions.errors import UnauthorizedError
from chat_sessions.tokens import TokenVerifier
from chat_sessions_local.issuer import DEV_AUDIENCE, DevIssuer

ISSUER = "https://issuer.test"


class JwksServer:
    """Serves ``keys`` at /.well-known/jwks.json and counts the fetches."""

    def __init__(self) -> None:
        self.keys: list[dict[str, Any]] = []
        self.fetches = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                outer.fetches += 1
                body = json.dumps({"keys": outer.keys}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/.well-known/jwks.json"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def jwks() -> Iterator[JwksServer]:
    server = JwksServer()
    yield server
    server.server.shutdown()


def issuer_key(tmp_path: Path, name: str) -> DevIssuer:
    return DevIssuer.load_or_create(ISSUER, key_file=tmp_path / f"{name}.pem")


def verifier(jwks: JwksServer, *, cooldown: float = 30.0) -> TokenVerifier:
    return TokenVerifier(
        ISSUER, [DEV_AUDIENCE, "other-client"], jwks_url=jwks.url, refresh_cooldown_seconds=cooldown
    )


def test_valid_tokens_verify_and_keys_are_cached(tmp_path: Path, jwks: JwksServer) -> None:
    issuer = issuer_key(tmp_path, "a")
    jwks.keys = issuer.jwks()["keys"]
    check = verifier(jwks)

    for user in ("u1", "u2", "u3"):
        assert check.claims(f"Bearer {issuer.mint(user)}")["sub"] == user
    assert check.claims(f"Bearer {issuer.mint('u4', audience='other-client')}")["sub"] == "u4"
    assert jwks.fetches == 1


def test_unknown_key_ids_do_not_hammer_the_issuer(tmp_path: Path, jwks: JwksServer) -> None:
    issuer = issuer_key(tmp_path, "a")
    jwks.keys = issuer.jwks()["keys"]
    check = verifier(jwks)  # the default cooldown
    assert check.claims(f"Bearer {issuer.mint('u')}")["sub"] == "u"

    for _ in range(5):
        with pytest.raises(UnauthorizedError):
            check.claims(f"Bearer {_signed_by_stranger('random-kid')}")
    assert jwks.fetches == 1


def test_a_rotated_key_is_fetched_when_first_seen(tmp_path: Path, jwks: JwksServer) -> None:
    old, new = issuer_key(tmp_path, "old"), issuer_key(tmp_path, "new")
    jwks.keys = old.jwks()["keys"]
    check = verifier(jwks, cooldown=0)  # the rotation comes long after our last fetch
    assert check.claims(f"Bearer {old.mint('u')}")["sub"] == "u"

    jwks.keys = old.jwks()["keys"] + new.jwks()["keys"]  # the issuer rotates
    assert check.claims(f"Bearer {new.mint('u')}")["sub"] == "u"
    assert jwks.fetches == 2


def _signed_by_stranger(kid: str) -> str:
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    claims = {"iss": ISSUER, "aud": DEV_AUDIENCE, "sub": "u", "exp": 4102444800}
    return jwt.encode(claims, stranger, algorithm="RS256", headers={"kid": kid})


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("expired", "the token has expired"),
        ("wrong audience", "the token is not valid"),
        ("wrong issuer", "the token is not valid"),
        ("bad signature", "the token is not valid"),
        ("unknown key id", "the token is signed by an unknown key"),
        ("missing", "a bearer token is required"),
    ],
)
def test_bad_tokens_are_rejected(tmp_path: Path, jwks: JwksServer, case: str, message: str) -> None:
    issuer = issuer_key(tmp_path, "a")
    jwks.keys = issuer.jwks()["keys"]
    tokens: dict[str, Callable[[], str]] = {
        "expired": lambda: issuer.mint("u", ttl_seconds=-120),
        "wrong audience": lambda: issuer.mint("u", audience="someone-else"),
        "wrong issuer": lambda: issuer.mint("u", issuer="https://evil.test"),
        "bad signature": lambda: _signed_by_stranger(issuer.key_id),
        "unknown key id": lambda: _signed_by_stranger("never-published"),
        "missing": lambda: "",
    }
    token = tokens[case]()

    with pytest.raises(UnauthorizedError) as rejected:
        verifier(jwks).claims(f"Bearer {token}" if token else None)

    assert rejected.value.message == message


def test_an_unreachable_issuer_is_a_401_not_a_crash(tmp_path: Path) -> None:
    issuer = issuer_key(tmp_path, "a")
    check = TokenVerifier(ISSUER, [DEV_AUDIENCE], jwks_url="http://127.0.0.1:9/jwks.json")

    with pytest.raises(UnauthorizedError):
        check.claims(f"Bearer {issuer.mint('u')}")
