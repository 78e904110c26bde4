"""The public API's request and response bodies (docs/api.md). ``XCreate``/``XUpdate`` come in,
``XPublic`` goes out; unknown request fields are rejected."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PlainSerializer

from .clock import to_iso
from .models import (
    ApiSessionId,
    ChatSession,
    Deletion,
    DeletionStatus,
    Metadata,
    StoredMessage,
    Title,
    Usage,
)

Timestamp = Annotated[
    datetime, PlainSerializer(lambda value: to_iso(value.timestamp()), return_type=str)
]
MAX_ITEMS_PER_APPEND = 1000
MAX_API_ITEM_BYTES = 1024 * 1024
"""Largest item over HTTP, as JSON (the library takes ``codec.MAX_ITEM_BYTES``)."""


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SessionCreate(_Request):
    session_id: ApiSessionId | None = None
    title: Title | None = None
    metadata: Metadata | None = None
    ttl_seconds: int | None = Field(
        default=None,
        description="This session's idle lifetime: every write moves expires_at to now + this. "
        "Within the deployment's bounds (CHAT_SESSIONS_MIN/MAX_SESSION_TTL_SECONDS); the "
        "deployment's default when absent.",
    )


class SessionUpdate(_Request):
    """Absent fields stay as they are; ``title: null`` removes the title."""

    title: Title | None = None
    metadata: Metadata | None = None


class MessagesAppend(_Request):
    items: list[dict[str, Any]] = Field(min_length=1, max_length=MAX_ITEMS_PER_APPEND)


class SessionPublic(BaseModel):
    session_id: str
    title: str | None
    metadata: dict[str, str]
    message_count: int
    created_at: Timestamp
    updated_at: Timestamp
    expires_at: Timestamp
    ttl_seconds: int
    usage: Usage

    @classmethod
    def of(cls, session: ChatSession) -> SessionPublic:
        return cls.model_validate(session.model_dump())


class SessionListPublic(BaseModel):
    sessions: list[SessionPublic]
    next_cursor: str | None


class MessagePublic(BaseModel):
    seq: int
    role: str | None
    type: str
    text: str
    item: dict[str, Any]
    created_at: Timestamp

    @classmethod
    def of(cls, message: StoredMessage) -> MessagePublic:
        item = message.item
        role = item.get("role")
        return cls(
            seq=message.seq,
            role=role if isinstance(role, str) else None,
            type=str(item.get("type", "message")),
            text=display_text(item),
            item=item,
            created_at=message.created_at,
        )


class MessageListPublic(BaseModel):
    messages: list[MessagePublic]
    next_cursor: str | None


class AppendedPublic(BaseModel):
    """Where the batch landed: its messages have the seqs ``first_seq`` … ``last_seq`` (the write
    returns no count; ``GET /v1/sessions/{id}`` has it)."""

    appended: int
    first_seq: int
    last_seq: int


class PoppedPublic(BaseModel):
    message: MessagePublic


class HealthPublic(BaseModel):
    status: Literal["ok"] = "ok"


class ErrorDetail(BaseModel):
    code: str
    message: str
    details: list[dict[str, Any]] | None = None


class ErrorPublic(BaseModel):
    error: ErrorDetail


def display_text(item: dict[str, Any]) -> str:
    """What a chat UI shows for an item: its text content, or "" (tool calls, reasoning...)."""
    content = item.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(
            part["text"]
            for part in content
            if isinstance(part, dict) and isinstance(part.get("text"), str)
        )
    return ""


class DeletionPublic(BaseModel):
    """A delete-all request: ``pending``, ``running`` (``sessions_deleted`` so far), ``done``."""

    deletion_id: str
    status: DeletionStatus
    sessions_deleted: int
    requested_at: Timestamp
    completed_at: Timestamp | None

    @classmethod
    def of(cls, deletion: Deletion) -> DeletionPublic:
        return cls.model_validate(deletion.model_dump())
