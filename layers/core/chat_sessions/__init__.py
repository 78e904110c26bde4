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
}


def __getattr__(name: str) -> Any:
    if name not in __all__:
        raise AttributeError(name)
    return getattr(import_module(_HOMES.get(name, ".errors"), __name__), name)


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
