"""chat-sessions: sessions and message history for OpenAI Agents SDK apps on DynamoDB.

``DynamoDBSession`` is imported lazily: it pulls in the Agents SDK (about a second of import time),
which the CRUD Lambda functions must not pay.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

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

if TYPE_CHECKING:
    from .agents_session import DynamoDBSession


def __getattr__(name: str) -> Any:
    if name == "DynamoDBSession":
        from .agents_session import DynamoDBSession

        return DynamoDBSession
    raise AttributeError(name)


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
