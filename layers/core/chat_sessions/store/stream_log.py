"""A chat turn's stream log (docs/chat.md, "Resumable streams"): its events in numbered batches
in the session's own partition, for clients that re-attach to the turn.

A batch's key is fixed before it is first written and its content only grows, so a write that is
retried (failed, or applied with its answer lost) overwrites it with a superset: never a
duplicate, never a gap. Batches expire ``TTL_SECONDS`` after they are written.
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass
from typing import Any

from chat_sessions import keys

from . import header
from .context import StoreContext
from .table import ConditionFailed
from .wire import Item, n, number, s

TTL_SECONDS = 3600
"""How long a turn's log stays resumable after the turn began."""

Event = tuple[int, str, dict[str, Any]]
"""``(id, name, data)``: one SSE event as it was sent."""


@dataclass(frozen=True)
class Batch:
    index: int
    events: list[Event]
    final: bool
    """It holds the turn's terminal event (``done`` or ``error``)."""
    history_start: int
    """The session's history start when the turn began: a clear since then hides the log."""
    expires_at: int
    """When the turn's whole log expires (the TTL attribute: the same on every batch)."""


@dataclass(frozen=True)
class Holder:
    """What a resume needs of the session header: whose lease it is, and which history."""

    turn_id: str | None
    history_start: int


def put(ctx: StoreContext, pk: str, turn_id: str, batch: Batch) -> None:
    """Write one batch, unless the table holds it with as much already: a write that arrives
    late (sent before a retry of it that succeeded) never shrinks it."""
    text = json.dumps(batch.events, ensure_ascii=False, separators=(",", ":"))
    item: Item = {
        "pk": s(pk),
        "sk": s(keys.turn_log_sk(turn_id, batch.index)),
        "events": s(text),
        "first_id": n(batch.events[0][0]),
        "last_id": n(batch.events[-1][0]),
        "final": {"BOOL": batch.final},
        "history_start": n(batch.history_start),
        "expires_at": n(batch.expires_at),
    }
    with contextlib.suppress(ConditionFailed):  # held already, with these events or more
        ctx.table.call(
            "put_item",
            TableName=ctx.table.name,
            Item=item,
            ConditionExpression="attribute_not_exists(sk) OR last_id <= :last",
            ExpressionAttributeValues={":last": n(batch.events[-1][0])},
        )


def read(ctx: StoreContext, pk: str, turn_id: str, from_batch: int) -> list[Batch]:
    """The turn's unexpired batches from ``from_batch`` on, in order (one strongly consistent
    Query; more pages only past 1 MB)."""
    request: dict[str, Any] = {
        "TableName": ctx.table.name,
        "KeyConditionExpression": "pk = :pk AND sk BETWEEN :low AND :high",
        "ExpressionAttributeValues": {
            ":pk": s(pk),
            ":low": s(keys.turn_log_sk(turn_id, from_batch)),
            ":high": s(keys.turn_log_end(turn_id)),
        },
        "ConsistentRead": True,
    }
    now = ctx.clock()
    found: list[Batch] = []
    for page in ctx.table.pages(request):
        found.extend(_batch(item) for item in page.get("Items", []) if header.is_live(item, now))
    return found


def holder(ctx: StoreContext, pk: str) -> Holder:
    """The live session's lease holder (a lapsed lease is no one's). Raises
    ``SessionNotFoundError``."""
    now = ctx.clock()
    found = header.live(
        header.get(ctx, pk, "expires_at, turn_id, turn_expires_at, history_start, created_at"),
        now,
    )
    held = "turn_id" in found and number(found, "turn_expires_at") > now
    return Holder(found["turn_id"]["S"] if held else None, header.history_start(found))


def opened(ctx: StoreContext, pk: str, turn_id: str, from_batch: int) -> tuple[Holder, list[Batch]]:
    """A resume's first read: the holder and the batches, together (one round trip)."""
    both: list[Any] = ctx.table.together(
        [lambda: holder(ctx, pk), lambda: read(ctx, pk, turn_id, from_batch)]
    )
    return both[0], both[1]


def _batch(item: Item) -> Batch:
    events = [(int(i), str(name), dict(data)) for i, name, data in json.loads(item["events"]["S"])]
    return Batch(
        index=int(item["sk"]["S"].rsplit("#", 1)[1]),
        events=events,
        final=bool(item["final"]["BOOL"]),
        history_start=number(item, "history_start"),
        expires_at=number(item, "expires_at"),
    )
