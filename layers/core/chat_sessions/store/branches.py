"""Branches: fork, read, list, rename, switch and delete (docs/branches.md).

A fork writes O(1) items whatever the history: the new branch's record, its base (the segments
of the path it shares) and the pin that keeps its owner from removing the shared rows, in one
transaction with the header.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from chat_sessions import keys
from chat_sessions.clock import from_iso, to_iso
from chat_sessions.cursor import decode_cursor, encode_cursor
from chat_sessions.errors import (
    BranchNotFoundError,
    ConflictError,
    InvalidCursorError,
    InvalidInputError,
    MainBranchError,
    MessageNotFoundError,
)
from chat_sessions.models import Branch, BranchPage, Usage

from . import header, retention, rows, summaries
from .branch_state import (
    MAX_SEGMENTS,
    Segment,
    Window,
    active_branch,
    base_key,
    belongs,
    incarnation_of,
    load,
    new_branch_id,
    new_incarnation,
    record_key,
    window_of,
)
from .context import StoreContext
from .table import Cancelled, ConditionFailed
from .wire import Item, n, number, s


@dataclass(frozen=True)
class ForkPoint:
    """Where a fork shares up to: ``seq`` (0: nothing) in ``owner``'s rows, and the path."""

    seq: int
    owner: str
    segments: tuple[Segment, ...]


def fork(
    ctx: StoreContext,
    pk: str,
    *,
    source: str | None,
    at_seq: int | None,
    name: str | None,
    activate: bool,
) -> Branch:
    """A new branch sharing ``source``'s history up to the message ``at_seq`` (``None``: all of
    it; ``0``: none of it).

    Raises:
        SessionNotFoundError, BranchNotFoundError, MessageNotFoundError (``at_seq`` is not in
        ``source``'s history), InvalidInputError (a path deeper than ``MAX_SEGMENTS``).
    """
    branch_id = ""
    for attempt in ctx.table.attempts():
        now = ctx.clock()
        current = header.live(header.get(ctx, pk), now)
        incarnation = current["incarnation"]["S"] if "incarnation" in current else None
        if not branch_id.startswith(f"b_{incarnation}"):  # the first try, or a new incarnation
            branch_id = new_branch_id(incarnation or new_incarnation(), now)
        _, window = load(ctx, pk, current, source or active_branch(current))
        point = fork_point(ctx, pk, window, at_seq)
        record = new_record(pk, branch_id, current, window.branch, point, name, now)
        actions, row_check = _fork_actions(ctx, pk, current, window, point, record, activate, now)
        try:
            ctx.table.transact(actions)
        except Cancelled as cancelled:
            if cancelled.failed(0):  # our own record: an attempt applied with its answer lost
                return get(ctx, pk, branch_id)
            if row_check is not None and cancelled.failed(row_check) and at_seq is not None:
                raise MessageNotFoundError("no such message in this branch's history") from None
            # (At the newest message: it was popped meanwhile; fork at the one now newest.)
            ctx.table.backoff(attempt)  # the header or the source moved: look again
            continue
        return branch_of(record, window_of(record, branch_id, None), activate)
    raise ConflictError("too many concurrent writes to this session; retry")


def fork_point(ctx: StoreContext, pk: str, window: Window, at_seq: int | None) -> ForkPoint:
    """The path up to ``at_seq`` in ``window``'s view, each segment with its count. Whether the
    row is there is checked by the fork's transaction."""
    if at_seq is None:
        at_seq = _newest_seq(ctx, pk, window)
    if at_seq == 0:
        return ForkPoint(0, window.branch, ())
    owner = window.owner_of(at_seq)
    if owner is None:
        raise MessageNotFoundError("no such message in this branch's history")
    before = tuple(segment for segment in window.segments if segment.high < at_seq)
    if owner == window.branch and window.first_seq <= at_seq:
        low, high, count = window.first_seq, window.last_seq, window.own_count
    else:
        held = next(x for x in window.segments if x.low <= at_seq <= x.high)
        low, high, count = held.low, held.high, held.count
    after = _count(ctx, pk, owner, at_seq + 1, high) if at_seq < high else 0
    path = (*before, Segment(owner, low, at_seq, count - after))
    if len(path) > MAX_SEGMENTS:
        raise InvalidInputError(f"a branch shares at most {MAX_SEGMENTS} segments of history")
    return ForkPoint(at_seq, owner, path)


def _newest_seq(ctx: StoreContext, pk: str, window: Window) -> int:
    """The seq of the newest message in ``window``'s view (0 when it has none)."""
    if window.own_count:
        request = {
            **rows.between(pk, window.first_seq, window.last_seq, window.branch),
            "ScanIndexForward": False,
            "Limit": 1,
            "ProjectionExpression": "sk",
        }
        found = ctx.table.call("query", TableName=ctx.table.name, **request).get("Items", [])
        if found:
            return keys.seq_of(found[0]["sk"]["S"])
    return window.segments[-1].high if window.segments else 0


def _count(ctx: StoreContext, pk: str, owner: str, low: int, high: int) -> int:
    """How many of ``owner``'s rows have ``low <= seq <= high`` (a COUNT Query: it reads them,
    so a fork far from the newest message pays for what lies after it)."""
    request = {**rows.between(pk, low, high, owner), "Select": "COUNT"}
    return sum(page.get("Count", 0) for page in ctx.table.pages(request))


def new_record(
    pk: str,
    branch_id: str,
    current: Item,
    source: str,
    point: ForkPoint,
    name: str | None,
    now: float,
) -> Item:
    """The new branch's record: an empty own window just past the session's clock."""
    clock = number(current, "last_seq")
    record: Item = {
        **record_key(pk, branch_id),
        "branch_id": s(branch_id),
        "parent": s(source),
        "fork_seq": n(point.seq),
        "created_at": s(to_iso(now)),
        "updated_at": s(to_iso(now)),
        "first_seq": n(clock + 1),
        "last_seq": n(clock),
        "message_count": n(0),
        "inherited_count": n(sum(segment.count for segment in point.segments)),
    }
    if name is not None:
        record["name"] = s(name)
    return record


def _fork_actions(
    ctx: StoreContext,
    pk: str,
    current: Item,
    window: Window,
    point: ForkPoint,
    record: Item,
    activate: bool,
    now: float,
) -> tuple[list[Item], int | None]:
    """Record (first: a failure there means it exists, so it is this fork's own), base, the
    fork point's row, the source as the fork saw it (its pin raised) and the header; and the
    index of the row's check."""
    table = ctx.table.name
    new = {"TableName": table, "Item": record, "ConditionExpression": "attribute_not_exists(sk)"}
    actions: list[Item] = [{"Put": new}]
    if point.segments:
        base = {**base_key(pk, record["branch_id"]["S"]), "segments": _segments(point.segments)}
        actions.append({"Put": {"TableName": table, "Item": base}})
    row_check = None
    if point.seq:
        row = rows.message_key(pk, point.seq, point.owner)
        row_check = len(actions)
        check = {"TableName": table, "Key": row, "ConditionExpression": "attribute_exists(sk)"}
        actions.append({"ConditionCheck": check})
    head = header_change(ctx, current, now, record["branch_id"]["S"])
    if activate:
        head.sets += ["active_branch = :branch", "active_count = :count"]
        head.values.update({":branch": record["branch_id"], ":count": record["inherited_count"]})
    if window.branch == keys.MAIN_BRANCH:
        as_seen(head, window, point)
    else:
        source = Change(values={})
        as_seen(source, window, point)
        actions.append(source.write(table, record_key(pk, window.branch)))
    actions.append(head.write(table, header.header_key(pk)))
    return actions, row_check


def as_seen(change: Change, window: Window, point: ForkPoint) -> None:
    """The source as the fork read it: the window it cut (and the pin raised to the fork point,
    so its owner keeps the row), or the base it cut."""
    if point.seq == 0:
        return
    if point.owner != window.branch or point.seq < window.first_seq:
        change.conditions.append(
            "base_version = :seen_base"
            if window.base_version
            else "attribute_not_exists(base_version)"
        )
        change.values[":seen_base"] = n(window.base_version)
        if not window.base_version:
            del change.values[":seen_base"]
        return
    # The count it cut is exact only if no row came or went in the window meanwhile: an append
    # moves ``last_seq``, a pop the count (a pop then an append would bring the count back).
    change.conditions += [
        "first_seq = :seen_first",
        "message_count = :seen_count",
        "last_seq = :seen_last",
    ]
    change.values.update(
        {
            ":seen_first": n(window.first_seq),
            ":seen_count": n(window.own_count),
            ":seen_last": n(window.last_seq),
        }
    )
    if point.seq > window.pinned_seq:
        change.sets.append("pinned_seq = :at")
        change.conditions.append("(attribute_not_exists(pinned_seq) OR pinned_seq < :at)")
        change.values[":at"] = n(point.seq)


def equal(change: Change, name: str, seen: int) -> None:
    """``change`` applies only while the attribute is as read (absent reads as 0)."""
    if seen:
        change.conditions.append(f"{name} = :seen_{name}")
        change.values[f":seen_{name}"] = n(seen)
    else:
        change.conditions.append(f"attribute_not_exists({name})")


@dataclass
class Change:
    """An UpdateItem being built (a ConditionCheck when it sets nothing)."""

    values: Item
    sets: list[str] = field(default_factory=list)
    conditions: list[str] = field(default_factory=lambda: ["attribute_exists(sk)"])
    removes: list[str] = field(default_factory=list)

    def write(self, table: str, key: Item) -> Item:
        change: dict[str, Any] = {
            "TableName": table,
            "Key": key,
            "ConditionExpression": " AND ".join(self.conditions),
        }
        if self.values:
            change["ExpressionAttributeValues"] = self.values
        if not self.sets and not self.removes:
            return {"ConditionCheck": change}
        expression = f"SET {', '.join(self.sets)}" if self.sets else ""
        if self.removes:
            expression += f" REMOVE {', '.join(self.removes)}"
        change["UpdateExpression"] = expression.strip()
        return {"Update": change}


def header_change(
    ctx: StoreContext, current: Item, now: float, branch: str | None = None
) -> Change:
    """Activity on the header of the session's incarnation a branch id belongs to (or the one
    read, naming it on a header from before incarnations), while it is live."""
    change = Change(
        values={**ctx.activity(now)},
        sets=["updated_at = :now_iso", header.SLIDE_EXPIRY],
        conditions=[header.LIVE],
    )
    if branch is None and "incarnation" not in current:
        return change  # a header from before incarnations, and no branch id to name one
    incarnation = incarnation_of(branch) if branch else current["incarnation"]["S"]
    change.values[":incarnation"] = s(incarnation)
    if "incarnation" in current:
        change.conditions.append("incarnation = :incarnation")
    else:
        change.sets.append("incarnation = :incarnation")
        change.conditions.append("attribute_not_exists(incarnation)")
    return change


def _segments(segments: tuple[Segment, ...]) -> Item:
    return {"L": [segment.wire() for segment in segments]}


def branch_of(record: Item, window: Window, active: bool) -> Branch:
    """The public view of a branch record (``main``'s is the header)."""
    is_main = window.branch == keys.MAIN_BRANCH
    spent = [number(record, f"usage_{kind}_tokens", 0) for kind in ("input", "output")]
    if is_main:  # the session's usage, less what the other branches' turns spent
        spent = [
            spent[i] - number(record, f"branches_usage_{k}_tokens", 0)
            for i, k in enumerate(("input", "output"))
        ]
    return Branch(
        branch_id=window.branch,
        name=None if is_main or "name" not in record else record["name"]["S"],
        parent_branch=None if is_main else record["parent"]["S"],
        fork_seq=None if is_main else number(record, "fork_seq"),
        message_count=window.own_count + number(record, "inherited_count", 0),
        created_at=from_iso(record["created_at"]["S"]),
        updated_at=from_iso(record["updated_at"]["S"]),
        active=active,
        usage=Usage(input_tokens=spent[0], output_tokens=spent[1], total_tokens=sum(spent)),
    )


def get(ctx: StoreContext, pk: str, branch: str) -> Branch:
    """One branch of a live session."""
    current = header.live(header.get(ctx, pk), ctx.clock())
    record, window = load(ctx, pk, current, branch)
    return branch_of(record, window, active_branch(current) == branch)


def list_page(ctx: StoreContext, pk: str, *, limit: int, cursor: str | None) -> BranchPage:
    """``main`` first, then the other branches, newest first, ``limit`` a page (one Query)."""
    if not 1 <= limit <= 100:
        raise InvalidInputError("limit must be between 1 and 100")
    current = header.live(header.get(ctx, pk), ctx.clock())
    active = active_branch(current)
    found: list[Branch] = []
    start = keys.BRANCH_PREFIX + "~"  # above every record: the newest first
    if cursor is None:
        _, main = load(ctx, pk, current, keys.MAIN_BRANCH)
        found.append(branch_of(current, main, active == keys.MAIN_BRANCH))
    else:
        start = _position(cursor)
    request: dict[str, Any] = {
        "KeyConditionExpression": "pk = :pk AND sk BETWEEN :first AND :start",
        "ExpressionAttributeValues": {
            ":pk": s(pk),
            ":first": s(keys.BRANCH_PREFIX),
            ":start": s(start),
        },
        "ScanIndexForward": False,
        "ConsistentRead": True,
        "Limit": limit - len(found) + 1,  # one more tells whether a next page exists
    }
    items = ctx.table.call("query", TableName=ctx.table.name, **request).get("Items", [])
    page = [item for item in items if item["sk"]["S"] != start][: limit - len(found)]
    for item in page:
        if belongs(item["branch_id"]["S"], current):
            window = window_of(item, item["branch_id"]["S"], None)
            found.append(branch_of(item, window, item["branch_id"]["S"] == active))
    more = len([item for item in items if item["sk"]["S"] != start]) > len(page)
    next_cursor = encode_cursor("branches", b=page[-1]["sk"]["S"]) if more and page else None
    if more and not page:  # a first page of main alone
        next_cursor = encode_cursor("branches", b=start)
    return BranchPage(branches=found, next_cursor=next_cursor)


def _position(cursor: str) -> str:
    after = decode_cursor(cursor, "branches").get("b")
    if not isinstance(after, str) or not after.startswith(keys.BRANCH_PREFIX):
        raise InvalidCursorError("the cursor is not one this API issued for this listing")
    return after


def rename(ctx: StoreContext, pk: str, branch: str, name: str | None) -> Branch:
    """Name a branch (``None``: no name). ``main`` has none."""
    if branch == keys.MAIN_BRANCH:
        raise MainBranchError("main has no name")
    current = header.live(header.get(ctx, pk), ctx.clock())
    load(ctx, pk, current, branch)  # BranchNotFoundError
    change = Change(values={}, removes=["#name"] if name is None else [])
    if name is not None:
        change.sets.append("#name = :name")
        change.values[":name"] = s(name)
    update = change.write(ctx.table.name, record_key(pk, branch))["Update"]
    try:
        ctx.table.call("update_item", ExpressionAttributeNames={"#name": "name"}, **update)
    except ConditionFailed:
        raise BranchNotFoundError("branch not found") from None
    return get(ctx, pk, branch)


def activate(ctx: StoreContext, pk: str, branch: str) -> Branch:
    """Make ``branch`` the one every read and write without a branch named goes to. The
    header's ``active_count`` is the branch's count as the switch saw it (checked)."""
    for attempt in ctx.table.attempts():
        now = ctx.clock()
        current = header.live(header.get(ctx, pk), now)
        record, window = load(ctx, pk, current, branch)
        head = header_change(ctx, current, now)
        actions: list[Item] = []
        if branch == keys.MAIN_BRANCH:
            head.removes += ["active_branch", "active_count"]
        else:
            head.sets += ["active_branch = :branch", "active_count = :count"]
            head.values.update({":branch": s(branch), ":count": n(window.message_count)})
            seen = Change(
                values={":own": n(window.own_count), ":version": n(window.base_version)},
                conditions=["message_count = :own", "if_not_exists_base_version"],
            )
            seen.conditions[-1] = (
                "base_version = :version"
                if window.base_version
                else "attribute_not_exists(base_version)"
            )
            if not window.base_version:
                del seen.values[":version"]
            actions.append(seen.write(ctx.table.name, record_key(pk, branch)))
        actions.append(head.write(ctx.table.name, header.header_key(pk)))
        try:
            ctx.table.transact(actions)
        except Cancelled:
            ctx.table.backoff(attempt)  # a write to it, or the session went: look again
            continue
        return branch_of(record, window, True)
    raise ConflictError("too many concurrent writes to this session; retry")


def delete(ctx: StoreContext, pk: str, branch: str) -> bool:
    """Delete a branch: its record and base at once, its own rows (but the ones other branches
    share) by the cascade. ``main`` active again if it was active. Whether this call deleted it.

    The Delete is conditional on the pin the marker carries, so a fork that raised it meanwhile
    makes this one look again (the purge then keeps what that fork shares)."""
    if branch == keys.MAIN_BRANCH:
        raise MainBranchError("main cannot be deleted: delete the session, or clear it")
    for attempt in ctx.table.attempts():
        now = ctx.clock()
        current = header.live(header.get(ctx, pk), now)
        try:
            _, window = load(ctx, pk, current, branch)
        except BranchNotFoundError:
            return False
        head = header_change(ctx, current, now)
        head.values[":branch"] = s(branch)
        if active_branch(current) == branch:
            head.conditions.append("active_branch = :branch")
            head.removes += ["active_branch", "active_count"]
        else:
            head.conditions.append(
                "(attribute_not_exists(active_branch) OR active_branch <> :branch)"
            )
        gone = Change(values={":pinned": n(window.pinned_seq)})
        gone.conditions.append(
            "pinned_seq = :pinned" if window.pinned_seq else "attribute_not_exists(pinned_seq)"
        )
        if not window.pinned_seq:
            del gone.values[":pinned"]
        remove = gone.write(ctx.table.name, record_key(pk, branch))["ConditionCheck"]
        marker = retention.marker(ctx, pk)
        marker.update(branch=s(branch), pinned_seq=n(window.pinned_seq), deleted={"BOOL": True})
        actions: list[Item] = [
            {"Delete": remove},
            {"Delete": {"TableName": ctx.table.name, "Key": base_key(pk, branch)}},
            {"Put": {"TableName": ctx.table.name, "Item": marker}},
            summaries.delete_action(ctx, pk, branch),
            head.write(ctx.table.name, header.header_key(pk)),
        ]
        try:
            ctx.table.transact(actions)
        except Cancelled:
            ctx.table.backoff(attempt)  # gone (perhaps by our own lost answer), or pinned anew
            continue
        return True
    raise ConflictError("too many concurrent writes to this session; retry")
