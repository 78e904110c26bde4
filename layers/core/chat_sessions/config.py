"""Settings read from the environment (prefix ``CHAT_SESSIONS_``), lazily and once per process."""

from __future__ import annotations

from functools import lru_cache

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DAY = 86_400


class StoreSettings(BaseSettings):
    """Where the table is and how long idle sessions live."""

    model_config = SettingsConfigDict(env_prefix="CHAT_SESSIONS_", frozen=True)

    table_name: str = "chat-sessions"
    endpoint_url: str | None = None
    """Set for DynamoDB Local; unset in AWS."""
    region: str | None = None
    jwt_issuer: str | None = None
    """Issuer of the bearer tokens the chat function verifies (the HTTP API's JwtIssuer)."""
    jwt_audience: str | None = None
    """Accepted audiences, comma-separated (the HTTP API's JwtAudience)."""
    jwks_url: str | None = None
    """Defaults to ``<jwt_issuer>/.well-known/jwks.json`` (Cognito and most OIDC providers)."""
    trusted_scope: str | None = None
    """A token scope that lets its holder append any item kind (a backend's client-credentials
    grant); unset, every caller may append only user and assistant messages."""
    session_ttl_seconds: int = 7 * DAY
    min_session_ttl_seconds: int = 60
    max_session_ttl_seconds: int = 365 * DAY
    max_stored_items: int = Field(default=0, ge=0)
    """The retention cap: at most this many messages stored per session, oldest whole turns
    removed first; 0 = no cap. Distinct from the context window (what the model sees)."""

    @model_validator(mode="after")
    def _ttl_within_bounds(self) -> StoreSettings:
        low, high = self.min_session_ttl_seconds, self.max_session_ttl_seconds
        if not 0 < low <= self.session_ttl_seconds <= high:
            raise ValueError(
                f"session_ttl_seconds must lie within [{low}, {high}], "
                f"got {self.session_ttl_seconds}"
            )
        return self


@lru_cache(maxsize=1)
def get_settings() -> StoreSettings:
    """The process-wide settings; tests call ``get_settings.cache_clear()``."""
    return StoreSettings()
