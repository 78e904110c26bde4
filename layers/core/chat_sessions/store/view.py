"""A branch's view, newest first: its own window, then the segments it shares, the newest first
(docs/branches.md, "Reading").

Every segment holds at least the message it was cut at (pinned, so never removed), and counts
its rows, so the newest N come from the own window and at most N segments, each read with
exactly its share, all in one round trip: a cost bounded by N, not by the depth of the fork or
the history.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

from chat_sessions import keys
from chat_sessions.errors import BranchNotFoundError

from . import header, rows
from .branch_state import Segment, Window, base_key, belongs, record_key, window_of
from .context import StoreContext
from .wire import Item


def newest(
    ctx: StoreContext, pk: str, window: Window, limit: int | None, *, own: list[Item] | None = None
) -> list[Item]:
    """Up to ``limit`` rows of the view (all when ``None``), newest first: one round trip, the
    own window's Query and each needed segment's together, each asked for exactly its share.
    ``own``: the own window's newest rows, when the caller read them already (``main``'s Query
    from its header)."""
    reads: list[Callable[[], list[Item]]] = []
    if own is None:
        take = window.own_count if limit is None else min(limit, window.own_count)
        reads.append(partial(_own_newest, ctx, pk, window, take))
        rest = None if limit is None else limit - take
    else:
        rest = None if limit is None else limit - len(own)
    for segment in reversed(window.segments):
        take = segment.count if rest is None else min(rest, segment.count)
        if take <= 0:
            break
        reads.append(partial(_segment_newest, ctx, pk, segment, take))
        rest = None if rest is None else rest - take
    found = list(own or [])
    for part in ctx.table.together(reads):
        found += part
    return found if limit is None else found[:limit]


def named(ctx: StoreContext, pk: str, branch: str, now: float) -> tuple[Item, Window]:
    """A live session's header and a branch's window, read together (GetItem and BatchGetItem
    in one round trip)."""
    reads: list[Callable[[], Any]] = [
        partial(header.get, ctx, pk),
        partial(ctx.table.batch_get, [record_key(pk, branch), base_key(pk, branch)]),
    ]
    found_header, items = ctx.table.together(reads)
    current = header.live(found_header, now)
    by_key = {item["sk"]["S"]: item for item in items}
    record = by_key.get(keys.branch_sk(branch))
    if record is None or not belongs(branch, current):
        raise BranchNotFoundError("branch not found")
    return current, window_of(record, branch, by_key.get(keys.base_sk(branch)))


def _own_newest(ctx: StoreContext, pk: str, window: Window, limit: int) -> list[Item]:
    if limit == 0 or window.first_seq > window.last_seq:
        return []
    bounds = rows.between(pk, window.first_seq, window.last_seq, window.branch)
    return _descending(ctx, bounds, limit)


def _segment_newest(ctx: StoreContext, pk: str, segment: Segment, limit: int | None) -> list[Item]:
    return _descending(ctx, rows.between(pk, segment.low, segment.high, segment.owner), limit)


def _descending(ctx: StoreContext, bounds: dict[str, Any], limit: int | None) -> list[Item]:
    request = {**bounds, "ScanIndexForward": False}
    if limit is not None:
        request["Limit"] = limit
    found: list[Item] = []
    for page in ctx.table.pages(request):
        found += page.get("Items", [])
        if limit is not None:
            if len(found) >= limit:
                return found[:limit]
            request["Limit"] = limit - len(found)
    return found


def page(
    ctx: StoreContext, pk: str, window: Window, *, after: int | None, limit: int, ascending: bool
) -> tuple[list[Item], bool]:
    """One page of the view past the seq ``after`` (oldest first when ``ascending``), and whether
    rows remain beyond it: one Query a part (a segment, or the own window) the page reaches."""
    parts = [(s.owner, s.low, s.high) for s in window.segments]
    if window.own_count and window.first_seq <= window.last_seq:
        parts.append((window.branch, window.first_seq, window.last_seq))
    if not ascending:
        parts.reverse()
    found: list[Item] = []
    for owner, low, high in parts:
        if after is not None:
            low, high = (max(low, after + 1), high) if ascending else (low, min(high, after - 1))
        if low > high:
            continue
        if len(found) == limit:
            return found, True  # a later part holds rows (every part holds some)
        bounds = {**rows.between(pk, low, high, owner), "ScanIndexForward": ascending}
        request = {**bounds, "Limit": limit - len(found)}
        answer = ctx.table.call("query", TableName=ctx.table.name, **request)
        found += answer.get("Items", [])
        if len(found) == limit and "LastEvaluatedKey" in answer:
            return found, True
    return found, False
