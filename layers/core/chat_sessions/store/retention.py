"""The retention cap: which oldest whole turns an append removes, and the markers that purge them.

A turn starts at a user message; rows carry ``starts_turn`` so a trim finds turn boundaries without
decoding items. Cutting just before a user message never splits a turn and never separates a tool
call from its output. See docs/lifecycle.md, "Retention cap".
"""

from __future__ import annotations

import logging
import math
import uuid
from dataclasses import dataclass

from chat_sessions import keys
from chat_sessions.clock import to_iso
from chat_sessions.codec import EncodedItem, starts_turn
from chat_sessions.errors import ConflictError, ThrottledError, UnavailableError

from . import rows
from .context import StoreContext
from .wire import Item, n, number, s

logger = logging.getLogger(__name__)

MARKER_TTL_SECONDS = 14 * 86_400
"""A marker the consumer never applied (dead-lettered) goes after this; its rows go with the
session."""
LOOKAHEAD_ROWS = 20
"""Rows read past the excess when looking for the next turn's start (a turn is usually short)."""


@dataclass(frozen=True)
class Trim:
    """A planned trim: the window's new start (``None``: the batch's own first seq), how many
    messages that removes, and the header state it was planned from (the write's condition)."""

    cut_seq: int | None
    removed: int
    seen_first: int
    seen_last: int
    seen_count: int


def plan(
    ctx: StoreContext,
    pk: str,
    current: Item,
    batch: int,
    first_of_batch: EncodedItem,
    branch: str = keys.MAIN_BRANCH,
) -> Trim | None:
    """Which oldest whole turns to remove so that ``batch`` more messages fit under the cap: the
    window then starts at the first user message at or after the excess (or at the batch, when it
    starts a turn and nothing older may stay). ``None`` when no turn boundary allows it. Reads the
    oldest rows only, a page at a time, until that boundary. ``current``: the header, or on a
    branch its record (the window whose own rows the cap counts)."""
    first, last = number(current, "first_seq"), number(current, "last_seq")
    count = number(current, "message_count")
    excess = count + batch - ctx.max_stored_items
    if excess < count:
        request = {**rows.between(pk, first, last, branch), "Limit": excess + LOOKAHEAD_ROWS}
        index = 0
        for page in ctx.table.pages(request):
            for row in page.get("Items", []):
                if index >= excess and opens_turn(ctx, pk, row):
                    return Trim(keys.seq_of(row["sk"]["S"]), index, first, last, count)
                index += 1
            request["Limit"] = LOOKAHEAD_ROWS  # a long turn: read on, a little at a time
    if first_of_batch.starts_turn:
        return Trim(None, count, first, last, count)
    return None


def opens_turn(ctx: StoreContext, pk: str, row: Item) -> bool:
    """Whether a message row is a user message; rows written before the ``starts_turn`` flag
    existed are decoded to tell."""
    if "starts_turn" in row:
        return bool(row["starts_turn"]["BOOL"])
    decoded = rows.decode(ctx, pk, [row])
    return bool(decoded) and starts_turn(decoded[0].item)


def marker(ctx: StoreContext, pk: str, *, replaced: bool = False) -> Item:
    """A new trim marker: its INSERT makes the stream consumer purge below ``first_seq``, and,
    when a new header ``replaced`` an expired one, what the old one's branches left."""
    now = ctx.clock()
    item: Item = {
        "pk": s(pk),
        "sk": s(keys.trim_sk(uuid.uuid4().hex)),
        "created_at": s(to_iso(now)),
        "expires_at": n(math.floor(now) + MARKER_TTL_SECONDS),
    }
    if replaced:
        item["replaced"] = {"BOOL": True}
    return item


def put_marker(ctx: StoreContext, pk: str) -> None:
    """A trim marker on its own, after a create replaced an expired header (or may have: its
    answer was lost). Its key is chosen once, so resends write the same item. The create has
    happened, so a marker that gets no answer in time is only logged: the session's own cascade
    purges those rows later (they lie below its ``last_seq``)."""
    try:
        item = marker(ctx, pk, replaced=True)
        ctx.table.call("put_item", TableName=ctx.table.name, Item=item)
    except (ConflictError, ThrottledError, UnavailableError) as exc:  # no answer in time
        logger.warning("trim marker not written", extra={"error_code": exc.code})
