"""The turn lease: one chat turn at a time per session (docs/chat.md, "The turn lease").

The header carries ``turn_id`` and ``turn_expires_at``. A turn's commit (an append with a
``TurnCommit``) is conditional on still holding it and releases it in the same write.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from chat_sessions.errors import TurnInProgressError
from chat_sessions.models import ChatSession

from . import header
from .context import StoreContext
from .table import ConditionFailed
from .wire import Item, n, number, s


@dataclass(frozen=True)
class TurnCommit:
    """What a chat turn's commit adds to an append: its lease id and its token usage."""

    turn_id: str
    input_tokens: int = 0
    output_tokens: int = 0
    title: str | None = None
    """Set only if the session has no title yet (a user's title is never replaced)."""


def begin(
    ctx: StoreContext, user_id: str, session_id: str, turn_id: str, *, lease_seconds: int
) -> ChatSession:
    """Take the lease (one UpdateItem, ``take``); the session as it now stands."""
    taken = take(ctx, user_id, session_id, turn_id, lease_seconds=lease_seconds)
    return header.session_of(taken, ctx.session_ttl_seconds)


def take(
    ctx: StoreContext, user_id: str, session_id: str, turn_id: str, *, lease_seconds: int
) -> Item:
    """Take the lease (one UpdateItem); the header as it now stands.

    A resend whose first attempt took the lease but lost the answer meets its own ``turn_id``
    and succeeds: the holder is never locked out by itself.

    Raises:
        SessionNotFoundError; TurnInProgressError while another turn's lease is unexpired.
    """
    pk = header.session_pk(user_id, session_id)
    now = ctx.clock()
    try:
        updated = header.update(
            ctx,
            pk,
            # The session lives at least its TTL past the lease, so a long turn on a
            # short-lived session does not find it expired when it commits.
            "SET turn_id = :turn, turn_expires_at = :lease_end, "
            "expires_at = if_not_exists(ttl_seconds, :ttl) + :lease_end",
            condition=f"{header.LIVE} AND "
            "(attribute_not_exists(turn_id) OR turn_expires_at <= :now_s)",
            values={
                ":turn": s(turn_id),
                ":lease_end": n(math.floor(now) + lease_seconds),
                ":now_s": n(math.floor(now)),
                ":ttl": n(ctx.session_ttl_seconds),
            },
        )
    except ConditionFailed as failed:
        current = header.live(failed.item, now)
        if current.get("turn_id") == s(turn_id):
            return current  # ours: taken by the attempt whose answer was lost
        raise TurnInProgressError("another turn of this session is in progress") from None
    return updated


def held(ctx: StoreContext, item: Item, turn_id: str, *, lease_seconds: int) -> Item:
    """A new session's header with the lease already taken by ``turn_id`` (``POST /v1/chat``
    creates both in one write), its expiry as ``take`` would move it."""
    lease_end = math.floor(ctx.clock()) + lease_seconds
    return {
        **item,
        "turn_id": s(turn_id),
        "turn_expires_at": n(lease_end),
        "expires_at": n(number(item, "ttl_seconds", ctx.session_ttl_seconds) + lease_end),
    }


def end(ctx: StoreContext, user_id: str, session_id: str, turn_id: str) -> None:
    """Release the lease of a turn that stores nothing (failed); a no-op if it is not held."""
    pk = header.session_pk(user_id, session_id)
    try:
        header.update(
            ctx,
            pk,
            "REMOVE turn_id, turn_expires_at",
            condition="turn_id = :turn",
            values={":turn": s(turn_id)},
            returns="NONE",
        )
    except ConditionFailed:
        return  # released already, lapsed and taken by another turn, or the session is gone
