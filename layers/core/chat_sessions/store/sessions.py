"""Sessions: create, read, list, rename, title and delete (one header each)."""

from __future__ import annotations

import contextlib
import math
import uuid
from typing import Any

from chat_sessions import keys
from chat_sessions.clock import from_iso
from chat_sessions.cursor import decode_cursor, encode_cursor
from chat_sessions.errors import InvalidCursorError, InvalidInputError, TitleSetByUserError
from chat_sessions.models import (
    ChatSession,
    SessionPage,
    check_metadata,
    check_session_id,
    check_title,
    check_user_id,
)

from . import header, lease, retention
from .context import StoreContext
from .table import Cancelled, ConditionFailed, new_token
from .wire import Item, n, s, string_map


class Unset:
    """Marks an argument the caller did not pass (``None`` means "remove")."""


UNSET: Any = Unset()


def create(
    ctx: StoreContext,
    user_id: str,
    session_id: str | None,
    *,
    title: str | None,
    metadata: dict[str, str] | None,
    ttl_seconds: int | None,
    turn: tuple[str, int] | None = None,
) -> tuple[ChatSession, bool]:
    """Create a session, or return the live one that has this id (never overwritten). With
    ``turn`` (a turn id and lease seconds), a session created here holds that turn's lease."""
    user_id = check_user_id(user_id)
    session_id = check_session_id(session_id) if session_id is not None else uuid.uuid4().hex
    title = check_title(title) if title is not None else None
    metadata = check_metadata(metadata) if metadata is not None else {}
    if ttl_seconds is not None:
        check_ttl(ctx, ttl_seconds)
    now = ctx.clock()
    token = new_token()
    item = header.new(
        ctx,
        user_id,
        session_id,
        now,
        title=title,
        metadata=metadata,
        ttl_seconds=ttl_seconds,
        written_by=token,
    )
    if turn is not None:
        item = lease.held(ctx, item, turn[0], lease_seconds=turn[1])
    try:
        response = ctx.table.call(
            "put_item",
            TableName=ctx.table.name,
            Item=item,
            ConditionExpression=f"attribute_not_exists(pk) OR {header.EXPIRED}",
            ExpressionAttributeValues={":now_s": n(math.floor(now))},
            ReturnValues="ALL_OLD",
            ReturnValuesOnConditionCheckFailure="ALL_OLD",
        )
    except ConditionFailed as failed:
        existing = failed.item
        if existing is None:
            return get(ctx, user_id, session_id), False
        if existing.get("written_by") != s(token):
            return session(ctx, existing), False
        # Our own header, met by a retry whose first attempt was applied but not answered: it
        # may have replaced an expired one, whose rows then need the marker.
        retention.put_marker(ctx, item["pk"]["S"])
        return session(ctx, existing), True
    if "Attributes" in response:  # replaced an expired header TTL had not removed yet
        retention.put_marker(ctx, item["pk"]["S"])
    return session(ctx, item), True


def get(ctx: StoreContext, user_id: str, session_id: str) -> ChatSession:
    """The live session, or ``SessionNotFoundError`` (absent, expired, or not this user's)."""
    pk = header.session_pk(user_id, session_id)
    return session(ctx, header.live(header.get(ctx, pk), ctx.clock()))


def session(ctx: StoreContext, item: Item) -> ChatSession:
    return header.session_of(item, ctx.session_ttl_seconds, ctx.clock())


def check_ttl(ctx: StoreContext, ttl_seconds: int) -> None:
    low, high = ctx.ttl_bounds
    if isinstance(ttl_seconds, bool) or not isinstance(ttl_seconds, int):
        raise InvalidInputError("ttl_seconds must be an integer")
    if not low <= ttl_seconds <= high:
        raise InvalidInputError(
            f"ttl_seconds must be between {low} and {high}",
            details=[{"loc": ["ttl_seconds"], "type": "range", "min": low, "max": high}],
        )


LIST_READ_PAGES = 4
"""Index pages one listing reads at most; a sparse filter then returns a short page and a cursor."""
LIST_LATER_PAGE = 100
"""Headers a later page reads when the first did not fill the page (filtered or expired)."""


def list_page(
    ctx: StoreContext,
    user_id: str,
    *,
    limit: int,
    cursor: str | None,
    metadata: dict[str, str] | None,
) -> SessionPage:
    """The user's live sessions, most recent activity first, at most ``limit``, filtered by
    ``metadata`` (every pair must match).

    Reads at most ``LIST_READ_PAGES`` index pages, whatever the filter skips (expired sessions
    TTL has not removed yet, non-matching metadata), so the page may be short: ``next_cursor`` is
    set whenever the index holds more, and only ``None`` at the end.
    """
    user_id = check_user_id(user_id)
    if not 1 <= limit <= 100:
        raise InvalidInputError("limit must be between 1 and 100")
    request = _list_request(ctx, user_id, check_metadata(metadata or {}), limit)
    if cursor is not None:
        request["ExclusiveStartKey"] = _cursor_key(user_id, cursor)
    found: list[Item] = []
    position: Item | None = None
    for page_number, page in enumerate(ctx.table.pages(request), start=1):
        items = page.get("Items", [])
        room = limit - len(found)
        found += items[:room]
        position = page.get("LastEvaluatedKey")
        if len(items) > room:
            position = found[-1]  # stopped inside the page: go on after the last one returned
        if len(found) == limit or position is None or page_number == LIST_READ_PAGES:
            break
        request["Limit"] = LIST_LATER_PAGE
    next_cursor = None if position is None else _cursor_of(user_id, position)
    return SessionPage(sessions=[session(ctx, item) for item in found], next_cursor=next_cursor)


def _list_request(
    ctx: StoreContext, user_id: str, wanted: dict[str, str], limit: int
) -> dict[str, Any]:
    request: dict[str, Any] = {
        "IndexName": keys.ACTIVITY_INDEX,
        "KeyConditionExpression": "user_id = :user",
        "FilterExpression": " AND ".join(
            [header.UNEXPIRED] + [f"metadata.#k{i} = :v{i}" for i in range(len(wanted))]
        ),
        "ExpressionAttributeValues": {":user": s(user_id), ":now_s": n(math.floor(ctx.clock()))},
        "ScanIndexForward": False,
        "Limit": limit,
    }
    for i, (key, value) in enumerate(wanted.items()):
        request.setdefault("ExpressionAttributeNames", {})[f"#k{i}"] = key
        request["ExpressionAttributeValues"][f":v{i}"] = s(value)
    return request


def _cursor_of(user_id: str, position: Item) -> str:
    """A cursor for an index position: its ``updated_at`` and the session part of its key."""
    part = position["pk"]["S"][len(user_id) + 1 :]
    return encode_cursor("sessions", u=position["updated_at"]["S"], p=part)


def _cursor_key(user_id: str, cursor: str) -> Item:
    """The index start key for a sessions cursor, rebuilt under the caller's own user id."""
    position = decode_cursor(cursor, "sessions")
    updated_at, part = position.get("u"), position.get("p")
    invalid = InvalidCursorError("the cursor is not one this API issued for this listing")
    if not isinstance(updated_at, str) or not isinstance(part, str) or not part or "#" in part:
        raise invalid
    try:
        from_iso(updated_at)
    except ValueError:
        raise invalid from None
    return {
        **header.header_key(f"{user_id}#{part}"),
        "user_id": s(user_id),
        "updated_at": s(updated_at),
    }


def update(
    ctx: StoreContext, user_id: str, session_id: str, *, title: str | None, metadata: Any
) -> ChatSession:
    """Set the title (``None`` removes it) and/or replace the metadata; counts as activity.
    Only ``SET``s and ``REMOVE``s: a resend applies the same values again."""
    pk = header.session_pk(user_id, session_id)
    now = ctx.clock()
    sets = ["updated_at = :now_iso", header.SLIDE_EXPIRY]
    removes: list[str] = []
    values = ctx.activity(now)
    if title is None:
        removes += ["title", "title_source"]
    elif title is not UNSET:
        sets += ["title = :title", "title_source = :user"]
        values.update({":title": s(check_title(title)), ":user": s("user")})
    if metadata is not UNSET:
        sets.append("metadata = :metadata")
        values[":metadata"] = string_map(check_metadata(metadata))
    expression = "SET " + ", ".join(sets) + (" REMOVE " + ", ".join(removes) if removes else "")
    try:
        updated = header.update(ctx, pk, expression, condition=header.LIVE, values=values)
    except ConditionFailed:
        raise header.not_found() from None
    return session(ctx, updated)


def set_generated_title(
    ctx: StoreContext, user_id: str, session_id: str, title: str
) -> ChatSession:
    """Set a generated title, unless the user set one (``TitleSetByUserError``)."""
    pk = header.session_pk(user_id, session_id)
    now = ctx.clock()
    try:
        updated = header.update(
            ctx,
            pk,
            "SET title = :title, title_source = :auto",
            condition=f"{header.LIVE} AND "
            "(attribute_not_exists(title_source) OR title_source = :auto)",
            values={
                ":title": s(check_title(title)),
                ":auto": s("auto"),
                ":now_s": n(math.floor(now)),
            },
        )
    except ConditionFailed as failed:
        user_set = TitleSetByUserError("the user set this title; clear it to generate one")
        header.conflict_or_missing(failed, now, user_set)
    return session(ctx, updated)


def delete(ctx: StoreContext, user_id: str, session_id: str) -> bool:
    """Delete the session: one write, whatever its history; its rows follow in the cascade.

    A transaction (its token makes a resend after a lost answer a no-op), conditional on a live
    header, so the answer says exactly whether this call removed a live session.
    """
    pk = header.session_pk(user_id, session_id)
    now = ctx.clock()
    delete_live = {
        "Delete": {
            "TableName": ctx.table.name,
            "Key": header.header_key(pk),
            "ConditionExpression": header.LIVE,
            "ExpressionAttributeValues": {":now_s": n(math.floor(now))},
            "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
        }
    }
    try:
        ctx.table.transact([delete_live])
    except Cancelled as cancelled:
        if cancelled.item(0) is not None:  # expired, not yet removed by TTL: remove it now,
            with contextlib.suppress(ConditionFailed):  # unless re-created meanwhile
                ctx.table.call(
                    "delete_item",
                    TableName=ctx.table.name,
                    Key=header.header_key(pk),
                    ConditionExpression=header.EXPIRED,
                    ExpressionAttributeValues={":now_s": n(math.floor(now))},
                )
        return False
    return True
