"""Pop and clear on a branch (docs/branches.md, "Pinning").

A pop removes the newest message of the branch's view: one of its own rows (deleted; or, when
another branch shares it, kept, the own window turned into a segment of the branch's own path),
or the newest of the segments it shares (then only its path gets shorter: the row is its
owner's). ``main``'s pops come here once shared rows or a path are involved. A clear empties
the view. Both are one transaction with the header (activity, and the active branch's count).
"""

from __future__ import annotations

from chat_sessions import keys
from chat_sessions.errors import ConflictError
from chat_sessions.models import StoredMessage

from . import header, retention, rows, summaries, view
from .branch_state import Segment, Window, active_branch, base_key, load, record_key
from .branches import Change, equal, header_change
from .context import StoreContext
from .table import Cancelled
from .wire import Item, n, s


def pop(ctx: StoreContext, pk: str, branch: str) -> StoredMessage | None:
    """Remove and return the newest message of ``branch``'s view (``None``: it has none).

    For ``main``, the record is the header itself: its changes go in the header's one update.
    """
    for attempt in ctx.table.attempts():
        now = ctx.clock()
        current = header.live(header.get(ctx, pk), now)
        _, window = load(ctx, pk, current, branch)
        newest = view.newest(ctx, pk, window, 2)  # the second: where a kept window ends
        if not newest:
            return None
        row = newest[0]
        seq = keys.seq_of(row["sk"]["S"])
        decoded = rows.decode(ctx, pk, [row])  # before the delete: its chunks still exist
        head = _on_header(ctx, current, branch, now, delta=-1)
        record = head if branch == keys.MAIN_BRANCH else Change(values={})
        if keys.branch_of(row["sk"]["S"]) != branch or seq < window.first_seq:
            actions = _shorten(ctx, pk, window, record)
        elif seq > window.pinned_seq:
            actions = _delete_own(ctx, pk, window, row, seq, record)
        else:
            actions = _keep_shared(ctx, pk, window, newest, record)
        if record is not head:
            actions.append(record.write(ctx.table.name, record_key(pk, branch)))
        actions.append(head.write(ctx.table.name, header.header_key(pk)))
        try:
            ctx.table.transact(actions)
        except Cancelled:
            ctx.table.backoff(attempt)
            continue  # popped, cleared, forked or written meanwhile: look again
        if decoded:
            return decoded[0]
    raise ConflictError("too many concurrent writes to this session; retry")


def _on_header(
    ctx: StoreContext, current: Item, branch: str, now: float, *, delta: int | None = None
) -> Change:
    """Activity on the header; the active branch's count moved by ``delta`` (``None``: set to
    0), conditional on the branch being active or not, as read. (``main``'s count is the
    header's own, so only whether it is active is checked.)"""
    is_main = branch == keys.MAIN_BRANCH
    head = header_change(ctx, current, now, None if is_main else branch)
    active = active_branch(current) == branch
    if is_main:
        head.conditions.append(f"attribute_{'not_' if active else ''}exists(active_branch)")
        return head
    head.values[":branch"] = s(branch)
    if not active:
        head.conditions.append("(attribute_not_exists(active_branch) OR active_branch <> :branch)")
        return head
    head.conditions.append("active_branch = :branch")
    if delta is None:
        head.sets.append("active_count = :zero")
        head.values[":zero"] = n(0)
    else:
        head.sets.append("active_count = active_count + :delta")
        head.values[":delta"] = n(delta)
    return head


def _delete_own(
    ctx: StoreContext, pk: str, window: Window, row: Item, seq: int, record: Change
) -> list[Item]:
    """The newest own row, deleted: no other branch shares it."""
    table = ctx.table.name
    record.values.update({":seq": n(seq), ":minus_one": n(-1)})
    record.sets.append("message_count = message_count + :minus_one")
    record.conditions += [
        "first_seq <= :seq",
        "(attribute_not_exists(pinned_seq) OR pinned_seq < :seq)",  # a fork meanwhile
    ]
    delete = {
        "TableName": table,
        "Key": rows.message_key(pk, seq, window.branch),
        "ConditionExpression": "attribute_exists(sk)",
    }
    chunks = [
        {"Delete": {"TableName": table, "Key": rows.chunk_key(pk, seq, i, window.branch)}}
        for i in range(rows.parts_of(row))
    ]
    return [{"Delete": delete}, *chunks]


def _keep_shared(
    ctx: StoreContext, pk: str, window: Window, newest: list[Item], record: Change
) -> list[Item]:
    """The newest own row is shared with another branch, so it stays: the own window becomes a
    segment of the branch's own path, up to the row before it, and restarts past the clock."""
    kept = window.own_count - 1
    segments = list(window.segments)
    if kept and len(newest) > 1:
        previous = keys.seq_of(newest[1]["sk"]["S"])
        segments.append(Segment(window.branch, window.first_seq, previous, kept))
    record.values.update(
        {
            ":seen_first": n(window.first_seq),
            ":seen_count": n(window.own_count),
            ":seen_last": n(window.last_seq),
            ":one": n(1),
        }
    )
    record.conditions += [
        "first_seq = :seen_first",
        "message_count = :seen_count",
        "last_seq = :seen_last",
    ]
    record.sets += ["first_seq = last_seq + :one", "message_count = :zero_own"]
    record.values[":zero_own"] = n(0)
    if window.branch == keys.MAIN_BRANCH:
        record.sets.append("has_base = :yes")
        record.values[":yes"] = {"BOOL": True}
    return _new_base(ctx, pk, window, tuple(segments), record, inherited_delta=kept)


def _shorten(ctx: StoreContext, pk: str, window: Window, record: Change) -> list[Item]:
    """The branch's path without its newest shared message: the last segment ends one row
    earlier, or goes."""
    last = window.segments[-1]
    request = {
        **rows.between(pk, last.low, last.high, last.owner),
        "ScanIndexForward": False,
        "Limit": 2,
        "ProjectionExpression": "sk",
    }
    found = ctx.table.call("query", TableName=ctx.table.name, **request).get("Items", [])
    segments = list(window.segments[:-1])
    if len(found) == 2 and last.count > 1:
        high = keys.seq_of(found[1]["sk"]["S"])
        segments.append(Segment(last.owner, last.low, high, last.count - 1))
    record.conditions.append("message_count = :no_own")  # no row of its own appended meanwhile
    record.values[":no_own"] = n(0)
    return _new_base(ctx, pk, window, tuple(segments), record, inherited_delta=-1)


def _new_base(
    ctx: StoreContext,
    pk: str,
    window: Window,
    segments: tuple[Segment, ...],
    record: Change,
    *,
    inherited_delta: int | None,
) -> list[Item]:
    """The branch's base replaced by ``segments`` (deleted when none), and ``record`` moving its
    ``base_version`` and ``inherited_count`` (``None``: to 0), conditional on the version read."""
    table = ctx.table.name
    record.values[":next_version"] = n(window.base_version + 1)
    equal(record, "base_version", window.base_version)
    record.sets.append("base_version = :next_version")
    if inherited_delta is None:
        record.sets.append("inherited_count = :no_inherited")
        record.values[":no_inherited"] = n(0)
    else:
        record.sets.append(
            "inherited_count = if_not_exists(inherited_count, :no_inherited) + :inherited_delta"
        )
        record.values.update({":no_inherited": n(0), ":inherited_delta": n(inherited_delta)})
    key = base_key(pk, window.branch)
    if segments:
        item = {**key, "segments": {"L": [segment.wire() for segment in segments]}}
        return [{"Put": {"TableName": table, "Item": item}}]
    return [{"Delete": {"TableName": table, "Key": key}}]


def clear(ctx: StoreContext, pk: str, branch: str) -> None:
    """Empty ``branch``'s view: its window moves past its rows and its path goes; a trim marker
    makes the cascade purge its rows (but the ones other branches share)."""
    for attempt in ctx.table.attempts():
        now = ctx.clock()
        current = header.live(header.get(ctx, pk), now)
        _, window = load(ctx, pk, current, branch)
        record = Change(values={":one": n(1), ":zero_own": n(0)})
        record.sets += ["first_seq = last_seq + :one", "message_count = :zero_own"]
        actions = _new_base(ctx, pk, window, (), record, inherited_delta=None)
        actions.append(record.write(ctx.table.name, record_key(pk, branch)))
        marker = retention.marker(ctx, pk)
        marker["branch"] = s(branch)
        actions.append({"Put": {"TableName": ctx.table.name, "Item": marker}})
        actions.append(summaries.delete_action(ctx, pk, branch))
        head = _on_header(ctx, current, branch, now)
        actions.append(head.write(ctx.table.name, header.header_key(pk)))
        try:
            ctx.table.transact(actions)
        except Cancelled:
            ctx.table.backoff(attempt)
            continue
        return
    raise ConflictError("too many concurrent writes to this session; retry")


def trim_through(ctx: StoreContext, pk: str, branch: str, high_seq: int) -> int:
    """Remove ``branch``'s own messages up to ``high_seq`` (a compaction that drops the
    originals its summary covers), as the retention cap removes turns: the window's start moves
    past them and a trim marker makes the cascade purge them (but the ones other branches
    share). One COUNT Query of them, then one transaction, conditional on the window as read:
    a write that moved it meanwhile leaves them for the next compaction. How many went."""
    now = ctx.clock()
    current = header.live(header.get(ctx, pk), now)
    _, window = load(ctx, pk, current, branch)
    if high_seq < window.first_seq:
        return 0
    request = {**rows.between(pk, window.first_seq, high_seq, branch), "Select": "COUNT"}
    count = int(sum(page.get("Count", 0) for page in ctx.table.pages(request)))
    if not count:
        return 0
    head = _on_header(ctx, current, branch, now, delta=-count)
    record = head if branch == keys.MAIN_BRANCH else Change(values={})
    record.values.update(
        {
            ":seen_first": n(window.first_seq),
            ":seen_count": n(window.own_count),
            ":seen_last": n(window.last_seq),
            ":cut": n(high_seq + 1),
            ":dropped": n(-count),
        }
    )
    record.conditions += [
        "first_seq = :seen_first",
        "message_count = :seen_count",
        "last_seq = :seen_last",
    ]
    record.sets += ["first_seq = :cut", "message_count = message_count + :dropped"]
    marker = retention.marker(ctx, pk)
    if branch != keys.MAIN_BRANCH:
        marker["branch"] = s(branch)
    actions: list[Item] = [{"Put": {"TableName": ctx.table.name, "Item": marker}}]
    if record is not head:
        actions.append(record.write(ctx.table.name, record_key(pk, branch)))
    actions.append(head.write(ctx.table.name, header.header_key(pk)))
    try:
        ctx.table.transact(actions)
    except Cancelled:
        return 0  # written meanwhile: the next compaction drops them
    return count
