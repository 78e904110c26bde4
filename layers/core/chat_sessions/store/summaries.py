"""A branch's summary: one cumulative item, ``SUMMARY#<branch>``, that a context window uses in
place of the older turns it covers (docs/branches.md, "Compaction"). The originals stay.

A new summary replaces the old one only if it reaches further (``high < :high``), so two turns
that summarise at once write it once and a span is summarised at most once: the loser gets the
winner's. It sorts after ``SESSION``, outside every message read. ``main``'s is stale once a
clear has moved the session's ``history_start`` past the one it was written in (the clear stays
one write); a branch's clear deletes the branch's.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

from chat_sessions import keys
from chat_sessions.clock import from_iso, to_iso
from chat_sessions.models import Summary

from . import header
from .context import StoreContext
from .table import ConditionFailed
from .wire import Item, n, number, s

SUMMARY_PREFIX = "SUMMARY#"


def summary_key(pk: str, branch: str) -> Item:
    return {"pk": s(pk), "sk": s(f"{SUMMARY_PREFIX}{branch}")}


def get(ctx: StoreContext, pk: str, branch: str) -> Summary | None:
    """The branch's summary in this incarnation of the session (an older one's is not), read
    with the header in one round trip."""
    reads: list[Callable[[], Item | None]] = [
        partial(header.get, ctx, pk),
        partial(ctx.table.get, summary_key(pk, branch)),
    ]
    current, found = ctx.table.together(reads)
    live = header.live(current, ctx.clock())
    if found is None or found.get("incarnation", s("")) != s(_incarnation(live)):
        return None
    if branch == keys.MAIN_BRANCH and number(found, "history_start", 0) < header.history_start(
        live
    ):
        return None  # main was cleared since: what it summarised is gone
    return _summary_of(found)


def put(ctx: StoreContext, pk: str, branch: str, summary: Summary) -> Summary:
    """Store ``summary`` unless one reaching as far exists; the one stored either way."""
    current = header.live(header.get(ctx, pk), ctx.clock())
    incarnation = _incarnation(current)
    item = {
        **summary_key(pk, branch),
        "incarnation": s(incarnation),
        "history_start": n(header.history_start(current)),
        "text": s(summary.text),
        "high": n(summary.high_seq),
        "covered": n(summary.covered),
        "model": s(summary.model),
        "created_at": s(to_iso(summary.created_at.timestamp())),
    }
    try:
        ctx.table.call(
            "put_item",
            TableName=ctx.table.name,
            Item=item,
            ConditionExpression="attribute_not_exists(sk) OR high < :high "
            "OR incarnation <> :incarnation",
            ExpressionAttributeValues={
                ":high": n(summary.high_seq),
                ":incarnation": s(incarnation),
            },
            ReturnValuesOnConditionCheckFailure="ALL_OLD",
        )
    except ConditionFailed as failed:  # one reaching as far: written by a turn meanwhile
        return summary if failed.item is None else _summary_of(failed.item)
    return summary


def _incarnation(current: Item) -> str:
    return str(current["incarnation"]["S"]) if "incarnation" in current else ""


def delete_action(ctx: StoreContext, pk: str, branch: str) -> Item:
    """The Delete of a branch's summary, for the transaction that clears or deletes it."""
    return {"Delete": {"TableName": ctx.table.name, "Key": summary_key(pk, branch)}}


def _summary_of(item: Item) -> Summary:
    return Summary(
        text=item["text"]["S"],
        high_seq=number(item, "high"),
        covered=number(item, "covered"),
        model=item["model"]["S"],
        created_at=from_iso(item["created_at"]["S"]),
    )


__all__ = ["SUMMARY_PREFIX", "delete_action", "get", "put", "summary_key"]
