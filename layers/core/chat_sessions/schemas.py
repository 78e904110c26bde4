"""The public API's request and response bodies (docs/api.md). ``XCreate``/``XUpdate`` come in,
``XPublic`` goes out; unknown request fields are rejected."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PlainSerializer, field_validator, model_validator
from pydantic.json_schema import SkipJsonSchema

from .clock import to_iso
from .models import (
    ApiSessionId,
    Branch,
    BranchId,
    BranchName,
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


class BranchCreate(_Request):
    """A fork of ``source`` (the active branch when absent) at ``from_seq``."""

    from_seq: int | None = Field(
        default=None,
        ge=0,
        description="The last message the new branch shares with its source: a seq of the "
        "source's history. Absent or null: its newest message; 0: none (an empty branch).",
    )
    source: BranchId | None = Field(
        default=None, description="The branch to fork; absent or null: the active branch."
    )
    name: BranchName | None = None
    activate: bool = Field(
        default=True, description="Make the new branch the active one (the default)."
    )


class BranchUpdate(_Request):
    """Absent fields stay as they are; ``name: null`` removes the name. At least one field."""

    model_config = ConfigDict(json_schema_extra={"minProperties": 1})

    name: BranchName | None = Field(
        default=None, description="The branch's new name; null removes it. `main` has none."
    )
    active: Literal[True] | SkipJsonSchema[None] = Field(
        default=None, description="`true` makes this the active branch (absent: unchanged)."
    )

    @field_validator("active")
    @classmethod
    def _true_when_given(cls, value: Literal[True] | None) -> Literal[True]:
        if value is None:
            raise ValueError("active is true, or absent")
        return value

    @model_validator(mode="after")
    def _changes_something(self) -> BranchUpdate:
        if not self.model_fields_set:
            raise ValueError("give a name, or active: true")
        return self


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
    active_branch: str = Field(
        description="The branch reads and writes go to when they name none (`main` at first)."
    )
    turn_in_progress: str | None = Field(
        default=None,
        description="The id of the chat turn running now (its lease is held), or null: a client "
        "can re-attach to its stream (GET /v1/sessions/{id}/turns/{turn_id}/events).",
    )

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


class BranchPublic(BaseModel):
    """One path through a session's tree of messages (docs/branches.md)."""

    branch_id: str
    name: str | None
    parent_branch: str | None = Field(description="The branch it was forked from; null for `main`.")
    fork_seq: int | None = Field(
        description="The last message it shares with its parent (0: none); null for `main`."
    )
    message_count: int = Field(description="Messages in its history: shared and its own.")
    created_at: Timestamp
    updated_at: Timestamp
    active: bool = Field(description="Whether reads and writes naming no branch go here.")

    @classmethod
    def of(cls, branch: Branch) -> BranchPublic:
        return cls.model_validate(branch.model_dump())


class BranchListPublic(BaseModel):
    branches: list[BranchPublic]
    next_cursor: str | None


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
