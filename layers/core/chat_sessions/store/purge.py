"""Physical removal, for the stream consumer (docs/lifecycle.md, "Cascade").

Every purge is bounded by ``seq`` (and ``first_seq`` only moves forward), so replays delete
nothing extra and never touch a re-created session's rows, whose seqs are later.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

from chat_sessions import keys

from . import header, summaries
from .branch_state import incarnation_of
from .context import StoreContext
from .idempotency import OF_MAIN
from .table import ConditionFailed
from .wire import Item, n, number, s

MAX_SEQ = 10**keys.SEQ_DIGITS - 1


def session(ctx: StoreContext, pk: str, *, up_to_seq: int, incarnation: str | None = None) -> int:
    """What a deleted or expired session left: message and chunk rows with seq <= ``up_to_seq``
    (the deleted header's ``last_seq``), its Idempotency-Key records and turns' stream logs,
    and the items and summaries of its branches (those of its ``incarnation``). How many rows
    went."""
    deleted = rows(ctx, pk, up_to_seq=up_to_seq) + _records(ctx, pk, below=up_to_seq + 1)
    deleted += turn_logs(ctx, pk, up_to_seq=up_to_seq)
    deleted += _summaries(ctx, pk, lambda found: found == (incarnation or ""))
    return deleted + (
        branches_of(ctx, pk, lambda found: found == incarnation) if incarnation else 0
    )


def trimmed(ctx: StoreContext, pk: str, marker_sk: str | None = None) -> int:
    """What a trim marker asks for. ``main``'s (or an old marker's): the rows below the live
    header's ``first_seq`` (cleared or trimmed) but the ones other branches share (up to its
    ``pinned_seq``), the records of the histories before its ``history_start`` (cleared), and
    after a header replaced an expired one, the old one's branches. A branch's: its rows the
    same way, or all but the shared ones once it is deleted. A deleted session (no header) is
    left to ``session``. How many rows went."""
    marker = ctx.table.get({"pk": s(pk), "sk": s(marker_sk)}) if marker_sk else None
    found = header.get(ctx, pk)
    if found is None:
        return 0
    if marker is not None and "branch" in marker:
        return _branch_trimmed(ctx, pk, marker)
    shared = number(found, "pinned_seq", 0)
    deleted = rows(ctx, pk, up_to_seq=number(found, "first_seq") - 1, from_seq=shared + 1)
    deleted += _records(ctx, pk, below=header.history_start(found), main_only=True)
    if marker is not None and "replaced" in marker:
        live = found["incarnation"]["S"] if "incarnation" in found else None
        deleted += branches_of(ctx, pk, lambda incarnation: incarnation != live)
        deleted += _summaries(ctx, pk, lambda incarnation: incarnation != (live or ""))
    return deleted


def _summaries(ctx: StoreContext, pk: str, doomed: Callable[[str], bool]) -> int:
    """The branches' summaries of the incarnations that are ``doomed``."""
    request: dict[str, Any] = {
        "KeyConditionExpression": "pk = :pk AND begins_with(sk, :prefix)",
        "ExpressionAttributeValues": {":pk": s(pk), ":prefix": s(summaries.SUMMARY_PREFIX)},
        "ProjectionExpression": "pk, sk, incarnation",
    }
    found = [item for page in ctx.table.pages(request) for item in page.get("Items", [])]
    doomed_keys = [
        {"pk": item["pk"], "sk": item["sk"]}
        for item in found
        if doomed(item.get("incarnation", {}).get("S", ""))
    ]
    return ctx.table.delete_keys(doomed_keys)


def _branch_trimmed(ctx: StoreContext, pk: str, marker: Item) -> int:
    """A branch's clear or trim: its rows below its ``first_seq``, above its pin. Its delete's
    marker (flagged, with the final pin): all its rows above that pin. A clear's or trim's
    marker met after the delete does nothing: the delete's own marker has the pin."""
    branch = marker["branch"]["S"]
    record = ctx.table.get({"pk": s(pk), "sk": s(keys.branch_sk(branch))})
    if record is None and "deleted" not in marker:
        return 0
    shared = max(number(marker, "pinned_seq", 0), number(record or {}, "pinned_seq", 0))
    below = number(record, "first_seq") - 1 if record is not None else MAX_SEQ
    return rows(ctx, pk, up_to_seq=below, from_seq=shared + 1, branch=branch)


def branches_of(ctx: StoreContext, pk: str, doomed: Callable[[str], bool]) -> int:
    """Every item (record, base, rows, chunks) of the branches whose incarnation is ``doomed``."""
    bounds = {":low": s("BR"), ":high": s("BS")}  # BRANCH#, BRBASE#, BRCHUNK#, BRMSG#
    found = _keys(ctx, pk, "sk BETWEEN :low AND :high", bounds)
    return ctx.table.delete_keys(
        key for key in found if doomed(incarnation_of(keys.branch_of(key["sk"]["S"])))
    )


def rows(
    ctx: StoreContext,
    pk: str,
    *,
    up_to_seq: int,
    from_seq: int = 0,
    consistent: bool = False,
    branch: str = keys.MAIN_BRANCH,
) -> int:
    """``branch``'s own message and chunk rows with ``from_seq <= seq <= up_to_seq``; found with
    a ``consistent`` read where a row written a moment ago must not be missed."""
    deleted = 0
    if from_seq > up_to_seq:
        return 0
    for low, high in (
        (keys.chunk_sk(from_seq, 0, branch), keys.last_chunk_sk(up_to_seq, branch)),
        (keys.message_sk(from_seq, branch), keys.message_sk(up_to_seq, branch)),
    ):
        bounds = {":low": s(low), ":high": s(high)}
        found = _keys(ctx, pk, "sk BETWEEN :low AND :high", bounds, consistent=consistent)
        deleted += ctx.table.delete_keys(found)
    return deleted


def turn_logs(ctx: StoreContext, pk: str, *, up_to_seq: int) -> int:
    """The chat turns' stream logs of the histories that began by ``up_to_seq`` + 1 (an empty
    history's start; a session made again with the same id begins after it). They would expire
    within the hour anyway."""
    found = _keys(
        ctx,
        pk,
        "begins_with(sk, :prefix)",
        {":prefix": s(keys.TURN_LOG_PREFIX), ":up_to": n(up_to_seq + 1)},
        filter_expression="history_start <= :up_to",
    )
    return ctx.table.delete_keys(found)


def delete_row(ctx: StoreContext, pk: str, sk: str) -> None:
    """One row by key (a processed trim marker); a no-op when it is already gone."""
    ctx.table.call("delete_item", TableName=ctx.table.name, Key={"pk": s(pk), "sk": s(sk)})


def _records(ctx: StoreContext, pk: str, *, below: int, main_only: bool = False) -> int:
    """The session's Idempotency-Key records of histories before ``below`` (``main_only``: of
    writes to ``main``, which alone a clear of ``main`` makes stale). Each delete is conditional
    on it, so a record the same key wrote afresh meanwhile stays."""
    condition = f"seq < :below AND {OF_MAIN}" if main_only else "seq < :below"
    found = _keys(
        ctx,
        pk,
        "begins_with(sk, :prefix)",
        {":prefix": s(keys.IDEMPOTENCY_PREFIX), ":below": n(below)},
        filter_expression=condition,
    )
    deleted = 0
    for record in found:
        with contextlib.suppress(ConditionFailed):
            ctx.table.call(
                "delete_item",
                TableName=ctx.table.name,
                Key=record,
                ConditionExpression=condition,
                ExpressionAttributeValues={":below": n(below)},
            )
            deleted += 1
    return deleted


def _keys(
    ctx: StoreContext,
    pk: str,
    sort_key_condition: str,
    values: Item,
    *,
    filter_expression: str | None = None,
    consistent: bool = False,
) -> Iterator[Item]:
    """The keys of the rows of ``pk`` that match, page by page."""
    request: dict[str, Any] = {
        "KeyConditionExpression": f"pk = :pk AND {sort_key_condition}",
        "ExpressionAttributeValues": {":pk": s(pk), **values},
        "ProjectionExpression": "pk, sk",
        "ConsistentRead": consistent,
    }
    if filter_expression is not None:
        request["FilterExpression"] = filter_expression
    for page in ctx.table.pages(request):
        yield from page.get("Items", [])
