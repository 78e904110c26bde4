"""A session's history: the newest N, pages, one batch by seq range; pop and clear.

A message is visible only inside its header's window, ``first_seq <= seq <= last_seq``, while the
header is live (docs/data-model.md). Reads are bounded by that window once the header is known, so
rows a clear or a delete left for the cascade cost at most the first small page.
"""

from __future__ import annotations

from typing import Any

from chat_sessions import keys
from chat_sessions.cursor import decode_cursor, encode_cursor
from chat_sessions.errors import (
    ConflictError,
    InvalidCursorError,
    InvalidInputError,
)
from chat_sessions.models import ChatSession, MessagePage, Order, StoredMessage

from . import branch_history, branch_state, header, retention, rows, view
from .context import StoreContext
from .sessions import session
from .table import Cancelled
from .wire import Item, n, number, s

FIRST_PAGE_ROWS = 50
"""Rows the first Query of an unbounded read asks for, before it knows the window."""


def newest_rows(
    ctx: StoreContext, pk: str, limit: int | None, now: float
) -> tuple[Item, list[Item]]:
    """The live header and up to ``limit`` visible message rows (all when ``None``), newest first.

    One descending Query from ``SESSION`` returns the header first. Its pages after the first are
    bounded by the window, so rows below ``first_seq`` are never read past the first page.
    """
    request: dict[str, Any] = {
        "TableName": ctx.table.name,
        "KeyConditionExpression": "pk = :pk AND sk BETWEEN :low AND :high",
        "ExpressionAttributeValues": {
            ":pk": s(pk),
            ":low": s(keys.MESSAGE_PREFIX),
            ":high": s(keys.SESSION_SK),
        },
        "ScanIndexForward": False,
        "ConsistentRead": True,
        "Limit": FIRST_PAGE_ROWS + 1 if limit is None else limit + 1,
    }
    found: Item | None = None
    visible: list[Item] = []
    while True:
        page = ctx.table.call("query", **request)
        for item in page.get("Items", []):
            if found is None:
                found = header.live(item if item["sk"]["S"] == keys.SESSION_SK else None, now)
                if limit == 0:
                    return found, visible
                continue
            seq = keys.seq_of(item["sk"]["S"])
            if seq < number(found, "first_seq"):
                return found, visible  # cleared or trimmed: the window ends here
            if seq <= number(found, "last_seq"):
                visible.append(item)
                if limit is not None and len(visible) >= limit:
                    return found, visible
        if "LastEvaluatedKey" not in page:
            return header.live(found, now), visible
        request["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        if found is not None:
            if number(found, "last_seq") < number(found, "first_seq"):
                return found, visible  # an empty window (what was read was staged or cleared)
            _within_window(request, found, limit, len(visible))


def _within_window(request: dict[str, Any], found: Item, limit: int | None, seen: int) -> None:
    """Bound the rest of a newest-first read to the header's window: rows below it (cleared)
    and above it (a staged batch not yet committed) are not read again."""
    bounds = request["ExpressionAttributeValues"]
    bounds[":low"] = s(keys.message_sk(number(found, "first_seq")))
    bounds[":high"] = s(keys.message_sk(number(found, "last_seq")))
    last_read = request["ExclusiveStartKey"]["sk"]["S"]
    if last_read == keys.SESSION_SK or keys.seq_of(last_read) > number(found, "last_seq"):
        del request["ExclusiveStartKey"]  # no row of the window yet: start it afresh
    request.pop("Limit", None)
    if limit is not None:
        request["Limit"] = limit - seen + 1


def read_newest(
    ctx: StoreContext, user_id: str, session_id: str, limit: int | None, branch: str | None = None
) -> tuple[ChatSession, list[StoredMessage]]:
    """The session and the newest ``limit`` messages (all when ``None``) of ``branch`` (``None``:
    the active one), oldest first. ``main`` active or named: one Query, from the header down."""
    pk = header.session_pk(user_id, session_id)
    if limit is not None and limit < 0:
        raise InvalidInputError("limit must not be negative")
    now = ctx.clock()
    if branch is not None and branch != keys.MAIN_BRANCH:
        found, window = view.named(ctx, pk, branch, now)
        newest = view.newest(ctx, pk, window, limit)
    else:
        found, newest = newest_rows(ctx, pk, limit, now)
        target = branch or branch_state.active_branch(found)
        if target != keys.MAIN_BRANCH or "has_base" in found:
            _, window = branch_state.load(ctx, pk, found, target)
            mine = newest if target == keys.MAIN_BRANCH else None
            newest = view.newest(ctx, pk, window, limit, own=mine)
    messages = rows.decode(ctx, pk, newest)
    messages.reverse()
    return session(ctx, found), messages


def read_batch(
    ctx: StoreContext,
    user_id: str,
    session_id: str,
    first_seq: int,
    last_seq: int,
    branch: str = keys.MAIN_BRANCH,
) -> list[StoredMessage]:
    """The messages one append stored in ``branch``, by its seq range, oldest first; those
    removed since (pop, clear, purge) are missing."""
    pk = header.session_pk(user_id, session_id)
    found: list[Item] = []
    for page in ctx.table.pages(rows.between(pk, first_seq, last_seq, branch)):
        found += page.get("Items", [])
    return rows.decode(ctx, pk, found)


def list_page(
    ctx: StoreContext,
    user_id: str,
    session_id: str,
    *,
    limit: int,
    cursor: str | None,
    order: Order,
    branch: str | None = None,
) -> MessagePage:
    """One page of ``branch``'s whole history (the active one when ``None``), oldest first
    (``asc``) or newest first (``desc``)."""
    if not 1 <= limit <= 100:
        raise InvalidInputError("limit must be between 1 and 100")
    if order not in ("asc", "desc"):
        raise InvalidInputError("order must be 'asc' or 'desc'")
    after = None
    if cursor is not None:
        position = decode_cursor(cursor, "messages")
        after = position.get("s")
        if not isinstance(after, int) or position.get("o") != order:
            raise InvalidCursorError("the cursor is not one this API issued for this listing")
    pk = header.session_pk(user_id, session_id)
    current = header.live(header.get(ctx, pk), ctx.clock())
    target = branch or branch_state.active_branch(current)
    if target == keys.MAIN_BRANCH and "has_base" not in current:
        return _main_page(ctx, pk, current, limit=limit, after=after, order=order)
    _, window = branch_state.load(ctx, pk, current, target)
    found, more = view.page(ctx, pk, window, after=after, limit=limit, ascending=order == "asc")
    edge = keys.seq_of(found[-1]["sk"]["S"]) if found else None
    next_cursor = encode_cursor("messages", s=edge, o=order) if more and edge else None
    return MessagePage(messages=rows.decode(ctx, pk, found), next_cursor=next_cursor)


def _main_page(
    ctx: StoreContext, pk: str, current: Item, *, limit: int, after: int | None, order: Order
) -> MessagePage:
    """A page of ``main``'s own window: one Query inside ``[first_seq, last_seq]``."""
    low, high = number(current, "first_seq"), number(current, "last_seq")
    if after is not None:
        low, high = (max(low, after + 1), high) if order == "asc" else (low, min(high, after - 1))
    if low > high:
        return MessagePage(messages=[], next_cursor=None)
    request = {**rows.between(pk, low, high), "ScanIndexForward": order == "asc", "Limit": limit}
    page = ctx.table.call("query", TableName=ctx.table.name, **request)
    found = page.get("Items", [])
    next_cursor = None
    if found and "LastEvaluatedKey" in page:
        edge = keys.seq_of(found[-1]["sk"]["S"])
        if edge != (high if order == "asc" else low):
            next_cursor = encode_cursor("messages", s=edge, o=order)
    return MessagePage(messages=rows.decode(ctx, pk, found), next_cursor=next_cursor)


def pop(
    ctx: StoreContext, user_id: str, session_id: str, branch: str | None = None
) -> StoredMessage | None:
    """Remove and return the newest message (``None`` when there is none).

    The delete is conditional on the row still existing, in one transaction with the header:
    two concurrent pops never return the same message, the loser moves on to the next one. The
    transaction's token answers a resend after a lost answer, so one pop removes one row.
    """
    pk = header.session_pk(user_id, session_id)
    for attempt in ctx.table.attempts():
        now = ctx.clock()
        found, newest = newest_rows(ctx, pk, 1, now)
        target = branch or branch_state.active_branch(found)
        if target != keys.MAIN_BRANCH:
            return branch_history.pop(ctx, pk, target)
        shared = bool(newest) and keys.seq_of(newest[0]["sk"]["S"]) <= number(
            found, "pinned_seq", 0
        )
        if shared or (not newest and "has_base" in found):  # the row stays, or the path shortens
            return branch_history.pop(ctx, pk, keys.MAIN_BRANCH)
        if not newest:
            return None
        row = newest[0]
        seq = keys.seq_of(row["sk"]["S"])
        decoded = rows.decode(ctx, pk, [row])  # before the delete: its chunks still exist
        try:
            ctx.table.transact(_pop_actions(ctx, pk, row, seq, now))
        except Cancelled:
            ctx.table.backoff(attempt)
            continue  # re-read: the row is gone, or the session cleared, deleted or expired
        if decoded:
            return decoded[0]
        # An unreadable row was dropped (as SQLiteSession does); pop the next one.
    raise ConflictError("too many concurrent writes to this session; retry")


def _pop_actions(ctx: StoreContext, pk: str, row: Item, seq: int, now: float) -> list[Item]:
    table = ctx.table.name
    delete_row = {
        "Delete": {
            "TableName": table,
            "Key": rows.message_key(pk, seq),
            "ConditionExpression": "attribute_exists(sk)",
        }
    }
    shrink = {
        "Update": {
            "TableName": table,
            "Key": header.header_key(pk),
            "UpdateExpression": f"SET updated_at = :now_iso, {header.SLIDE_EXPIRY} "
            "ADD message_count :minus_one",
            "ConditionExpression": f"{header.LIVE} AND first_seq <= :seq "
            "AND (attribute_not_exists(pinned_seq) OR pinned_seq < :seq)",  # a fork meanwhile
            "ExpressionAttributeValues": {
                **ctx.activity(now),
                ":minus_one": n(-1),
                ":seq": n(seq),
            },
        }
    }
    chunks = [
        {"Delete": {"TableName": table, "Key": rows.chunk_key(pk, seq, i)}}
        for i in range(rows.parts_of(row))
    ]
    return [delete_row, shrink, *chunks]


def clear(ctx: StoreContext, user_id: str, session_id: str, branch: str | None = None) -> None:
    """Remove every message; the session stays.

    One transaction moves the window (and the history's start, so no Idempotency-Key record of
    the cleared history replays) past every message, and writes a trim marker for the cascade.
    """
    pk = header.session_pk(user_id, session_id)
    if branch is not None and branch != keys.MAIN_BRANCH:
        branch_history.clear(ctx, pk, branch)
        return
    now = ctx.clock()
    # Naming no branch: ``main`` while it is active; else the active one (then one more read).
    condition = header.LIVE + (" AND attribute_not_exists(active_branch)" if branch is None else "")
    move_window = {
        "Update": {
            "TableName": ctx.table.name,
            "Key": header.header_key(pk),
            "UpdateExpression": "SET first_seq = last_seq + :one, "
            "history_start = last_seq + :one, message_count = :zero, inherited_count = :zero, "
            "base_version = if_not_exists(base_version, :zero) + :one, "
            f"updated_at = :now_iso, {header.SLIDE_EXPIRY} REMOVE has_base",
            "ConditionExpression": condition,
            "ExpressionAttributeValues": {
                **ctx.activity(now),
                ":one": n(1),
                ":zero": n(0),
            },
        }
    }
    # main's summary goes stale with the history start it moves, and its base with has_base.
    marker = {"Put": {"TableName": ctx.table.name, "Item": retention.marker(ctx, pk)}}
    try:
        ctx.table.transact([move_window, marker])
    except Cancelled:
        current = header.live(header.get(ctx, pk), ctx.clock())
        if branch is not None or "active_branch" not in current:
            raise header.not_found() from None  # it went, or expired, meanwhile
        branch_history.clear(ctx, pk, current["active_branch"]["S"])


__all__ = ["clear", "list_page", "newest_rows", "pop", "read_batch", "read_newest"]
