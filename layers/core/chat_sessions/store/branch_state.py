"""What a branch is in the table: its record, its base (the segments it shares) and its window
(docs/branches.md, "Model"). ``main``'s window is the session header's.

A branch's view is its segments, in order, then its own rows ``first_seq <= seq <= last_seq``.
Seqs come from the session's one clock, so they increase along every path.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from chat_sessions import keys
from chat_sessions.errors import BranchNotFoundError

from .context import StoreContext
from .wire import Item, n, number, s

BRANCH_ID_CHARS = "234567abcdefghijklmnopqrstuvwxyz"
"""Base32 in ASCII order, so ids sort as their times do."""
INCARNATION_CHARS, TIME_CHARS, RANDOM_CHARS = 6, 9, 5
MAX_SEGMENTS = 100
"""A path shares at most this many segments (about 6 KB of base): deeper forks are refused."""


def new_incarnation() -> str:
    """Names one life of a session id: a deleted and re-created id gets another, so the branch
    ids of the old one (which carry it) never reach the new one's history."""
    return "".join(secrets.choice(BRANCH_ID_CHARS) for _ in range(INCARNATION_CHARS))


def new_branch_id(incarnation: str, now: float) -> str:
    """``b_``, the session's incarnation, the time in ms (so a session's records sort by
    creation) and 25 random bits: chosen once, before the first attempt of the fork."""
    millis, digits = int(now * 1000), []
    for _ in range(TIME_CHARS):
        millis, digit = divmod(millis, 32)
        digits.append(BRANCH_ID_CHARS[digit])
    noise = "".join(secrets.choice(BRANCH_ID_CHARS) for _ in range(RANDOM_CHARS))
    return f"b_{incarnation}{''.join(reversed(digits))}{noise}"


def incarnation_of(branch: str) -> str:
    return branch[2 : 2 + INCARNATION_CHARS]


@dataclass(frozen=True)
class Segment:
    """The ``owner``'s own rows with ``low <= seq <= high``: ``count`` of them."""

    owner: str
    low: int
    high: int
    count: int

    def wire(self) -> Item:
        return {"M": {"o": s(self.owner), "l": n(self.low), "h": n(self.high), "c": n(self.count)}}

    @classmethod
    def of(cls, value: Item) -> Segment:
        fields = value["M"]
        return cls(fields["o"]["S"], number(fields, "l"), number(fields, "h"), number(fields, "c"))


@dataclass(frozen=True)
class Window:
    """A branch as reads and writes need it: its own rows' window and what it shares."""

    branch: str
    first_seq: int
    last_seq: int
    own_count: int
    pinned_seq: int
    """The highest of its own seqs another branch's segment refers to (0: none)."""
    segments: tuple[Segment, ...]
    base_version: int
    """Moves whenever ``segments`` change (a pop into them, a clear): what a fork saw."""

    @property
    def message_count(self) -> int:
        return self.own_count + sum(segment.count for segment in self.segments)

    def owner_of(self, seq: int) -> str | None:
        """Whose rows hold ``seq`` in this view (``None``: outside it)."""
        if self.first_seq <= seq <= self.last_seq:
            return self.branch
        for segment in self.segments:
            if segment.low <= seq <= segment.high:
                return segment.owner
        return None


def record_key(pk: str, branch: str) -> Item:
    """The item holding ``branch``'s window: the header for ``main``, else its record."""
    sk = keys.SESSION_SK if branch == keys.MAIN_BRANCH else keys.branch_sk(branch)
    return {"pk": s(pk), "sk": s(sk)}


def base_key(pk: str, branch: str) -> Item:
    return {"pk": s(pk), "sk": s(keys.base_sk(branch))}


def active_branch(header: Item) -> str:
    return str(header["active_branch"]["S"]) if "active_branch" in header else keys.MAIN_BRANCH


def belongs(branch: str, header: Item) -> bool:
    """Whether a branch is of this incarnation of the session (a deleted and re-created id
    leaves the old one's branches until the cascade removes them)."""
    return "incarnation" in header and incarnation_of(branch) == header["incarnation"]["S"]


def window_of(record: Item, branch: str, base: Item | None) -> Window:
    segments = tuple(Segment.of(value) for value in base["segments"]["L"]) if base else ()
    return Window(
        branch=branch,
        first_seq=number(record, "first_seq"),
        last_seq=number(record, "last_seq"),
        own_count=number(record, "message_count"),
        pinned_seq=number(record, "pinned_seq", 0),
        segments=segments,
        base_version=number(record, "base_version", 0),
    )


def load(ctx: StoreContext, pk: str, header: Item, branch: str) -> tuple[Item, Window]:
    """The record (the header for ``main``) and window of a live session's branch: one
    BatchGetItem, or none for ``main`` without a base.

    Raises:
        BranchNotFoundError: no such branch in this session.
    """
    if branch == keys.MAIN_BRANCH:
        base = ctx.table.get(base_key(pk, branch)) if "has_base" in header else None
        return header, window_of(header, branch, base)
    found = {
        item["sk"]["S"]: item
        for item in ctx.table.batch_get([record_key(pk, branch), base_key(pk, branch)])
    }
    record = found.get(keys.branch_sk(branch))
    if record is None or not belongs(branch, header):
        raise BranchNotFoundError("branch not found")
    return record, window_of(record, branch, found.get(keys.base_sk(branch)))
