"""An append to a branch other than ``main`` (docs/branches.md, "Writing").

The header stays the session's clock, lease, reservation and activity, so the transaction
updates it as an append to ``main`` does, conditional on the incarnation the branch id carries
and on whether the branch is the active one (whose count the header keeps); the branch's record
holds its window, so the cap and a planned trim are its conditions.
"""

from __future__ import annotations

import random
import re
from typing import TYPE_CHECKING

from chat_sessions.errors import (
    BranchNotFoundError,
    ChatSessionsError,
    ConflictError,
    TurnLostError,
)

from . import header, retention, staging
from .branch_state import active_branch, incarnation_of, record_key
from .context import StoreContext
from .table import Cancelled
from .updates import Update, capacity, commit_turn, reservation
from .wire import Item, n, number, s

if TYPE_CHECKING:
    from .append import Append, Plan

RETRY_GAP_US = 1000


def updates(ctx: StoreContext, call: Append, plan: Plan, now: float, base: int) -> list[Item]:
    """The header's update and the record's, in that order (the cancellation's reasons 0, 1)."""
    count = len(call.batch.encoded)
    values = {**ctx.activity(now), ":base": n(base), ":last": n(base + count - 1)}
    record = Update(values=dict(values), conditions=["attribute_exists(sk)"])
    first_seq, added = capacity(record, ctx.max_stored_items, plan, base, count)
    record.values[":count"] = n(added)
    record.sets += ["last_seq = :last", "updated_at = :now_iso", f"first_seq = {first_seq}"]
    record.adds.append("message_count :count")
    head = Update(
        values={**values, ":branch": s(plan.target)},
        conditions=[header.UNEXPIRED, "last_seq < :base", "incarnation = :incarnation"],
    )
    head.values[":incarnation"] = s(incarnation_of(plan.target))
    reservation(head, plan)
    head.sets += ["updated_at = :now_iso", header.SLIDE_EXPIRY, "last_seq = :last"]
    if plan.active:
        head.conditions.append("active_branch = :branch")
        head.adds.append("active_count :visible")
        head.values[":visible"] = n(added)
    else:
        head.conditions.append("(attribute_not_exists(active_branch) OR active_branch <> :branch)")
    if call.turn is not None:
        commit_turn(head, call.turn)
        # The session's usage counts every branch; this part of it, the other branches' turns.
        head.adds += ["branches_usage_input_tokens :in", "branches_usage_output_tokens :out"]
        record.adds += ["usage_input_tokens :in", "usage_output_tokens :out"]
        record.values.update({":in": head.values[":in"], ":out": head.values[":out"]})
    return [
        _update(ctx, header.header_key(call.pk), head, "attribute_exists(pk)"),
        _update(ctx, record_key(call.pk, plan.target), record, "attribute_exists(sk)"),
    ]


def _update(ctx: StoreContext, key: Item, update: Update, exists: str) -> Item:
    """The UpdateItem, with only the values its expressions use (DynamoDB refuses others)."""
    expression = update.expression()
    condition = " AND ".join([exists, *(c for c in update.conditions if c != exists)])
    used = set(re.findall(r":\w+", f"{expression} {condition}"))
    return {
        "Update": {
            "TableName": ctx.table.name,
            "Key": key,
            "UpdateExpression": expression,
            "ConditionExpression": condition,
            "ExpressionAttributeValues": {k: v for k, v in update.values.items() if k in used},
            "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
        }
    }


def learn(ctx: StoreContext, call: Append, plan: Plan, cancelled: Cancelled, now: float) -> bool:
    """Prepare the next attempt from a cancellation (see ``append._learn``); whether to back
    off first."""
    header_failed, record_failed = cancelled.failed(0), cancelled.failed(1)
    if not header_failed and not record_failed:
        raise ChatSessionsError("a branch append was cancelled for no reason it knows")
    plan.trim, plan.uncapped = None, False
    back_off = False
    if header_failed:
        current = header.live(cancelled.item(0), now)
        if current.get("incarnation") != s(incarnation_of(plan.target)):
            raise BranchNotFoundError("branch not found")
        if call.turn is not None and current.get("turn_id") != s(call.turn.turn_id):
            raise TurnLostError("this turn's lease lapsed; nothing was stored")
        if plan.held is not None and current.get("staging_id") != s(plan.held.token):
            raise ConflictError("this batch's reservation was revoked; nothing was stored")
        if call.branch is None:  # named none: it goes to the branch active now
            if plan.held is not None and active_branch(current) != plan.target:
                raise ConflictError("the active branch changed while this batch was staged; retry")
            plan.target = active_branch(current)
            plan.active = True
        else:
            plan.active = active_branch(current) == plan.target
        if plan.held is None and "staging_id" in current:  # a staged batch goes first
            plan.known_last = staging.highest_seq(current)
            return staging.wait_for(ctx, call.pk, current, now)
        plan.known_last = staging.highest_seq(current) + random.randrange(RETRY_GAP_US)
        back_off = True
    if record_failed:
        record = cancelled.item(1)
        if record is None:
            raise BranchNotFoundError("branch not found")
        cap, batch = ctx.max_stored_items, len(call.batch.encoded)
        if cap and number(record, "message_count") + batch > cap:
            first = call.batch.encoded[0]
            plan.trim = retention.plan(ctx, call.pk, record, batch, first, plan.target)
            plan.uncapped = plan.trim is None
    return back_off
