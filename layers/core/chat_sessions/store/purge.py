"""Physical removal, for the stream consumer (docs/lifecycle.md, "Cascade").

Every purge is bounded by ``seq`` (and ``first_seq`` only moves forward), so replays delete
nothing extra and never touch a re-created session's rows, whose seqs are later.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from chat_sessions import keys

from . import header
from .context import StoreContext
from .table import ConditionFailed
from .wire import Item, n, number, s


def session(ctx: StoreContext, pk: str, *, up_to_seq: int) -> int:
    """What a deleted or expired session left: message and chunk rows with seq <= ``up_to_seq``
    (the deleted header's ``last_seq``) and its Idempotency-Key records. How many rows went."""
    return rows(ctx, pk, up_to_seq=up_to_seq) + _records(ctx, pk, below=up_to_seq + 1)


def trimmed(ctx: StoreContext, pk: str) -> int:
    """The rows below the live header's ``first_seq`` (cleared or trimmed), and the records of
    the histories before its ``history_start`` (cleared). A deleted session (no header) is left
    to ``session``. How many rows went."""
    found = header.get(ctx, pk, "first_seq, history_start, created_at")
    if found is None:
        return 0
    deleted = rows(ctx, pk, up_to_seq=number(found, "first_seq") - 1)
    return deleted + _records(ctx, pk, below=header.history_start(found))


def rows(
    ctx: StoreContext, pk: str, *, up_to_seq: int, from_seq: int = 0, consistent: bool = False
) -> int:
    """The message and chunk rows of ``pk`` with ``from_seq <= seq <= up_to_seq``; found with a
    ``consistent`` read where a row written a moment ago must not be missed."""
    deleted = 0
    for low, high in (
        (keys.chunk_sk(from_seq, 0), keys.last_chunk_sk(up_to_seq)),
        (keys.message_sk(from_seq), keys.message_sk(up_to_seq)),
    ):
        bounds = {":low": s(low), ":high": s(high)}
        found = _keys(ctx, pk, "sk BETWEEN :low AND :high", bounds, consistent=consistent)
        deleted += ctx.table.delete_keys(found)
    return deleted


def delete_row(ctx: StoreContext, pk: str, sk: str) -> None:
    """One row by key (a processed trim marker); a no-op when it is already gone."""
    ctx.table.call("delete_item", TableName=ctx.table.name, Key={"pk": s(pk), "sk": s(sk)})


def _records(ctx: StoreContext, pk: str, *, below: int) -> int:
    """The session's Idempotency-Key records of histories before ``below``. Each delete is
    conditional on it, so a record the same key wrote afresh meanwhile stays."""
    found = _keys(
        ctx,
        pk,
        "begins_with(sk, :prefix)",
        {":prefix": s(keys.IDEMPOTENCY_PREFIX), ":below": n(below)},
        filter_expression="seq < :below",
    )
    deleted = 0
    for record in found:
        with contextlib.suppress(ConditionFailed):
            ctx.table.call(
                "delete_item",
                TableName=ctx.table.name,
                Key=record,
                ConditionExpression="seq < :below",
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
