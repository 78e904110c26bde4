"""Bearer-token verification where no API Gateway authorizer runs (the chat function URL, the
local server): what API Gateway's JWT authorizer checks, with the issuer's JWKS fetched and cached.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import jwt

from .errors import UnauthorizedError

CLOCK_SKEW_SECONDS = 30
JWKS_CACHE_SECONDS = 600


@dataclass
class TokenVerifier:
    """RS256 signature by a key of the issuer (matched by ``kid``), ``iss``, one of ``audiences``,
    ``exp``/``nbf`` with clock skew, and a ``sub``.

    Args:
        jwks_url: Where the issuer publishes its keys (fetched lazily, cached, refetched when a
            token names an unknown key id). Defaults to ``<issuer>/.well-known/jwks.json``.
        jwks: A fixed key set instead of a URL (local development, tests).
    """

    issuer: str
    audiences: list[str]
    jwks_url: str | None = None
    jwks: dict[str, Any] | None = None
    fetch_timeout_seconds: float = 2.0
    refresh_cooldown_seconds: float = 30.0
    """Least time between two fetches for unknown key ids (tokens naming random ``kid``s must not
    make us hammer the issuer)."""
    _client: jwt.PyJWKClient | None = field(default=None, init=False, repr=False)

    def claims(self, authorization: str | None) -> dict[str, Any]:
        """The verified claims of ``Authorization: Bearer <jwt>``; ``UnauthorizedError`` if not."""
        scheme, _, token = (authorization or "").partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise UnauthorizedError("a bearer token is required")
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key=self._signing_key(token),
                algorithms=["RS256"],
                audience=self.audiences,
                issuer=self.issuer,
                leeway=CLOCK_SKEW_SECONDS,
                options={"require": ["exp", "iss", "aud", "sub"]},
            )
        except jwt.ExpiredSignatureError:
            raise UnauthorizedError("the token has expired") from None
        except (jwt.PyJWTError, ValueError):
            raise UnauthorizedError("the token is not valid") from None
        return claims

    def _signing_key(self, token: str) -> Any:
        if self.jwks is not None:
            key_id = jwt.get_unverified_header(token).get("kid")
            for jwk in self.jwks.get("keys", []):
                if jwk.get("kid") == key_id:
                    return jwt.PyJWK(jwk).key
            raise UnauthorizedError("the token is signed by an unknown key")
        if self._client is None:
            url = self.jwks_url or f"{self.issuer.rstrip('/')}/.well-known/jwks.json"
            self._client = jwt.PyJWKClient(
                url,
                cache_keys=True,
                lifespan=JWKS_CACHE_SECONDS,
                timeout=self.fetch_timeout_seconds,
                cooldown_duration=self.refresh_cooldown_seconds,
            )
        try:
            return self._client.get_signing_key_from_jwt(token).key
        except jwt.PyJWKClientConnectionError:
            raise UnauthorizedError("the issuer's keys could not be fetched") from None
        except jwt.PyJWKClientError:
            raise UnauthorizedError("the token is signed by an unknown key") from None


@lru_cache(maxsize=1)
def verifier_from_settings() -> TokenVerifier:
    """The verifier for ``CHAT_SESSIONS_JWT_ISSUER`` / ``_JWT_AUDIENCE`` / ``_JWKS_URL``."""
    from .config import get_settings

    settings = get_settings()
    if not settings.jwt_issuer or not settings.jwt_audience:
        raise RuntimeError("CHAT_SESSIONS_JWT_ISSUER and CHAT_SESSIONS_JWT_AUDIENCE must be set")
    audiences = [a.strip() for a in settings.jwt_audience.split(",") if a.strip()]
    return TokenVerifier(settings.jwt_issuer, audiences, jwks_url=settings.jwks_url)
