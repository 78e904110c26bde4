"""Delete everything a user owns: the request, its progress, and the run that carries it out
(docs/lifecycle.md, "Delete everything a user owns")."""

from __future__ import annotations

import math
import re
import time
import uuid
from typing import Any, cast

from chat_sessions import keys
from chat_sessions.clock import from_iso, to_iso
from chat_sessions.errors import DeletionIncompleteError, DeletionNotFoundError
from chat_sessions.models import Deletion, DeletionStatus, check_user_id

from . import header
from .context import StoreContext
from .table import Cancelled, ConditionFailed
from .wire import Item, n, number, s

PAGE_SIZE = 99
"""Sessions per index page of a delete-all: their deletes and the progress are one transaction."""
RECORD_DAYS = 30
"""How long a delete-all request stays readable (its own TTL)."""
_DELETION_ID = re.compile(r"[0-9a-f]{32}")


def request(ctx: StoreContext, user_id: str, deletion_id: str | None = None) -> Deletion:
    """Record a request to delete every session the user owns now (one PutItem). Its id is
    chosen before the first attempt, so a resend that meets its own request returns it."""
    user_id = check_user_id(user_id)
    deletion_id = deletion_id or uuid.uuid4().hex
    now = ctx.clock()
    item: Item = {
        "pk": s(keys.user_partition_key(user_id)),
        "sk": s(keys.deletion_sk(deletion_id)),
        "deletion_id": s(deletion_id),
        "status": s("pending"),
        "sessions_deleted": n(0),
        "requested_at": s(to_iso(now)),
        "expires_at": n(math.floor(now) + RECORD_DAYS * 86_400),
    }
    try:
        ctx.table.call(
            "put_item",
            TableName=ctx.table.name,
            Item=item,
            ConditionExpression="attribute_not_exists(sk)",
            ReturnValuesOnConditionCheckFailure="ALL_OLD",
        )
    except ConditionFailed as failed:
        if failed.item is None:
            raise
        return _deletion_of(failed.item)  # this request, applied by an unanswered attempt
    return _deletion_of(item)


def get(ctx: StoreContext, user_id: str, deletion_id: str) -> Deletion:
    """The user's delete-all request, or ``DeletionNotFoundError``."""
    pk = keys.user_partition_key(check_user_id(user_id))
    if not _DELETION_ID.fullmatch(deletion_id):
        raise DeletionNotFoundError("deletion not found")
    item = ctx.table.get({"pk": s(pk), "sk": s(keys.deletion_sk(deletion_id))})
    if item is None or not header.is_live(item, ctx.clock()):
        raise DeletionNotFoundError("deletion not found")
    return _deletion_of(item)


def run(ctx: StoreContext, user_partition: str, deletion_sk: str, *, budget_seconds: float) -> int:
    """Carry out a delete-all request: delete each session header the user had when asking
    (their ``REMOVE`` records then cascade), each page's deletes and their count in one
    transaction, so the count is exact whatever is retried, replayed or lost.

    Sessions created after the request stay. A finished request does nothing; one that runs out
    of ``budget_seconds`` raises ``DeletionIncompleteError`` after a page and carries on with
    what is left when run again (the stream retries it).

    Returns:
        How many headers this run deleted.
    """
    key = {"pk": s(user_partition), "sk": s(deletion_sk)}
    deadline = time.monotonic() + budget_seconds
    found = ctx.table.get(key)
    if found is None or found["status"]["S"] == "done":
        return 0
    query: dict[str, Any] = {
        "IndexName": keys.ACTIVITY_INDEX,
        "KeyConditionExpression": "user_id = :user",
        "FilterExpression": "created_at <= :asked",
        "ProjectionExpression": "pk, sk",
        "Limit": PAGE_SIZE,
        "ExpressionAttributeValues": {
            ":user": s(keys.user_of(user_partition)),
            ":asked": found["requested_at"],
        },
    }
    deleted = 0
    for page in ctx.table.pages(query):
        deleted += _delete_page(ctx, key, page["Items"], found["requested_at"])
        if "LastEvaluatedKey" in page and time.monotonic() > deadline:
            raise DeletionIncompleteError("the deletion ran out of time; it resumes on retry")
    _progress(
        ctx,
        key,
        "SET #status = :done, completed_at = :now_iso",
        {":done": s("done"), ":now_iso": s(to_iso(ctx.clock()))},
    )
    return deleted


def _delete_page(ctx: StoreContext, key: Item, headers: list[Item], asked: Item) -> int:
    """Delete a page of headers and count them in one transaction, so the count is
    exact whatever is retried or replayed: each delete is conditional on the header still being
    there (and created before the request), and those already gone are dropped and not counted.
    How many were deleted."""
    pending = [{"pk": h["pk"], "sk": h["sk"]} for h in headers]
    while pending:
        deletes = [
            {
                "Delete": {
                    "TableName": ctx.table.name,
                    "Key": header_key,
                    "ConditionExpression": "attribute_exists(pk) AND created_at <= :asked",
                    "ExpressionAttributeValues": {":asked": asked},
                }
            }
            for header_key in pending
        ]
        progress = {
            "Update": {
                "TableName": ctx.table.name,
                "Key": key,
                # ADD is exact here: the token makes a resend of this transaction a no-op.
                "UpdateExpression": "SET #status = :running ADD sessions_deleted :count",
                "ExpressionAttributeNames": {"#status": "status"},
                "ExpressionAttributeValues": {":running": s("running"), ":count": n(len(pending))},
            }
        }
        try:
            ctx.table.transact([*deletes, progress])
            return len(pending)
        except Cancelled as cancelled:  # some were deleted meanwhile: go on without them
            pending = [k for i, k in enumerate(pending) if not cancelled.failed(i)]
    return 0


def _progress(ctx: StoreContext, key: Item, update: str, values: Item) -> None:
    ctx.table.call(
        "update_item",
        TableName=ctx.table.name,
        Key=key,
        UpdateExpression=update,
        ExpressionAttributeNames={"#status": "status"},  # a reserved word
        ExpressionAttributeValues=values,
    )


def _deletion_of(item: Item) -> Deletion:
    return Deletion(
        deletion_id=item["deletion_id"]["S"],
        status=cast("DeletionStatus", item["status"]["S"]),
        sessions_deleted=number(item, "sessions_deleted"),
        requested_at=from_iso(item["requested_at"]["S"]),
        completed_at=from_iso(item["completed_at"]["S"]) if "completed_at" in item else None,
    )
