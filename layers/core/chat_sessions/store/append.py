"""The append protocol (docs/data-model.md, "Sequence numbers" and "The write protocol").

A batch gets ``seq = base … base+n-1`` with ``base = max(now in µs, last_seq known + 1)`` and
commits in one transaction conditional on ``last_seq < base``: no read first. A failed condition
returns the header (ALL_OLD), from which the next attempt learns what it needs: the winner's
``last_seq``, that the session is gone or expired, that the retention cap needs a trim, or that
the Idempotency-Key was recorded already.
"""

from __future__ import annotations

import contextlib
import random
from collections.abc import Sequence
from dataclasses import dataclass, field

from chat_sessions import keys
from chat_sessions.clock import to_iso, to_micros
from chat_sessions.codec import MAX_ITEM_BYTES, EncodedItem, encode_item, encode_response
from chat_sessions.errors import (
    BatchTooLargeError,
    ChatSessionsError,
    ConflictError,
    InvalidInputError,
    TurnLostError,
)
from chat_sessions.idempotency import IdempotencyRecord
from chat_sessions.models import AppendResult, StoredResponse, check_session_id, check_user_id

from . import branch_append, header, idempotency, retention, rows, staging
from .branch_state import new_incarnation
from .context import StoreContext
from .lease import TurnCommit
from .table import Cancelled, new_token
from .updates import Update, capacity, commit_turn, reservation
from .wire import Item, n, number, s

MAX_TRANSACTION_ROWS = 100
MAX_TRANSACTION_BYTES = 4_000_000
"""DynamoDB's 4 MB transaction cap, less a margin for keys and attribute names."""
ROW_OVERHEAD_BYTES = 200
RETRY_GAP_US = 1000
"""A writer that lost a race aims up to this far past the winner, so the writers that lost
together land in one round instead of colliding again."""


MAX_BATCH_ITEMS = 100_000
MAX_BATCH_BYTES = 256 * 1024 * 1024
"""Hard caps of one call (far above what a turn writes), so a runaway caller fails fast."""


@dataclass(frozen=True)
class Batch:
    """A batch as it will be written: encoded items, the rows and bytes they take, and the
    Idempotency-Key record that goes with them."""

    encoded: list[EncodedItem]
    rows: int
    """Message and chunk rows, plus the key's record."""
    size: int
    record: IdempotencyRecord | None
    response: Item = field(default_factory=dict)

    @classmethod
    def of(
        cls, items: Sequence[object], record: IdempotencyRecord | None, max_item_bytes: int
    ) -> Batch:
        if not items:
            raise InvalidInputError("items must not be empty")
        if len(items) > MAX_BATCH_ITEMS:
            raise BatchTooLargeError(
                f"a batch holds at most {MAX_BATCH_ITEMS} items; this one has {len(items)}",
                details=[{"items": len(items), "max": MAX_BATCH_ITEMS}],
            )
        encoded = [encode_item(item, max_item_bytes) for item in items]
        count = sum(1 + len(e.chunks) for e in encoded)
        size = sum(e.stored_bytes + ROW_OVERHEAD_BYTES * (1 + len(e.chunks)) for e in encoded)
        response: Item = {}
        if record is not None:  # the key's record is one more row of the commit
            recorded = encode_response(record.response)
            response = recorded.attributes
            count += 1
            size += recorded.stored_bytes + len(record.key) + ROW_OVERHEAD_BYTES
        if size > MAX_BATCH_BYTES:
            raise BatchTooLargeError(
                f"a batch holds at most {MAX_BATCH_BYTES} bytes stored; this one {size}",
                details=[{"bytes": size, "max": MAX_BATCH_BYTES}],
            )
        return cls(encoded, count, size, record, response)

    def fits_one_transaction(self, branch: str) -> bool:
        """Whether the rows, the header, a trim marker (and on a branch, its record) fit one
        transaction."""
        fixed = 2 if branch == keys.MAIN_BRANCH else 3
        return self.rows + fixed <= MAX_TRANSACTION_ROWS and self.size <= MAX_TRANSACTION_BYTES


@dataclass
class Plan:
    """What the next attempt writes, as learned from the previous attempt's cancellation."""

    known_last: int
    replace_expired: bool = False
    """The header is an expired session's that TTL has not removed yet: replace it."""
    trim: retention.Trim | None = None
    uncapped: bool = False
    """The history holds no whole turn to remove: this write may go over the cap."""
    stale_below: int | None = None
    """The key's record is from an earlier history than this: overwrite it."""
    held: staging.Reservation | None = None
    """A staged batch's reservation: its rows are written; the commit moves the window."""
    legacy_start: int | None = None
    """A header from before ``history_start`` existed: stamp it with this (its creation)."""
    target: str = keys.MAIN_BRANCH
    """The branch the batch goes to: the one named, or the active one (learned from the header
    when it is not ``main``)."""
    active: bool | None = None
    """Whether ``target`` is assumed active (the header condition says which); ``None``: no
    assumption (``main`` named)."""


@dataclass(frozen=True)
class Append:
    """One append call's inputs."""

    user_id: str
    session_id: str
    pk: str
    batch: Batch
    create_missing: bool
    turn: TurnCommit | None
    branch: str | None
    """As named by the caller; ``None``: the active branch."""


def append(
    ctx: StoreContext,
    user_id: str,
    session_id: str,
    items: Sequence[object],
    *,
    create_missing: bool,
    last_seq_hint: int | None,
    turn: TurnCommit | None,
    idempotency_record: IdempotencyRecord | None,
    max_item_bytes: int = MAX_ITEM_BYTES,
    branch: str | None = None,
) -> AppendResult:
    """Append a batch atomically and in order, after every batch committed before it, to
    ``branch`` (``None``: the active one; see ``ChatStore.append_items``)."""
    user_id, session_id = check_user_id(user_id), check_session_id(session_id)
    call = Append(
        user_id,
        session_id,
        header.session_pk(user_id, session_id),
        Batch.of(items, idempotency_record, max_item_bytes),
        create_missing,
        turn,
        branch,
    )
    plan = Plan(known_last=last_seq_hint or 0)
    plan.target = branch or keys.MAIN_BRANCH
    plan.active = None if branch == keys.MAIN_BRANCH else True
    if call.batch.fits_one_transaction(plan.target):
        return _commit(ctx, call, plan)
    earlier = _recorded_before_staging(ctx, call)
    if earlier is not None:
        return _replayed(earlier)
    token = new_token()  # chosen first: a reserve applied with its answer lost is still ours
    try:
        held = staging.reserve(ctx, call, plan.known_last, token, branch)
        plan.target = held.branch
        staging.stage(ctx, call, held)
        plan.held = held
        result = _commit(ctx, call, plan)
    except BaseException:
        _abandon(ctx, call, token)
        raise
    if result.replay is not None:  # recorded by an earlier call: this one stores nothing
        _abandon(ctx, call, token)
    return result


def _recorded_before_staging(ctx: StoreContext, call: Append) -> StoredResponse | None:
    """A staged batch's key recorded already in this history (two GetItems, only with a key):
    a retry then stages nothing. The commit checks again, for a record written meanwhile."""
    record = call.batch.record
    if record is None:
        return None
    current = header.get(ctx, call.pk)
    if current is None or not header.is_live(current, ctx.clock()):
        return None
    return idempotency.find(
        ctx,
        call.user_id,
        call.session_id,
        record.key,
        record.request_hash,
        history_start=header.history_start(current),
    )


def _abandon(ctx: StoreContext, call: Append, token: str) -> None:
    """Revoke a reservation that will not commit (if it was taken at all), and delete what it
    staged. Where that fails, the reservation lapses and the next writer cleans up."""
    with contextlib.suppress(ChatSessionsError):
        staging.revoke(ctx, call.pk, token, lapsed_at=None)


def _commit(ctx: StoreContext, call: Append, plan: Plan) -> AppendResult:
    """The append's transaction, tried until it commits or a definite answer ends it."""
    for attempt in ctx.table.attempts():
        now = ctx.clock()
        base = plan.held.first if plan.held else max(to_micros(now), plan.known_last + 1)
        actions = _actions(ctx, call, plan, now, base)
        try:
            ctx.table.transact(actions)
        except Cancelled as cancelled:
            replay = _replay(ctx, call, plan, cancelled, now)
            if replay is not None:
                return _replayed(replay)
            if _learn(ctx, call, plan, cancelled, now) and attempt:
                ctx.table.backoff(attempt)
            continue
        removed = plan.trim.removed if plan.trim is not None else 0
        last = base + len(call.batch.encoded) - 1
        return AppendResult(
            appended=len(call.batch.encoded), first_seq=base, last_seq=last, removed=removed
        )
    raise ConflictError("too many concurrent writes to this session; retry")


def _actions(ctx: StoreContext, call: Append, plan: Plan, now: float, base: int) -> list[Item]:
    """The transaction of one attempt: the header, a trim's marker, the rows, the key's record."""
    batch = call.batch
    last = base + len(batch.encoded) - 1
    if plan.target != keys.MAIN_BRANCH:
        actions = branch_append.updates(ctx, call, plan, now, base)
    elif plan.replace_expired:
        actions = [_replace_expired(ctx, call, now, base)]
    else:
        actions = [_header_update(ctx, call, plan, now, base)]
    if plan.trim is not None or plan.replace_expired:  # rows below the window: the cascade's
        # Room for it: see Batch.fits_one_transaction.
        marker = retention.marker(ctx, call.pk, replaced=plan.replace_expired)
        if plan.target != keys.MAIN_BRANCH:
            marker["branch"] = s(plan.target)
        actions.append({"Put": {"TableName": ctx.table.name, "Item": marker}})
    created_at = to_iso(now)
    spent = (call.turn.input_tokens, call.turn.output_tokens) if call.turn else None
    for offset, entry in enumerate([] if plan.held else batch.encoded):
        usage = spent if offset == 0 else None
        for row in rows.message_rows(call.pk, base + offset, entry, created_at, plan.target, usage):
            actions.append({"Put": {"TableName": ctx.table.name, "Item": row}})
    if batch.record is not None:
        actions.append(
            idempotency.record_put(
                ctx,
                call.pk,
                batch.record,
                batch.response,
                now,
                (base, last),
                plan.stale_below,
                plan.target,
            )
        )
    return actions


def _replace_expired(ctx: StoreContext, call: Append, now: float, base: int) -> Item:
    """A new header over an expired one TTL has not removed yet (only while it is expired)."""
    count = len(call.batch.encoded)
    item = header.new(ctx, call.user_id, call.session_id, now, first_seq=base)
    item.update(last_seq=n(base + count - 1), message_count=n(count))
    return {
        "Put": {
            "TableName": ctx.table.name,
            "Item": item,
            "ConditionExpression": f"attribute_exists(pk) AND {header.EXPIRED}",
            "ExpressionAttributeValues": {":now_s": ctx.activity(now)[":now_s"]},
            "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
        }
    }


def _header_update(ctx: StoreContext, call: Append, plan: Plan, now: float, base: int) -> Item:
    """The header update of an append: conditional on the window it saw (``last_seq < base``),
    creating the session on first use when asked, within the cap or trimming to it."""
    count = len(call.batch.encoded)
    update = Update(
        values={
            **ctx.activity(now),
            ":user": s(call.user_id),
            ":session": s(call.session_id),
            ":base": n(base),
            ":last": n(base + count - 1),
            ":no_metadata": {"M": {}},
            ":incarnation": s(new_incarnation()),  # for a header this write creates
        },
        conditions=[header.UNEXPIRED, "last_seq < :base"],
    )
    if plan.active:  # main, assumed active: where a batch naming no branch goes
        update.conditions.append("attribute_not_exists(active_branch)")
    reservation(update, plan)
    first_seq, count = capacity(update, ctx.max_stored_items, plan, base, count)
    update.values[":count"] = n(count)
    update.sets += [
        "user_id = :user",
        "session_id = :session",
        "updated_at = :now_iso",
        header.SLIDE_EXPIRY,
        "last_seq = :last",
        "created_at = if_not_exists(created_at, :now_iso)",
        "incarnation = if_not_exists(incarnation, :incarnation)",
        f"first_seq = {first_seq}",
        "metadata = if_not_exists(metadata, :no_metadata)",
    ]
    exists = "attribute_exists(pk) AND"
    if plan.legacy_start is not None:  # an old header: its history began at its creation
        update.sets.append("history_start = :legacy_start")
        update.values[":legacy_start"] = n(plan.legacy_start)
    elif call.create_missing:  # create the header, or append to one with a history start
        exists = "attribute_not_exists(pk) OR"
        update.conditions.append("attribute_exists(history_start)")
        update.sets.append("history_start = if_not_exists(history_start, :base)")
    update.adds.append("message_count :count")
    if call.turn is not None:
        commit_turn(update, call.turn)
    return {
        "Update": {
            "TableName": ctx.table.name,
            "Key": header.header_key(call.pk),
            "UpdateExpression": update.expression(),
            "ConditionExpression": f"{exists} ({' AND '.join(update.conditions)})",
            "ExpressionAttributeValues": update.values,
            "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
        }
    }


def _replay(
    ctx: StoreContext, call: Append, plan: Plan, cancelled: Cancelled, now: float
) -> StoredResponse | None:
    """When the key's record (the last action) cancelled the write: its recorded answer, for a
    live session in the same history. A record of an earlier history makes the next attempt
    overwrite it instead (``plan.stale_below``)."""
    if call.batch.record is None or len(cancelled.reasons) < 2:
        return None
    existing = cancelled.item(len(cancelled.reasons) - 1)
    if existing is None:
        return None
    seen = cancelled.item(0) if cancelled.failed(0) else None
    start = idempotency.history_start_for(ctx, call.pk, seen, now)
    if idempotency.is_stale(existing, start):
        plan.stale_below = start
        return None
    if seen is not None and not header.is_live(seen, now):
        return None  # the session is gone: the header decides, whatever its records say
    return idempotency.recorded(existing, call.batch.record.request_hash)


def _learn(
    ctx: StoreContext,
    call: Append,
    plan: Plan,
    cancelled: Cancelled,
    now: float,
) -> bool:
    """Prepare the next attempt from a cancellation; whether to back off first. On the way it
    may wait for another writer's staged batch (or revoke its lapsed reservation and delete what
    it staged) and plan a retention trim (one Query of the oldest rows)."""
    if plan.target != keys.MAIN_BRANCH:
        return branch_append.learn(ctx, call, plan, cancelled, now)
    if not cancelled.failed(0):
        if plan.stale_below is not None:
            return False  # only the stale record blocked: overwrite it now
        raise ChatSessionsError("an append was cancelled for no reason it knows")
    current = cancelled.item(0)
    if current is None or not header.is_live(current, now):
        if not call.create_missing or plan.held is not None:
            raise header.not_found()
        plan.replace_expired = current is not None
        plan.trim, plan.uncapped = None, False  # a new session: nothing older to remove
        return False
    if call.turn is not None and current.get("turn_id") != s(call.turn.turn_id):
        raise TurnLostError("this turn's lease lapsed; nothing was stored")
    if plan.held is not None and current.get("staging_id") != s(plan.held.token):
        raise ConflictError("this batch's reservation was revoked; nothing was stored")
    plan.replace_expired = False
    plan.trim, plan.uncapped = None, False
    if plan.active and "active_branch" in current:  # named none: it goes to the active one
        if plan.held is not None:
            raise ConflictError("the active branch changed while this batch was staged; retry")
        plan.target = current["active_branch"]["S"]
        plan.known_last = staging.highest_seq(current)
        return False
    if call.create_missing and "history_start" not in current:
        plan.legacy_start = header.history_start(current)  # stamped by the next attempt
    if plan.held is None and "staging_id" in current:  # a staged batch goes first
        plan.known_last = staging.highest_seq(current)
        return staging.wait_for(ctx, call.pk, current, now)
    plan.known_last = staging.highest_seq(current) + random.randrange(RETRY_GAP_US)
    cap = ctx.max_stored_items
    if cap and number(current, "message_count") + len(call.batch.encoded) > cap:
        first = call.batch.encoded[0]
        plan.trim = retention.plan(ctx, call.pk, current, len(call.batch.encoded), first)
        plan.uncapped = plan.trim is None
    return True


def _replayed(replay: StoredResponse) -> AppendResult:
    return AppendResult(
        appended=replay.last_seq - replay.first_seq + 1,
        first_seq=replay.first_seq,
        last_seq=replay.last_seq,
        replay=replay,
    )
