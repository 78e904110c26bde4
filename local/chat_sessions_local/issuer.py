"""A development OIDC issuer: an RSA signing key made on first use (kept in .cache/, git-ignored),
its JWKS, tokens for any user, and the verification API Gateway's JWT authorizer performs.

    uv run python -m chat_sessions_local.issuer alice      # prints a token for user "alice"
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from chat_sessions.tokens import TokenVerifier

from .dynamodb_local import REPO_ROOT

DEV_AUDIENCE = "chat-sessions-local"
DEV_PORT = int(os.environ.get("CHAT_SESSIONS_DEV_PORT", "8000"))
KEY_FILE = REPO_ROOT / ".cache" / "dev-issuer" / "signing-key.pem"


def dev_issuer_url(port: int = DEV_PORT) -> str:
    return f"http://127.0.0.1:{port}"


@dataclass(frozen=True)
class DevIssuer:
    """Signs tokens as ``url``; the local server publishes its JWKS and verifies against it."""

    url: str
    private_key: rsa.RSAPrivateKey

    @classmethod
    def load_or_create(cls, url: str, key_file: Path = KEY_FILE) -> DevIssuer:
        if key_file.exists():
            loaded = serialization.load_pem_private_key(key_file.read_bytes(), password=None)
            if not isinstance(loaded, rsa.RSAPrivateKey):
                raise ValueError(f"{key_file} is not an RSA key")
            return cls(url, loaded)
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        key_file.parent.mkdir(parents=True, exist_ok=True)
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        key_file.write_bytes(pem)
        key_file.chmod(0o600)
        return cls(url, key)

    @property
    def key_id(self) -> str:
        der = self.private_key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        return hashlib.sha256(der).hexdigest()[:16]

    def mint(
        self,
        user: str,
        *,
        ttl_seconds: int = 12 * 3600,
        audience: str = DEV_AUDIENCE,
        issuer: str | None = None,
        now: float | None = None,
        **claims: Any,
    ) -> str:
        """A signed ID-style token whose ``sub`` is ``user``."""
        issued = int(time.time() if now is None else now)
        payload = {
            "iss": issuer or self.url,
            "aud": audience,
            "sub": user,
            "iat": issued,
            "exp": issued + ttl_seconds,
            "jti": uuid.uuid4().hex,
            **claims,
        }
        return jwt.encode(
            payload, self.private_key, algorithm="RS256", headers={"kid": self.key_id}
        )

    def jwks(self) -> dict[str, Any]:
        public = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self.private_key.public_key()))
        return {"keys": [{**public, "kid": self.key_id, "use": "sig", "alg": "RS256"}]}

    def openid_configuration(self) -> dict[str, Any]:
        return {
            "issuer": self.url,
            "jwks_uri": f"{self.url}/.well-known/jwks.json",
            "id_token_signing_alg_values_supported": ["RS256"],
            "subject_types_supported": ["public"],
            "response_types_supported": ["id_token"],
        }

    def verifier(self) -> TokenVerifier:
        return TokenVerifier(issuer=self.url, audiences=[DEV_AUDIENCE], jwks=self.jwks())


def main() -> None:
    parser = argparse.ArgumentParser(description="Print a development token for a user.")
    parser.add_argument("user", nargs="?", default="dev-user", help="the token's sub claim")
    parser.add_argument("--hours", type=float, default=12, help="lifetime")
    args = parser.parse_args()
    issuer = DevIssuer.load_or_create(dev_issuer_url())
    print(issuer.mint(args.user, ttl_seconds=int(args.hours * 3600)))


if __name__ == "__main__":
    main()
