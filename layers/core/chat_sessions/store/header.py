"""The session header: the one row that says whether a session is live, and how far it reaches.

Liveness ("the header exists and ``expires_at > now``") and sliding expiry are stated here once;
every read and write of a header goes through these helpers.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import NoReturn

from chat_sessions import keys
from chat_sessions.clock import from_iso, to_iso, to_micros
from chat_sessions.errors import ChatSessionsError, SessionNotFoundError
from chat_sessions.models import ChatSession, Usage, check_session_id, check_user_id

from .branch_state import new_incarnation
from .context import StoreContext
from .table import ConditionFailed
from .wire import Item, n, number, s, string_map, strings_of

UNEXPIRED = "expires_at > :now_s"
"""A row is live while its ``expires_at`` (the TTL attribute) is after now: TTL removes expired
rows only days later, so every read and write compares with the clock itself."""
EXPIRED = "expires_at <= :now_s"
LIVE = f"attribute_exists(pk) AND {UNEXPIRED}"
"""The condition of every write that needs a live session."""
SLIDE_EXPIRY = "expires_at = if_not_exists(ttl_seconds, :ttl) + :now_s"
"""Activity moves expiry to now + the session's own TTL, or the deployment's, without a read."""


def session_pk(user_id: str, session_id: str) -> str:
    """The partition of one user's session, from validated ids."""
    return keys.partition_key(check_user_id(user_id), check_session_id(session_id))


def header_key(pk: str) -> Item:
    return {"pk": s(pk), "sk": s(keys.SESSION_SK)}


def is_live(row: Item, now: float) -> bool:
    """``UNEXPIRED``, read in Python: a header, a key's record, a delete-all request."""
    return number(row, "expires_at") > now


def not_found() -> SessionNotFoundError:
    return SessionNotFoundError("session not found")


def live(header: Item | None, now: float) -> Item:
    """``header`` if it is a live session's; otherwise ``SessionNotFoundError``."""
    if header is None or not is_live(header, now):
        raise not_found()
    return header


def conflict_or_missing(
    failed: ConditionFailed, now: float, conflict: ChatSessionsError
) -> NoReturn:
    """A header condition failed: ``conflict`` if the session is live, else it is not found."""
    live(failed.item, now)
    raise conflict from None


def get(ctx: StoreContext, pk: str, projection: str | None = None) -> Item | None:
    """A session's header (consistent read), or ``None``."""
    return ctx.table.get(header_key(pk), projection)


def update(
    ctx: StoreContext,
    pk: str,
    expression: str,
    *,
    condition: str,
    values: Item,
    returns: str = "ALL_NEW",
) -> Item:
    """One conditional UpdateItem of a header; its ``returns`` image. A failed condition raises
    ``ConditionFailed`` carrying the header as it was."""
    response = ctx.table.call(
        "update_item",
        TableName=ctx.table.name,
        Key=header_key(pk),
        UpdateExpression=expression,
        ConditionExpression=condition,
        ExpressionAttributeValues=values,
        ReturnValues=returns,
        ReturnValuesOnConditionCheckFailure="ALL_OLD",
    )
    return dict(response.get("Attributes", {}))


def new(
    ctx: StoreContext,
    user_id: str,
    session_id: str,
    now: float,
    *,
    title: str | None = None,
    metadata: dict[str, str] | None = None,
    first_seq: int | None = None,
    ttl_seconds: int | None = None,
    written_by: str | None = None,
) -> Item:
    """A new session's header. ``written_by`` names the write that creates it, so that write
    recognises its own header when its answer was lost and it is retried."""
    first = to_micros(now) if first_seq is None else first_seq
    ttl = ctx.session_ttl_seconds if ttl_seconds is None else ttl_seconds
    header: Item = {
        **header_key(keys.partition_key(user_id, session_id)),
        "user_id": s(user_id),
        "session_id": s(session_id),
        "metadata": string_map(metadata or {}),
        "created_at": s(to_iso(now)),
        "updated_at": s(to_iso(now)),
        "expires_at": n(math.floor(now) + ttl),
        "message_count": n(0),
        "first_seq": n(first),
        "last_seq": n(first - 1),
        "history_start": n(first),
        "incarnation": s(new_incarnation()),
    }
    if ttl_seconds is not None:
        header["ttl_seconds"] = n(ttl_seconds)
    if title is not None:
        header["title"] = s(title)
        header["title_source"] = s("user")
    if written_by is not None:
        header["written_by"] = s(written_by)
    return header


def history_start(header: Item) -> int:
    """The first seq of the session's current history: set at creation, moved by a clear
    (trims leave it). Headers written before the attribute existed began at ``created_at``."""
    if "history_start" in header:
        return number(header, "history_start")
    # Less 1 µs: created_at's text can round 1 µs above the first batch's seq.
    return to_micros(from_iso(header["created_at"]["S"]).timestamp()) - 1


def visible_count(header: Item) -> int:
    """The active branch's messages: ``active_count`` while a branch other than ``main`` is
    active (its writes keep it), else ``main``'s own and shared ones (docs/branches.md)."""
    if "active_branch" in header:
        return number(header, "active_count")
    return number(header, "message_count") + number(header, "inherited_count", 0)


def session_of(header: Item, default_ttl_seconds: int, now: float | None = None) -> ChatSession:
    """The session a header describes; its turn is in progress while its lease is unexpired at
    ``now`` (any lease it names when ``None``)."""
    running = "turn_id" in header and (now is None or number(header, "turn_expires_at") > now)
    return ChatSession(
        session_id=header["session_id"]["S"],
        title=header["title"]["S"] if "title" in header else None,
        metadata=strings_of(header.get("metadata")),
        message_count=visible_count(header),
        created_at=from_iso(header["created_at"]["S"]),
        updated_at=from_iso(header["updated_at"]["S"]),
        expires_at=datetime.fromtimestamp(number(header, "expires_at"), UTC),
        ttl_seconds=number(header, "ttl_seconds", default_ttl_seconds),
        usage=Usage(
            input_tokens=number(header, "usage_input_tokens", 0),
            output_tokens=number(header, "usage_output_tokens", 0),
            total_tokens=number(header, "usage_total_tokens", 0),
        ),
        first_seq=number(header, "first_seq"),
        last_seq=number(header, "last_seq"),
        history_start=history_start(header),
        active_branch=header["active_branch"]["S"] if "active_branch" in header else "main",
        turn_in_progress=header["turn_id"]["S"] if running else None,
    )
