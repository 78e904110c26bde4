"""Appends too large for one transaction: reserve, stage, commit (docs/data-model.md, "Appends of
any size").

The header's reservation (``staging_id``, ``staging_first``, ``staging_last``, ``staging_until``)
holds a seq range above ``last_seq``, so nobody sees the staged rows until the commit moves
``last_seq`` over them, in one transaction. Other appends wait while it is held. One that finds it
lapsed (its stager died) revokes it and deletes what was staged before it goes on.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING

from chat_sessions import keys
from chat_sessions.clock import to_iso, to_micros
from chat_sessions.errors import BranchNotFoundError, ConflictError

from . import header, purge, rows, sessions
from .branch_state import incarnation_of
from .context import StoreContext
from .table import Cancelled, ConditionFailed
from .wire import Item, n, number, s

if TYPE_CHECKING:
    from .append import Append

LEASE_SECONDS = 60
"""How long a reservation holds without being extended; the stager extends it as it goes."""
STAGED_ROWS = 99
"""Rows per staging transaction (DynamoDB's 100 actions, less the header's check)."""
STAGED_BYTES = 3_500_000
"""Bytes per staging transaction (under the 4 MB cap, with room for keys and names)."""
REVOKED = "revoked:"
UNRESERVED = "(attribute_not_exists(reserved_seq) OR reserved_seq < :base)"
"""A new batch's seqs lie above every seq ever reserved (``reserved_seq``, never removed), so a
revoked range is never written again: a slow revoker's deletes can only meet its own orphans."""
WAIT_SECONDS = 5.0
"""How long an append waits, each time it meets another's staged batch, before ``ConflictError``
(409, retryable), so an API call ends within its function's timeout."""
POLL_SECONDS = 0.1


def highest_seq(current: Item) -> int:
    """The highest seq a header has given out: committed (``last_seq``) or reserved."""
    return max(number(current, "last_seq"), number(current, "reserved_seq", 0))


STAGING = "staging_id, staging_first, staging_last, staging_until, staging_branch"


class Reservation:
    """The seq range one staged append holds: ``first`` … ``last``, under ``token``."""

    def __init__(self, token: str, first: int, last: int, branch: str) -> None:
        self.token, self.first, self.last, self.branch = token, first, last, branch


def reserve(
    ctx: StoreContext, call: Append, known_last: int, token: str, named: str | None
) -> Reservation:
    """Take the header's reservation for ``call``'s batch to the branch ``named`` (``None``: the
    active one) under ``token`` (one UpdateItem). A resend whose first attempt took it but lost
    the answer meets its own token and carries on. The header names the branch, so a revoke
    deletes the right rows."""
    count = len(call.batch.encoded)
    branch = named or keys.MAIN_BRANCH
    for attempt in ctx.table.attempts():
        on_branch = branch != keys.MAIN_BRANCH
        now = ctx.clock()
        base = max(to_micros(now), known_last + 1)
        values = {
            ":token": s(token),
            ":base": n(base),
            ":last": n(base + count - 1),
            ":until": n(math.floor(now) + LEASE_SECONDS),
            ":now_s": n(math.floor(now)),
            ":ttl": n(ctx.session_ttl_seconds),
        }
        condition = f"{header.LIVE} AND last_seq < :base AND {UNRESERVED}"
        condition += " AND attribute_not_exists(staging_id)"
        if named is None and not on_branch:  # main, while it is the active one
            condition += " AND attribute_not_exists(active_branch)"
        if on_branch:
            values.update({":branch": s(branch), ":incarnation": s(incarnation_of(branch))})
            condition += " AND incarnation = :incarnation"
        try:
            header.update(
                ctx,
                call.pk,
                "SET staging_id = :token, staging_first = :base, staging_last = :last, "
                "reserved_seq = :last, staging_until = :until, "
                "expires_at = if_not_exists(ttl_seconds, :ttl) + :until"
                + (", staging_branch = :branch" if on_branch else ""),
                condition=condition,
                values=values,
                returns="NONE",
            )
            return Reservation(token, base, base + count - 1, branch)
        except ConditionFailed as failed:
            current = failed.item
        if current is not None and current.get("staging_id") == s(token):
            return Reservation(
                token, number(current, "staging_first"), number(current, "staging_last"), branch
            )
        live = current is not None and header.is_live(current, now)
        if named is None and not on_branch and live and current and "active_branch" in current:
            branch = current["active_branch"]["S"]  # another branch is active: stage there
            continue
        if (
            on_branch
            and current is not None
            and current.get("incarnation") != s(incarnation_of(branch))
        ):
            raise BranchNotFoundError("branch not found")
        if current is None or not header.is_live(current, now):
            if not call.create_missing or on_branch:
                raise header.not_found()
            sessions.create(
                ctx, call.user_id, call.session_id, title=None, metadata=None, ttl_seconds=None
            )
            continue
        known_last = highest_seq(current)
        if wait_for(ctx, call.pk, current, now):
            ctx.table.backoff(attempt)
    raise ConflictError("too many concurrent writes to this session; retry")


def wait_for(ctx: StoreContext, pk: str, current: Item, now: float) -> bool:
    """Meeting another append's reservation: wait while it is live, reading only the header
    (``ConflictError`` after ``WAIT_SECONDS``), revoke it if it lapsed. Whether to back off
    before the next attempt (``True`` when there was no reservation: a plain lost race)."""
    if "staging_id" not in current:
        return True
    deadline = time.monotonic() + WAIT_SECONDS
    while _held(current, now):
        if time.monotonic() > deadline:
            raise ConflictError("a large batch is being stored in this session; retry")
        ctx.table.sleep(random.uniform(POLL_SECONDS / 2, POLL_SECONDS))
        found = header.get(ctx, pk, f"pk, {STAGING}")
        if found is None or "staging_id" not in found:
            return False  # committed (or the session is gone): try again now
        current, now = found, ctx.clock()
    revoke(ctx, pk, current["staging_id"]["S"], lapsed_at=now)
    return False


def _held(current: Item, now: float) -> bool:
    """Whether a reservation is live: not lapsed, not revoked."""
    live = number(current, "staging_until") > now
    return live and not current["staging_id"]["S"].startswith(REVOKED)


def stage(ctx: StoreContext, call: Append, held: Reservation) -> None:
    """Write the batch's rows into the reserved range, each transaction conditional on still
    holding the reservation; extends it as time passes."""
    now = ctx.clock()
    until = now + LEASE_SECONDS
    for group in _groups(call, held, to_iso(now)):
        check = {
            "ConditionCheck": {
                "TableName": ctx.table.name,
                "Key": header.header_key(call.pk),
                "ConditionExpression": "staging_id = :token",
                "ExpressionAttributeValues": {":token": s(held.token)},
                "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
            }
        }
        puts = [{"Put": {"TableName": ctx.table.name, "Item": row}} for row in group]
        try:
            ctx.table.transact([check, *puts])
        except Cancelled as cancelled:
            header.live(cancelled.item(0), ctx.clock())  # deleted or expired: not found
            raise ConflictError(
                "this batch's reservation was revoked; nothing was stored"
            ) from None
        if ctx.clock() > until - LEASE_SECONDS / 2:
            until = _extend(ctx, call.pk, held)


def _groups(call: Append, held: Reservation, created_at: str) -> Iterator[list[Item]]:
    """The batch's rows in transaction-sized groups."""
    group: list[Item] = []
    size = 0
    for offset, entry in enumerate(call.batch.encoded):
        for row in rows.message_rows(call.pk, held.first + offset, entry, created_at, held.branch):
            row_size = _size(row)
            if group and (len(group) == STAGED_ROWS or size + row_size > STAGED_BYTES):
                yield group
                group, size = [], 0
            group.append(row)
            size += row_size
    if group:
        yield group


def _size(row: Item) -> int:
    payload = row.get("data") or row.get("item_z") or {}
    text = row.get("item", {}).get("S", "")
    return len(payload.get("B", b"")) + len(text.encode()) + 200


def _extend(ctx: StoreContext, pk: str, held: Reservation) -> float:
    now = ctx.clock()
    try:
        header.update(
            ctx,
            pk,
            # The session outlives the reservation, as at the reserve.
            "SET staging_until = :until, expires_at = if_not_exists(ttl_seconds, :ttl) + :until",
            condition="staging_id = :token",
            values={
                ":token": s(held.token),
                ":until": n(math.floor(now) + LEASE_SECONDS),
                ":ttl": n(ctx.session_ttl_seconds),
            },
            returns="NONE",
        )
    except ConditionFailed:
        raise ConflictError("this batch's reservation was revoked; nothing was stored") from None
    return now + LEASE_SECONDS


def revoke(ctx: StoreContext, pk: str, staging_id: str, *, lapsed_at: float | None) -> None:
    """End a reservation that will not commit: mark it revoked (so its stager can write no more;
    ``lapsed_at``: only if it has lapsed by then, else only if it is still ``staging_id``), delete
    what was staged, then remove it. Each step is idempotent, so a writer that dies in the middle
    is finished by the next one."""
    found = header.get(ctx, pk, f"pk, {STAGING}")
    if found is None or found.get("staging_id") != s(staging_id):
        return
    revoked = staging_id if staging_id.startswith(REVOKED) else REVOKED + staging_id
    if revoked != staging_id:
        condition = "staging_id = :id"
        values: Item = {":id": s(staging_id), ":revoked": s(revoked)}
        if lapsed_at is not None:
            condition += " AND staging_until <= :now_s"
            values[":now_s"] = n(math.floor(lapsed_at))
        try:
            header.update(
                ctx,
                pk,
                "SET staging_id = :revoked",
                condition=condition,
                values=values,
                returns="NONE",
            )
        except ConditionFailed as failed:
            if failed.item is None or failed.item.get("staging_id") != s(revoked):
                return  # committed, extended or removed meanwhile: nothing to do here
            # else revoked already: by this call's attempt whose answer was lost, or another's
    first, last = number(found, "staging_first"), number(found, "staging_last")
    branch = found["staging_branch"]["S"] if "staging_branch" in found else keys.MAIN_BRANCH
    # Consistent: every row the revoked stager could write exists by now and must be found.
    purge.rows(ctx, pk, up_to_seq=last, from_seq=first, consistent=True, branch=branch)
    try:
        header.update(
            ctx,
            pk,
            f"REMOVE {STAGING}",
            condition="staging_id = :revoked",
            values={":revoked": s(revoked)},
            returns="NONE",
        )
    except ConditionFailed:
        return  # another writer finished the clean-up
