"""A chat turn's start: the lease and its context window in one round trip (docs/chat.md, "The
first byte").

The window is read alongside the lease, so possibly just before it is held. It is used only if
the header its Query read equals the header the lease returned in all but the lease's own
attributes: every write that changes what ``main``'s window shows changes the header too. Else
it is read again after the lease, as before, so the model still sees every turn committed
before this one.
"""

from __future__ import annotations

from typing import Any

from chat_sessions import keys
from chat_sessions.models import ChatSession, StoredMessage

from . import branch_state, header, history, lease, rows, window
from .context import StoreContext
from .wire import Item

LEASE_OWN = frozenset({"turn_id", "turn_expires_at", "expires_at"})
"""What taking the lease changes in the header."""


class _NotMain(Exception):
    """The window is not ``main``'s own: the branch record decides it (read after the lease)."""


def begin_with_window(
    ctx: StoreContext,
    user_id: str,
    session_id: str,
    turn_id: str,
    *,
    lease_seconds: int,
    turns: int,
    token_budget: int | None,
) -> tuple[ChatSession, list[StoredMessage] | None]:
    """Take the lease and read the active branch's window together; the session, and the window
    if it is ``main``'s and still current when the lease was taken (else ``None``: read it)."""
    pk = header.session_pk(user_id, session_id)
    seen: list[Item] = []

    def newest(limit: int) -> list[StoredMessage]:
        found, newest_rows = history.newest_rows(ctx, pk, limit, ctx.clock())
        seen.append(found)
        if branch_state.active_branch(found) != keys.MAIN_BRANCH or "has_base" in found:
            raise _NotMain
        messages = rows.decode(ctx, pk, newest_rows)
        messages.reverse()
        return messages

    def read() -> list[StoredMessage] | None:
        try:
            return window.sized(newest, turns=turns, token_budget=token_budget)
        except Exception:  # read again after the lease, inside the turn (which releases it)
            return None

    def take() -> Item:
        return lease.take(ctx, user_id, session_id, turn_id, lease_seconds=lease_seconds)

    both: list[Any] = ctx.table.together([take, read])
    taken: Item = both[0]
    messages: list[StoredMessage] | None = both[1]
    session = header.session_of(taken, ctx.session_ttl_seconds)
    if messages is None or any(_beyond_lease(found) != _beyond_lease(taken) for found in seen):
        return session, None
    return session, messages


def _beyond_lease(item: Item) -> dict[str, Any]:
    return {name: value for name, value in item.items() if name not in LEASE_OWN}
