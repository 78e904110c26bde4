"""A branch's view, newest first: its own window, then the segments it shares, the newest first
(docs/branches.md, "Reading").

Every segment holds at least the message it was cut at (pinned, so never removed), and counts
its rows, so the newest N come from the own window and at most N segments, each read with
exactly its share: a cost bounded by N, not by the depth of the fork or the history.
"""

from __future__ import annotations

from typing import Any

from . import rows
from .branch_state import Segment, Window
from .context import StoreContext
from .wire import Item


def newest(
    ctx: StoreContext, pk: str, window: Window, limit: int | None, *, own: list[Item] | None = None
) -> list[Item]:
    """Up to ``limit`` rows of the view (all when ``None``), newest first. ``own``: the own
    window's newest rows, when the caller read them already (``main``'s Query from its header)."""
    found = own if own is not None else _own_newest(ctx, pk, window, limit)
    for segment in reversed(window.segments):
        wanted = None if limit is None else min(limit - len(found), segment.count)
        if wanted is not None and wanted <= 0:
            break
        found += _segment_newest(ctx, pk, segment, wanted)
    return found


def _own_newest(ctx: StoreContext, pk: str, window: Window, limit: int | None) -> list[Item]:
    if window.own_count == 0 or window.first_seq > window.last_seq:
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
