"""Edit a user message, or regenerate an answer: a chat turn that forks (docs/branches.md,
"Writing").

``plan`` finds the message the turn replaces and the path before it; the turn reads its context
from that path (``window``), runs the model, and ``commit`` stores it as a new branch, active, in
one transaction with the fork itself (record, base, pin), the lease's release and the turn's
usage. A turn that fails leaves no branch behind.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from chat_sessions import keys
from chat_sessions.clock import to_iso, to_micros
from chat_sessions.codec import encode_item, encode_response
from chat_sessions.errors import (
    BatchTooLargeError,
    ConflictError,
    InvalidInputError,
    MessageNotFoundError,
    TurnLostError,
)
from chat_sessions.idempotency import IdempotencyRecord
from chat_sessions.models import Branch, StoredMessage

from . import header, idempotency, retention, rows, staging, view
from .branch_state import (
    Segment,
    Window,
    active_branch,
    incarnation_of,
    load,
    new_branch_id,
    new_incarnation,
    record_key,
    window_of,
)
from .branches import Change, ForkPoint, as_seen, branch_of, fork_point, header_change, new_record
from .context import StoreContext
from .lease import TurnCommit
from .table import Cancelled
from .wire import Item, n, number, s

MAX_EDIT_ROWS = 94
"""A turn's rows in the commit, beside the header, record, base, row check, pin and key record."""
LOOKBACK_ROWS = (4, 50)
"""Rows read back for the last user message to regenerate from: a turn's usual few, then more."""


@dataclass(frozen=True)
class Edit:
    """What an edit's turn runs on and stores into."""

    branch_id: str
    source: Window
    replaced: StoredMessage
    """The user message the turn replaces (its text, for a regeneration)."""
    point: ForkPoint
    """The path before it; ``point.seq`` is the replaced message, checked and pinned."""
    before: Window
    """The new branch as a view before its turn is stored: the context is read from it."""
    shared_seq: int
    """The last message it shares (0: none): its ``fork_seq``."""


def plan(ctx: StoreContext, pk: str, branch: str | None, replaces_seq: int | None) -> Edit:
    """The edit of ``replaces_seq`` on ``branch`` (``None``: the active one), or a regeneration
    from its last user message (``replaces_seq`` ``None``).

    Raises:
        MessageNotFoundError (no such message, or none to regenerate from), InvalidInputError
        (the message is not a user message).
    """
    now = ctx.clock()
    current = header.live(header.get(ctx, pk), now)
    _, source = load(ctx, pk, current, branch or active_branch(current))
    replaced = _replaced(ctx, pk, source, replaces_seq)
    path = fork_point(ctx, pk, source, replaced.seq).segments
    before, last = _before(path), path[-1]
    incarnation = current["incarnation"]["S"] if "incarnation" in current else new_incarnation()
    branch_id = new_branch_id(incarnation, now)
    point = ForkPoint(replaced.seq, last.owner, before)
    clock = number(current, "last_seq")
    future = Window(branch_id, clock + 1, clock, 0, 0, before, 0)
    previous = view.newest(ctx, pk, future, 1)  # what the new branch shares last, for display
    shared = keys.seq_of(previous[0]["sk"]["S"]) if previous else 0
    return Edit(branch_id, source, replaced, point, future, shared)


def _replaced(ctx: StoreContext, pk: str, source: Window, seq: int | None) -> StoredMessage:
    if seq is None:
        for limit in LOOKBACK_ROWS:
            newest = view.newest(ctx, pk, source, limit)
            opening = [row for row in newest if retention.opens_turn(ctx, pk, row)]
            if opening:
                return rows.decode(ctx, pk, opening[:1])[0]
            if len(newest) < limit:
                break
        raise MessageNotFoundError("no user message to regenerate from")
    owner = source.owner_of(seq)
    found = ctx.table.get(rows.message_key(pk, seq, owner)) if owner else None
    decoded = rows.decode(ctx, pk, [found]) if found else []
    if not decoded:
        raise MessageNotFoundError("no such message in this branch's history")
    if found is None or not retention.opens_turn(ctx, pk, found):
        raise InvalidInputError("only a user message can be edited")
    return decoded[0]


def commit(
    ctx: StoreContext,
    pk: str,
    edit: Edit,
    items: Sequence[object],
    turn: TurnCommit,
    record: IdempotencyRecord | None = None,
) -> Branch:
    """Store the turn's ``items`` as the new branch, made active, and release the lease.

    Raises:
        TurnLostError (the lease lapsed: nothing stored), MessageNotFoundError (the replaced
        message went meanwhile), BatchTooLargeError.
    """
    encoded = [encode_item(item) for item in items]
    if sum(1 + len(e.chunks) for e in encoded) > MAX_EDIT_ROWS:
        raise BatchTooLargeError(f"an edited turn stores at most {MAX_EDIT_ROWS} rows")
    known_last = edit.before.last_seq
    fresh: Item = {}
    for attempt in ctx.table.attempts():
        now = ctx.clock()
        current = header.live(header.get(ctx, pk), now)
        if current.get("turn_id") != s(turn.turn_id):
            raise TurnLostError("this turn's lease lapsed; nothing was stored")
        edit = _still(ctx, pk, current, edit, now)
        source = edit.source
        base = max(to_micros(now), known_last + 1, number(current, "last_seq") + 1)
        last = base + len(encoded) - 1
        fresh = new_record(pk, edit.branch_id, current, source.branch, edit.point, None, now)
        fresh.update(first_seq=n(base), last_seq=n(last), message_count=n(len(encoded)))
        fresh.update(fork_seq=n(edit.shared_seq), replaces_seq=n(edit.replaced.seq))
        fresh.update(
            usage_input_tokens=n(turn.input_tokens), usage_output_tokens=n(turn.output_tokens)
        )
        actions, row_check = _actions(ctx, pk, current, source, edit, fresh, turn, now, base)
        created_at = to_iso(now)
        spent = (turn.input_tokens, turn.output_tokens)
        for offset, entry in enumerate(encoded):
            usage = spent if offset == 0 else None
            for row in rows.message_rows(
                pk, base + offset, entry, created_at, edit.branch_id, usage
            ):
                actions.append({"Put": {"TableName": ctx.table.name, "Item": row}})
        if record is not None:
            response = encode_response(record.response).attributes
            put = idempotency.record_put(
                ctx,
                pk,
                record,
                response,
                now,
                (base, last),
                stale_below=header.history_start(current),  # a record of an earlier history
                branch=edit.branch_id,
            )
            actions.append(put)
        try:
            ctx.table.transact(actions)
        except Cancelled as cancelled:
            if cancelled.failed(0):  # our own record: an attempt applied with its answer lost
                break
            if row_check is not None and cancelled.failed(row_check):
                raise MessageNotFoundError("the message this turn replaces is gone") from None
            known_last = number(current, "last_seq")
            ctx.table.backoff(attempt)
            continue
        break
    else:
        raise ConflictError("too many concurrent writes to this session; retry")
    return branch_of(fresh, window_of(fresh, edit.branch_id, None), True)  # as written


def _still(ctx: StoreContext, pk: str, current: Item, edit: Edit, now: float) -> Edit:
    """The edit as of now: the source read again and the path before the replaced message cut
    again (exact counts, for the commit's conditions), which must be the one the turn ran on.
    A new branch id if the header got its incarnation meanwhile (a fork named it).

    Raises:
        ConflictError: the history before the replaced message changed during the turn (a
        clear, a trim, a pop into it): nothing is stored, the turn can be sent again.
    """
    _, source = load(ctx, pk, current, edit.source.branch)
    try:
        path = fork_point(ctx, pk, source, edit.replaced.seq).segments
    except MessageNotFoundError:
        raise MessageNotFoundError("the message this turn replaces is gone") from None
    if _before(path) != edit.point.segments:
        raise ConflictError("the history this turn ran on changed meanwhile; nothing was stored")
    incarnation = current["incarnation"]["S"] if "incarnation" in current else None
    branch_id = edit.branch_id
    if incarnation is not None and incarnation_of(branch_id) != incarnation:
        branch_id = new_branch_id(incarnation, now)
    return replace(edit, source=source, branch_id=branch_id)


def _before(path: tuple[Segment, ...]) -> tuple[Segment, ...]:
    """The path up to the message before the last one of ``path`` (the replaced message)."""
    last = path[-1]
    if last.count == 1:
        return path[:-1]
    return (*path[:-1], Segment(last.owner, last.low, last.high - 1, last.count - 1))


def _actions(
    ctx: StoreContext,
    pk: str,
    current: Item,
    source: Window,
    edit: Edit,
    fresh: Item,
    turn: TurnCommit,
    now: float,
    base: int,
) -> tuple[list[Item], int]:
    """Record (first), base, the replaced message's row check, the source as read, and the
    header: clock, lease, usage and the new branch made active."""
    table = ctx.table.name
    put = {"TableName": table, "Item": fresh, "ConditionExpression": "attribute_not_exists(sk)"}
    actions: list[Item] = [{"Put": put}]
    if edit.point.segments:
        segments = {"L": [segment.wire() for segment in edit.point.segments]}
        base_item = {**{"pk": s(pk), "sk": s(keys.base_sk(edit.branch_id))}, "segments": segments}
        actions.append({"Put": {"TableName": table, "Item": base_item}})
    row_check = len(actions)
    row = rows.message_key(pk, edit.point.seq, edit.point.owner)
    check = {"TableName": table, "Key": row, "ConditionExpression": "attribute_exists(sk)"}
    actions.append({"ConditionCheck": check})
    head = header_change(ctx, current, now, edit.branch_id)
    visible = number(fresh, "inherited_count") + number(fresh, "message_count")
    head.sets += ["active_branch = :branch", "active_count = :count", "last_seq = :last"]
    head.conditions += ["last_seq < :base", "turn_id = :turn", "attribute_not_exists(staging_id)"]
    head.conditions.append(staging.UNRESERVED)
    head.removes += ["turn_id", "turn_expires_at"]
    head.sets += [
        "usage_input_tokens = if_not_exists(usage_input_tokens, :zero) + :in",
        "usage_output_tokens = if_not_exists(usage_output_tokens, :zero) + :out",
        "usage_total_tokens = if_not_exists(usage_total_tokens, :zero) + :total",
        "branches_usage_input_tokens = if_not_exists(branches_usage_input_tokens, :zero) + :in",
        "branches_usage_output_tokens = if_not_exists(branches_usage_output_tokens, :zero) + :out",
    ]
    head.values.update(
        {
            ":branch": s(edit.branch_id),
            ":count": n(visible),
            ":base": n(base),
            ":last": fresh["last_seq"],
            ":turn": s(turn.turn_id),
            ":zero": n(0),
            ":in": n(turn.input_tokens),
            ":out": n(turn.output_tokens),
            ":total": n(turn.input_tokens + turn.output_tokens),
        }
    )
    if source.branch == keys.MAIN_BRANCH:
        as_seen(head, source, edit.point)
    else:
        seen = Change(values={})
        as_seen(seen, source, edit.point)
        actions.append(seen.write(table, record_key(pk, source.branch)))
    actions.append(head.write(table, header.header_key(pk)))
    return actions, row_check
