"""``Idempotency-Key`` (docs/api.md, docs/lifecycle.md): what names a request, and what a write
records under its key.

The record itself is written by the store, inside the same transaction as the write it belongs
to (``ChatStore.append_items``), so a write and its record exist together or not at all.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from .errors import InvalidIdempotencyKeyError

IDEMPOTENCY_TTL_SECONDS = 24 * 3600
"""How long a key's first result is replayed; afterwards the key counts as new."""
REPLAYED_HEADER = "Idempotent-Replayed"
"""Set to ``true`` on an answer replayed for a key: that call wrote nothing."""
KEY_HEADER = "Idempotency-Key"
KEY_HEADER_DESCRIPTION = (
    "1-255 visible ASCII characters, e.g. a UUID. A retry with the same key and request within "
    "24 hours returns the first call's result and writes nothing (a chat turn does not run the "
    "model again); the same key with another request is a 422 (docs/api.md, Idempotency-Key)."
)
"""The header as every edge documents it (the rule itself is ``IdempotentRequest.of``)."""
_KEY = re.compile(r"[\x21-\x7e]{1,255}")


@dataclass(frozen=True)
class IdempotencyRecord:
    """What a write stores under its key: the request's fingerprint and its answer."""

    key: str
    request_hash: str
    response: str
    """The answer as JSON text (what a retry gets back)."""
    status: int = 200


@dataclass(frozen=True)
class IdempotentRequest:
    """A request that came with an ``Idempotency-Key``."""

    key: str
    request_hash: str

    @classmethod
    def of(cls, key: str, route: str, session_id: str | None, body: BaseModel) -> IdempotentRequest:
        """Validate ``key`` (``InvalidIdempotencyKeyError``) and fingerprint the request."""
        return cls(check_idempotency_key(key), request_hash(route, session_id, body))

    def record(self, response: str, status: int = 200) -> IdempotencyRecord:
        return IdempotencyRecord(self.key, self.request_hash, response, status)


def check_idempotency_key(value: object) -> str:
    """1 to 255 visible ASCII characters (0x21-0x7E), as sent in the header."""
    if not isinstance(value, str) or not _KEY.fullmatch(value):
        raise InvalidIdempotencyKeyError(
            "the Idempotency-Key header must be 1 to 255 visible ASCII characters, without spaces"
        )
    return value


def request_hash(route: str, session_id: str | None, body: BaseModel) -> str:
    """SHA-256 of the route, the session and the validated body as canonical JSON (sorted keys,
    no whitespace), so two spellings of one JSON body are the same request."""
    canonical: dict[str, Any] = {
        "route": route,
        "session_id": session_id,
        "body": body.model_dump(mode="json"),
    }
    text = json.dumps(
        canonical, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    )
    return hashlib.sha256(text.encode()).hexdigest()


def derived_session_id(key: str) -> str:
    """The session ``POST /v1/chat`` creates for ``key``: the same on every retry, so the retry
    finds the first call's record in that session. 32 hex characters, like a generated id."""
    return hashlib.sha256(f"POST /v1/chat\n{key}".encode()).hexdigest()[:32]


__all__ = [
    "IDEMPOTENCY_TTL_SECONDS",
    "REPLAYED_HEADER",
    "IdempotencyRecord",
    "IdempotentRequest",
    "check_idempotency_key",
    "derived_session_id",
    "request_hash",
]
