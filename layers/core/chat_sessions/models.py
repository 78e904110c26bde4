"""Domain models and the validation rules for what callers may store (one place for each rule)."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    TypeAdapter,
)
from pydantic import ValidationError as PydanticValidationError

from .errors import InvalidInputError

CONTROL_CHARACTERS = r"\x00-\x1f\x7f-\x9f\u2028\u2029"
"""C0, DEL, C1 and the Unicode line and paragraph separators, as a regex class body: never in a
user id or a path id (they break log lines, headers and URLs)."""
MAX_TITLE_CHARS = 256
MAX_METADATA_KEYS = 16
MAX_METADATA_KEY_CHARS = 64
MAX_METADATA_VALUE_CHARS = 512
MAX_METADATA_BYTES = 2048


def _metadata_within_bytes(value: dict[str, str]) -> dict[str, str]:
    size = len(json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode())
    if size > MAX_METADATA_BYTES:
        raise ValueError(f"metadata is {size} bytes as JSON; the maximum is {MAX_METADATA_BYTES}")
    return value


UserId = Annotated[
    str, StringConstraints(min_length=1, max_length=256, pattern=f"^[^{CONTROL_CHARACTERS}]+$")
]
MAX_SESSION_ID_BYTES = 1024


def _session_id_within_bytes(value: str) -> str:
    try:
        size = len(value.encode())
    except UnicodeEncodeError:
        raise ValueError("a session id must be valid Unicode text (no lone surrogates)") from None
    if not 1 <= size <= MAX_SESSION_ID_BYTES:
        raise ValueError(f"a session id is 1 to {MAX_SESSION_ID_BYTES} bytes as UTF-8")
    return value


SessionId = Annotated[str, AfterValidator(_session_id_within_bytes)]
"""Any id the Agents SDK can pass: a non-empty string of at most 1,024 UTF-8 bytes (``keys``
makes every such id its own partition)."""


def _addressable_in_a_path(value: str) -> str:
    if value in (".", ".."):
        raise ValueError("'.' and '..' are path steps, not ids: URLs cannot address them")
    return value


ApiSessionId = Annotated[
    str,
    StringConstraints(
        min_length=1,
        max_length=MAX_SESSION_ID_BYTES,
        pattern=f"^[^/?\\\\{CONTROL_CHARACTERS}]+$",
    ),
    AfterValidator(_session_id_within_bytes),
    AfterValidator(_addressable_in_a_path),
]
"""The ids the HTTP API takes, percent-encoded (UTF-8) in its paths: every ``SessionId`` that a
URL addresses through API Gateway, which decodes paths before routing. Not ``/``, ``?``,
``\\`` or control characters, and not ``.`` or ``..`` (clients and proxies resolve those)."""
DeletionId = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{32}$")]
"""A delete-all request's id (as the API issues them)."""
Title = Annotated[str, StringConstraints(max_length=MAX_TITLE_CHARS)]
BranchId = Annotated[str, StringConstraints(pattern=r"^(main|b_[2-7a-z]{20})$")]
"""``main``, or an id the store chose (``store.branch_state.new_branch_id``)."""
BranchName = Annotated[str, StringConstraints(min_length=1, max_length=MAX_TITLE_CHARS)]
MetadataKey = Annotated[str, StringConstraints(min_length=1, max_length=MAX_METADATA_KEY_CHARS)]
MetadataValue = Annotated[str, StringConstraints(max_length=MAX_METADATA_VALUE_CHARS)]
Metadata = Annotated[
    dict[MetadataKey, MetadataValue],
    Field(max_length=MAX_METADATA_KEYS),
    AfterValidator(_metadata_within_bytes),
]
Order = Literal["asc", "desc"]

_user_id = TypeAdapter(UserId)
_session_id = TypeAdapter(SessionId)
_title = TypeAdapter(Title)
_metadata = TypeAdapter(Metadata)
_branch_id = TypeAdapter(BranchId)
_branch_name = TypeAdapter(BranchName)


def _checked(adapter: TypeAdapter[Any], value: object, field: str) -> Any:
    try:
        return adapter.validate_python(value, strict=True)
    except PydanticValidationError as exc:
        details = [
            {"loc": [field, *err["loc"]], "type": err["type"], "msg": err["msg"]}
            for err in exc.errors(include_url=False, include_context=False, include_input=False)
        ]
        raise InvalidInputError(f"invalid {field}", details=details) from None


def check_user_id(value: object) -> str:
    return str(_checked(_user_id, value, "user_id"))


def check_session_id(value: object) -> str:
    return str(_checked(_session_id, value, "session_id"))


def check_title(value: object) -> str:
    return str(_checked(_title, value, "title"))


def check_metadata(value: object) -> dict[str, str]:
    return dict(_checked(_metadata, value, "metadata"))


def check_branch_id(value: object) -> str:
    return str(_checked(_branch_id, value, "branch"))


def check_branch_name(value: object) -> str:
    return str(_checked(_branch_name, value, "name"))


class Usage(BaseModel):
    """Model tokens spent in a session's chat turns."""

    model_config = ConfigDict(frozen=True)

    input_tokens: int = 0
    output_tokens: int = 0
    total_tokens: int = 0


class ChatSession(BaseModel):
    """A session as stored; ``first_seq``/``last_seq`` are the visible message window (internal)."""

    model_config = ConfigDict(frozen=True)

    session_id: str
    title: str | None
    metadata: dict[str, str]
    message_count: int
    created_at: datetime
    updated_at: datetime
    expires_at: datetime
    ttl_seconds: int
    """The idle lifetime: each write moves ``expires_at`` to now + this."""
    usage: Usage = Usage()
    first_seq: int = Field(exclude=True)
    last_seq: int = Field(exclude=True)
    history_start: int = Field(default=0, exclude=True)
    """The first seq of the current history (creation, or the last clear): Idempotency-Key
    records from before it are not this history's."""
    active_branch: str = "main"
    """The branch every read and write without a branch named goes to (docs/branches.md)."""
    turn_in_progress: str | None = None
    """The id of the chat turn whose lease is held now (docs/chat.md, "Resumable streams")."""


class StoredMessage(BaseModel):
    """One Agents SDK item as stored, with its position in the session."""

    model_config = ConfigDict(frozen=True)

    seq: int
    item: dict[str, Any]
    created_at: datetime
    vouched: bool = Field(default=False, exclude=True)
    """Its row is marked as written by trusted code (``privilege``)."""
    usage: Usage | None = None
    """On the user message that opens a chat turn: the tokens that turn spent."""


class SessionPage(BaseModel):
    sessions: list[ChatSession]
    next_cursor: str | None


class MessagePage(BaseModel):
    messages: list[StoredMessage]
    next_cursor: str | None


class StoredResponse(BaseModel):
    """The answer an idempotent write recorded under its key, and where its batch landed."""

    model_config = ConfigDict(frozen=True)

    status: int
    body: str
    first_seq: int
    last_seq: int


class AppendResult(BaseModel):
    """Where a batch landed: sequence numbers ``first_seq`` to ``last_seq``."""

    appended: int
    first_seq: int
    last_seq: int
    removed: int = 0
    """Messages the retention cap removed in the same write (the oldest whole turns)."""
    replay: StoredResponse | None = None
    """Set when an earlier call with the same Idempotency-Key and request stored this batch:
    this call wrote nothing, and the fields above describe that earlier batch."""


class Branch(BaseModel):
    """One path through a session's tree of messages (docs/branches.md)."""

    model_config = ConfigDict(frozen=True)

    branch_id: str
    name: str | None
    parent_branch: str | None
    """The branch it was forked from (``None`` for ``main``)."""
    fork_seq: int | None
    """The last message it shares with its parent (``0``: none; ``None`` for ``main``)."""
    message_count: int
    """Messages in its history: the ones it shares and its own."""
    created_at: datetime
    updated_at: datetime
    active: bool
    usage: Usage = Usage()
    """The tokens its own turns spent (``main``: the session's, less the other branches')."""


class Summary(BaseModel):
    """What a branch's context window uses in place of its older turns (docs/branches.md)."""

    model_config = ConfigDict(frozen=True)

    text: str
    high_seq: int
    """The last message it covers: the window goes on after it."""
    covered: int
    """How many messages it covers."""
    model: str
    """What wrote it (a model's name, or ``offline``)."""
    created_at: datetime


class BranchPage(BaseModel):
    branches: list[Branch]
    next_cursor: str | None


DeletionStatus = Literal["pending", "running", "done"]


class Deletion(BaseModel):
    """A request to delete every session a user owned when they made it (asynchronous)."""

    model_config = ConfigDict(frozen=True)

    deletion_id: str
    status: DeletionStatus
    sessions_deleted: int
    """Headers deleted so far; their messages follow through the cascade."""
    requested_at: datetime
    completed_at: datetime | None = None
