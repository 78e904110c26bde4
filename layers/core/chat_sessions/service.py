"""One function per API route, shared by every HTTP edge (per-route Lambdas, local server).

Each takes the caller's verified user id first and returns public models.
"""

from __future__ import annotations

import json
from functools import lru_cache

from .codec import starts_turn
from .errors import ConfirmationRequiredError, MessageNotFoundError
from .idempotency import IdempotentRequest
from .models import ChatSession, Order
from .privilege import check_caller_items
from .schemas import (
    MAX_API_ITEM_BYTES,
    AppendedPublic,
    BranchCreate,
    BranchListPublic,
    BranchPublic,
    BranchUpdate,
    DeletionPublic,
    MessageListPublic,
    MessagePublic,
    MessagesAppend,
    PoppedPublic,
    SessionCreate,
    SessionListPublic,
    SessionPublic,
    SessionUpdate,
    display_text,
)
from .store import UNSET, ChatStore


@lru_cache(maxsize=1)
def get_store() -> ChatStore:
    """The process-wide store from settings; tests call ``get_store.cache_clear()``."""
    return ChatStore()


def create_session(user_id: str, body: SessionCreate) -> tuple[SessionPublic, bool]:
    session, created = get_store().create_session(
        user_id,
        body.session_id,
        title=body.title,
        metadata=body.metadata,
        ttl_seconds=body.ttl_seconds,
    )
    return SessionPublic.of(session), created


def list_sessions(
    user_id: str, limit: int, cursor: str | None, metadata: dict[str, str]
) -> SessionListPublic:
    page = get_store().list_sessions(user_id, limit=limit, cursor=cursor, metadata=metadata)
    return SessionListPublic(
        sessions=[SessionPublic.of(s) for s in page.sessions], next_cursor=page.next_cursor
    )


def get_session(user_id: str, session_id: str) -> SessionPublic:
    return SessionPublic.of(get_store().get_session(user_id, session_id))


def update_session(user_id: str, session_id: str, body: SessionUpdate) -> SessionPublic:
    given = body.model_fields_set
    session = get_store().update_session(
        user_id,
        session_id,
        title=body.title if "title" in given else UNSET,
        metadata=(body.metadata or {}) if "metadata" in given else UNSET,
    )
    return SessionPublic.of(session)


def delete_session(user_id: str, session_id: str) -> None:
    get_store().delete_session(user_id, session_id)


CONFIRM_DELETE_ALL = "delete-all-my-sessions"


def delete_all_sessions(user_id: str, confirm: str | None) -> DeletionPublic:
    """Request the deletion of every session the caller owns; asynchronous (docs/lifecycle.md)."""
    if confirm != CONFIRM_DELETE_ALL:
        raise ConfirmationRequiredError(
            f"deleting all your sessions needs the query parameter confirm={CONFIRM_DELETE_ALL}"
        )
    return DeletionPublic.of(get_store().request_deletion(user_id))


def get_deletion(user_id: str, deletion_id: str) -> DeletionPublic:
    return DeletionPublic.of(get_store().get_deletion(user_id, deletion_id))


def list_messages(
    user_id: str,
    session_id: str,
    limit: int,
    cursor: str | None,
    order: Order,
    branch: str | None = None,
) -> MessageListPublic:
    page = get_store().list_messages(
        user_id, session_id, limit=limit, cursor=cursor, order=order, branch=branch
    )
    return MessageListPublic(
        messages=[MessagePublic.of(m) for m in page.messages], next_cursor=page.next_cursor
    )


APPEND_ROUTE = "POST /v1/sessions/{session_id}/messages"


def append_messages(
    user_id: str,
    session_id: str,
    body: MessagesAppend,
    idempotency_key: str | None = None,
    *,
    trusted: bool = False,
    branch: str | None = None,
) -> tuple[AppendedPublic, bool]:
    """Append to ``branch`` (the active one when ``None``); with an Idempotency-Key, a retry of
    the same request within 24 h appends nothing. An untrusted caller may append only user and
    assistant messages (``privilege``).

    Returns:
        The answer, and whether it replays an earlier call's (nothing was written).
    """
    if not trusted:
        check_caller_items(body.items)
    store = get_store()
    record = None
    if idempotency_key is not None:
        # The branch named is part of the request (none named: the route as it always was).
        route = APPEND_ROUTE if branch is None else f"{APPEND_ROUTE}?branch={branch}"
        request = IdempotentRequest.of(idempotency_key, route, session_id, body)
        # Recorded in the append's own transaction; a replay answers the recorded batch's seqs.
        record = request.record(json.dumps({"appended": len(body.items)}), 201)
    result = store.append_items(
        user_id,
        session_id,
        body.items,
        idempotency=record,
        max_item_bytes=MAX_API_ITEM_BYTES,
        branch=branch,
    )
    # One round trip: a transaction returns no values, so the answer says where the batch
    # landed (seqs, known before the write), not the session's count.
    public = AppendedPublic(
        appended=result.appended, first_seq=result.first_seq, last_seq=result.last_seq
    )
    return public, result.replay is not None


def clear_messages(user_id: str, session_id: str, branch: str | None = None) -> None:
    get_store().clear_items(user_id, session_id, branch=branch)


def pop_message(user_id: str, session_id: str, branch: str | None = None) -> PoppedPublic:
    message = get_store().pop_item(user_id, session_id, branch=branch)
    if message is None:
        raise MessageNotFoundError("the session has no messages")
    return PoppedPublic(message=MessagePublic.of(message))


def list_branches(
    user_id: str, session_id: str, limit: int, cursor: str | None
) -> BranchListPublic:
    page = get_store().list_branches(user_id, session_id, limit=limit, cursor=cursor)
    return BranchListPublic(
        branches=[BranchPublic.of(b) for b in page.branches], next_cursor=page.next_cursor
    )


def create_branch(user_id: str, session_id: str, body: BranchCreate) -> BranchPublic:
    branch = get_store().fork_branch(
        user_id,
        session_id,
        source=body.source,
        at_seq=body.from_seq,
        name=body.name,
        activate=body.activate,
    )
    return BranchPublic.of(branch)


def get_branch(user_id: str, session_id: str, branch_id: str) -> BranchPublic:
    return BranchPublic.of(get_store().get_branch(user_id, session_id, branch_id))


def update_branch(
    user_id: str, session_id: str, branch_id: str, body: BranchUpdate
) -> BranchPublic:
    """Rename, then activate: each write is idempotent, so a retry completes a call that
    failed between them. Naming ``main`` is refused before anything is written."""
    store = get_store()
    if "name" in body.model_fields_set:
        renamed = store.rename_branch(user_id, session_id, branch_id, body.name)
        if not body.active:
            return BranchPublic.of(renamed)
    return BranchPublic.of(store.activate_branch(user_id, session_id, branch_id))


def delete_branch(user_id: str, session_id: str, branch_id: str) -> None:
    """Idempotent: an absent branch of a live session is already deleted."""
    get_store().delete_branch(user_id, session_id, branch_id)


def open_chat(
    user_id: str, session_id: str | None, turn_id: str, *, lease_seconds: int
) -> tuple[ChatSession, bool]:
    """The session a ``POST /v1/chat`` turn runs in: a new one whose lease ``turn_id`` holds
    (``True``), or, for a retry whose key names it, the caller's existing one (``False``)."""
    return get_store().create_session_for_turn(
        user_id, session_id, turn_id, lease_seconds=lease_seconds
    )


def first_user_text(user_id: str, session_id: str) -> str:
    """What a generated title is made from: the first user message with text."""
    page = get_store().list_messages(user_id, session_id, limit=50, order="asc")
    for message in page.messages:
        if starts_turn(message.item) and display_text(message.item):
            return display_text(message.item)
    raise MessageNotFoundError("the session has no user message to title yet")


def set_generated_title(user_id: str, session_id: str, title: str) -> SessionPublic:
    return SessionPublic.of(get_store().set_generated_title(user_id, session_id, title))
