"""Opaque pagination cursors. They hold positions only, never keys of another partition:
the store rebuilds every DynamoDB key from the caller's own user and session ids."""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from .errors import InvalidCursorError

_VERSION = 1


def encode_cursor(kind: str, **position: Any) -> str:
    payload = json.dumps({"v": _VERSION, "k": kind, **position}, separators=(",", ":"))
    return base64.urlsafe_b64encode(payload.encode()).decode().rstrip("=")


def decode_cursor(cursor: str, kind: str) -> dict[str, Any]:
    """The position in a cursor of ``kind``; ``InvalidCursorError`` for anything else."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        value = json.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
    except (ValueError, binascii.Error, UnicodeError):
        raise InvalidCursorError("the cursor is not one this API issued") from None
    if not isinstance(value, dict) or value.get("v") != _VERSION or value.get("k") != kind:
        raise InvalidCursorError("the cursor is not one this API issued for this listing")
    return value
