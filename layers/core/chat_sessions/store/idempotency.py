"""Idempotency-Key records: written in the transaction of the write they belong to, and the
decisions a retry takes from them (docs/lifecycle.md, "Idempotent writes").

A record belongs to one history of one session: one whose ``seq`` is below the header's
``history_start`` was written before a clear, or by an earlier session with the same id. It is
never replayed and the next write with that key overwrites it.
"""

from __future__ import annotations

import math

from chat_sessions import keys
from chat_sessions.clock import to_iso
from chat_sessions.codec import CorruptItemError, decode_response
from chat_sessions.errors import ChatSessionsError, IdempotencyKeyReusedError
from chat_sessions.idempotency import IDEMPOTENCY_TTL_SECONDS, IdempotencyRecord
from chat_sessions.models import StoredResponse

from . import header
from .context import StoreContext
from .wire import Item, n, number, s

OF_MAIN = "attribute_not_exists(branch)"
"""A record of a write to ``main``: the only kind a new history makes stale."""
ABOVE_EVERY_SEQ = 2**63
"""The history start of a session a write itself creates: every record there is older."""


def record_put(
    ctx: StoreContext,
    pk: str,
    record: IdempotencyRecord,
    response: Item,
    now: float,
    seqs: tuple[int, int],
    stale_below: int | None = None,
    branch: str = keys.MAIN_BRANCH,
) -> Item:
    """The Put of a key's record: only if the key is new, its 24 h are over, or (``stale_below``)
    it was recorded in an earlier history. ``seq`` is the batch's last seq, which bounds what a
    cascade of the session deletes. A record of a write to another branch than ``main`` names it:
    a clear of ``main`` (which starts a new history of the session) leaves it current."""
    item: Item = {
        "pk": s(pk),
        "sk": s(keys.idempotency_sk(record.key)),
        "request_hash": s(record.request_hash),
        "status": n(record.status),
        "first_seq": n(seqs[0]),
        "seq": n(seqs[1]),
        "created_at": s(to_iso(now)),
        "expires_at": n(math.floor(now) + IDEMPOTENCY_TTL_SECONDS),
        **response,
    }
    if branch != keys.MAIN_BRANCH:
        item["branch"] = s(branch)
    condition = f"attribute_not_exists(sk) OR {header.EXPIRED}"
    values: Item = {":now_s": n(math.floor(now))}
    if stale_below is not None:
        condition += f" OR ({OF_MAIN} AND seq < :history_start)"
        values[":history_start"] = n(stale_below)
    return {
        "Put": {
            "TableName": ctx.table.name,
            "Item": item,
            "ConditionExpression": condition,
            "ExpressionAttributeValues": values,
            "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
        }
    }


def is_stale(record: Item, history_start: int) -> bool:
    """Whether a record was written in an earlier history (before a clear of ``main``, or a
    re-creation; a record of another branch's write stays current until its 24 h are over)."""
    return "branch" not in record and number(record, "seq") < history_start


def history_start_for(ctx: StoreContext, pk: str, seen: Item | None, now: float) -> int:
    """The history start of the session a write went to: from the header it saw, else read;
    for a session the write itself creates (absent or expired), every record is older."""
    current = seen if seen is not None else header.get(ctx, pk)
    if current is None or not header.is_live(current, now):
        return ABOVE_EVERY_SEQ
    return header.history_start(current)


def find(
    ctx: StoreContext,
    user_id: str,
    session_id: str,
    key: str,
    request_hash: str,
    *,
    history_start: int | None = None,
) -> StoredResponse | None:
    """The response recorded under ``key`` within its 24 h in the session's current history
    (``history_start``), or ``None``. One consistent GetItem.

    Raises:
        IdempotencyKeyReusedError: The key was recorded for a different request.
    """
    pk = header.session_pk(user_id, session_id)
    found = ctx.table.get({"pk": s(pk), "sk": s(keys.idempotency_sk(key))})
    if found is None or not header.is_live(found, ctx.clock()):
        return None
    if history_start is not None and is_stale(found, history_start):
        return None
    return recorded(found, request_hash)


def recorded(record: Item, request_hash: str) -> StoredResponse:
    """The response a record holds, for the same request only."""
    if record["request_hash"]["S"] != request_hash:
        raise IdempotencyKeyReusedError(
            "this Idempotency-Key was used for a different request in the last 24 hours; "
            "use a new key for a new request"
        )
    try:
        body = decode_response(record)
    except CorruptItemError:
        raise ChatSessionsError("an idempotency record is unreadable") from None
    return StoredResponse(
        status=number(record, "status"),
        body=body,
        first_seq=number(record, "first_seq"),
        last_seq=number(record, "seq"),
    )
