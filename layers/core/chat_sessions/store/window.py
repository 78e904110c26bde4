"""The context window: the newest whole turns of a session, read at a cost that follows the
window, not the history (docs/chat.md, "The context window").

A window always starts at a user message (``codec.starts_turn``), so a tool call never loses its
output and a reasoning item never what follows it.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from chat_sessions.codec import starts_turn
from chat_sessions.models import ChatSession, StoredMessage

from . import history, rows, view
from .branch_state import Window
from .context import StoreContext

CHARS_PER_TOKEN = 4
ROWS_PER_TURN = 4
"""First guess at a turn's rows (user + answer, room for a tool call); the read doubles if short."""
MAX_WINDOW_ROWS = 2048
"""The most one window read doubles to: turns that long are read no further."""


def estimated_tokens(items: list[dict[str, Any]]) -> int:
    return sum(len(json.dumps(item, ensure_ascii=False)) for item in items) // CHARS_PER_TOKEN


def context_window(
    items: list[dict[str, Any]], *, turns: int, token_budget: int | None = None
) -> list[dict[str, Any]]:
    """The last ``turns`` user turns of ``items`` (oldest first), each whole. Under a token
    budget, whole turns go from the oldest end; the newest turn always stays."""
    starts = [index for index, item in enumerate(items) if starts_turn(item)]
    if turns <= 0 or not starts:
        return []
    starts = starts[-turns:]
    window = items[starts[0] :]
    if token_budget is not None:
        for start in starts[1:]:
            if estimated_tokens(window) <= token_budget:
                break
            window = items[start:]
    return window


def read_window(
    ctx: StoreContext,
    user_id: str,
    session_id: str,
    *,
    turns: int,
    token_budget: int | None = None,
    branch: str | None = None,
) -> tuple[ChatSession, list[StoredMessage]]:
    """The session and its context window, oldest first: one Query sized to the window
    (``ROWS_PER_TURN`` rows a turn), doubling only while the last turns are longer."""
    found: list[ChatSession] = []

    def newest(limit: int) -> list[StoredMessage]:
        session, messages = history.read_newest(ctx, user_id, session_id, limit, branch)
        found[:] = [session]
        return messages

    messages = sized(newest, turns=turns, token_budget=token_budget)
    return found[0], messages


def read_window_of(
    ctx: StoreContext, pk: str, window: Window, *, turns: int, token_budget: int | None = None
) -> list[StoredMessage]:
    """The context window of a branch's view as given (an edit's new branch, before it is
    stored), read the same way."""

    def newest(limit: int) -> list[StoredMessage]:
        found = rows.decode(ctx, pk, view.newest(ctx, pk, window, limit))
        found.reverse()
        return found

    return sized(newest, turns=turns, token_budget=token_budget)


def sized(
    newest: Callable[[int], list[StoredMessage]], *, turns: int, token_budget: int | None
) -> list[StoredMessage]:
    """The window from ``newest(limit)`` (oldest first), asking for ``ROWS_PER_TURN`` rows a
    turn and doubling while the newest ``turns`` are longer."""
    limit = min(ROWS_PER_TURN * max(turns, 1) + 1, MAX_WINDOW_ROWS)
    while True:
        messages = newest(limit)
        items = [m.item for m in messages]
        enough = sum(starts_turn(item) for item in items) >= turns  # the window starts in it
        if enough or len(messages) < limit or limit == MAX_WINDOW_ROWS:
            # At the cap, the turns that start within reach (none: an empty window).
            window = context_window(items, turns=turns, token_budget=token_budget)
            return messages[len(messages) - len(window) :]
        limit = min(limit * 2, MAX_WINDOW_ROWS)
