"""chat-sessions: sessions and message history for OpenAI Agents SDK apps on DynamoDB.

Every name here is imported on first use: ``DynamoDBSession`` pulls in the Agents SDK (about a
second of import time), which the CRUD Lambda functions must not pay, and a function's first import
(``chat_sessions.coldstart``) must not load pydantic or boto3 before it runs.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .agents_session import DynamoDBSession
    from .errors import (
        BatchTooLargeError,
        ChatSessionsError,
        ConflictError,
        InvalidCursorError,
        InvalidInputError,
        ItemTooLargeError,
        NotFoundError,
        SessionNotFoundError,
        ThrottledError,
        TooLargeError,
        UnavailableError,
    )
    from .models import AppendResult, ChatSession, MessagePage, SessionPage, StoredMessage
    from .store import ChatStore

_HOMES = {
    "DynamoDBSession": ".agents_session",
    "ChatStore": ".store",
    **dict.fromkeys(
        ("AppendResult", "ChatSession", "MessagePage", "SessionPage", "StoredMessage"), ".models"
    ),
    **dict.fromkeys(
        (
            "BatchTooLargeError",
            "ChatSessionsError",
            "ConflictError",
            "InvalidCursorError",
            "InvalidInputError",
            "ItemTooLargeError",
            "NotFoundError",
            "SessionNotFoundError",
            "ThrottledError",
            "TooLargeError",
            "UnavailableError",
        ),
        ".errors",
    ),
}
"""Where each public name lives: every name of ``__all__``, and only those (a test checks)."""


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(name)
    value = getattr(import_module(_HOMES[name], __name__), name)
    globals()[name] = value  # found once: later lookups do not come here
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_HOMES})


__all__ = [
    "AppendResult",
    "BatchTooLargeError",
    "ChatSession",
    "ChatSessionsError",
    "ChatStore",
    "ConflictError",
    "DynamoDBSession",
    "InvalidCursorError",
    "InvalidInputError",
    "ItemTooLargeError",
    "MessagePage",
    "NotFoundError",
    "SessionNotFoundError",
    "SessionPage",
    "StoredMessage",
    "ThrottledError",
    "TooLargeError",
    "UnavailableError",
]
