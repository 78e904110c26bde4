"""Who is calling, from a verified token only: the ``sub`` claim, and whether the deployment
trusts the caller to write privileged items (docs/api.md, "Prompt integrity").

Every edge uses this: the route functions (claims API Gateway's JWT authorizer verified), the
chat app on its function URL (claims ``tokens.TokenVerifier`` verified) and the local server.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import TypeAdapter, ValidationError

from chat_sessions.errors import UnauthorizedError
from chat_sessions.models import UserId

_subject = TypeAdapter(UserId)


@dataclass(frozen=True)
class Caller:
    user_id: str
    trusted: bool = False
    """Holds the deployment's trusted-writer scope: may append any item kind."""


def caller_of(claims: Mapping[str, Any] | None, scopes: Iterable[str] | None = None) -> Caller:
    """The caller a verified token names; 401 unless ``sub`` is a user id (1-256 characters,
    no control characters). ``scopes`` are the ones API Gateway extracted, else the token's
    ``scope`` (space-separated) or ``scp`` claim."""
    subject = (claims or {}).get("sub")
    try:
        user_id = _subject.validate_python(subject, strict=True)
    except ValidationError:
        raise UnauthorizedError("a valid bearer token with a subject is required") from None
    # On first use: a function's init stays free of pydantic-settings (its first request reads
    # the settings anyway).
    from chat_sessions.config import get_settings

    granted = set(scopes) if scopes is not None else _scopes_of(claims or {})
    wanted = get_settings().trusted_scope
    return Caller(user_id, trusted=bool(wanted) and wanted in granted)


def _scopes_of(claims: Mapping[str, Any]) -> set[str]:
    scope, scp = claims.get("scope"), claims.get("scp")
    if isinstance(scope, str):
        return set(scope.split())
    if isinstance(scp, str):
        return set(scp.split())
    if isinstance(scp, list):
        return {s for s in scp if isinstance(s, str)}
    return set()


def caller_of_event(event: Mapping[str, Any]) -> Caller:
    """The caller of an API Gateway payload-2.0 event, from its JWT authorizer's context."""
    jwt = (event.get("requestContext") or {}).get("authorizer", {}).get("jwt") or {}
    return caller_of(jwt.get("claims"), jwt.get("scopes"))
