"""``DynamoDBSession``: the OpenAI Agents SDK ``Session`` protocol over ``ChatStore``.

    session = DynamoDBSession("conversation-1", user_id=verified_sub)
    await Runner.run(agent, "Hello", session=session)

Opening a session makes no DynamoDB call. Reads are strongly consistent, so a fresh object sees
every earlier write. Blocking boto3 calls run in a worker thread. A write that has started completes
even if the awaiting task is cancelled (a streaming client disconnecting); the cancellation is then
re-raised.
"""

from __future__ import annotations

import asyncio
from functools import partial
from typing import TYPE_CHECKING, Any, cast

from agents.memory import SessionABC
from agents.memory.session_settings import SessionSettings, resolve_session_limit

from .aio import complete_despite_cancellation
from .compaction import Summarise, compact
from .errors import SessionNotFoundError
from .models import ChatSession, StoredMessage, check_branch_id, check_session_id, check_user_id
from .store import ChatStore

if TYPE_CHECKING:
    from agents.items import TResponseInputItem


class DynamoDBSession(SessionABC):
    """One user's conversation, stored in DynamoDB by ``ChatStore``.

    Args:
        session_id: The conversation id: any non-empty string of at most 1,024 UTF-8 bytes.
        user_id: The owner, taken from a verified identity (e.g. a JWT ``sub``).
        store: The store; defaults to one configured from ``CHAT_SESSIONS_*`` settings.
        session_settings: SDK settings; ``limit`` bounds ``get_items()`` without an argument.
        context_turns: Opt in to a context window: ``get_items()`` without a limit returns the
            newest this many whole user turns (a tool call never without its output), read at a
            cost that follows the window, not the history. ``Runner.run`` reads it every turn.
        context_token_budget: With ``context_turns``, drop whole turns from the oldest end
            while the window is estimated over this many tokens (the newest turn always stays).
        branch: The branch to read and write (docs/branches.md); the session's active one,
            whichever it is at each call, when ``None``.
        compaction: With ``context_turns`` and ``context_token_budget``, summarise the oldest
            turns over the budget instead of leaving them out: ``get_items()`` then starts with
            the branch's summary (stored, cumulative, written once per span). Pass
            ``chat_sessions.compaction.summariser(lambda: model)``, or your own.
    """

    def __init__(
        self,
        session_id: str,
        *,
        user_id: str,
        store: ChatStore | None = None,
        session_settings: SessionSettings | None = None,
        context_turns: int | None = None,
        context_token_budget: int | None = None,
        branch: str | None = None,
        compaction: Summarise | None = None,
    ) -> None:
        self.session_id = check_session_id(session_id)
        self.user_id = check_user_id(user_id)
        self.session_settings = session_settings or SessionSettings()
        self._store = store if store is not None else ChatStore()
        self.context_turns = context_turns
        self.context_token_budget = context_token_budget
        self.branch = None if branch is None else check_branch_id(branch)
        self.compaction = compaction
        self._last_seq: int | None = None  # a hint that saves a round trip; never trusted

    async def get_items(self, limit: int | None = None) -> list[TResponseInputItem]:
        """The newest ``limit`` items, oldest first; without one, the context window when
        ``context_turns`` is set, else everything.

        ``[]`` for an unknown, expired or empty session. Like ``SQLiteSession``, 0 gives ``[]``
        and a negative limit gives everything.
        """
        resolved = resolve_session_limit(limit, self.session_settings)
        if resolved == 0:
            return []
        if (
            resolved is None
            and self.compaction
            and self.context_turns
            and self.context_token_budget
        ):
            compacted = await self._compacted(
                self.compaction, self.context_turns, self.context_token_budget
            )
            return cast("list[TResponseInputItem]", compacted)
        try:
            session, messages = await asyncio.to_thread(self._read, resolved)
        except SessionNotFoundError:
            return []
        self._last_seq = session.last_seq
        return [cast("TResponseInputItem", message.item) for message in messages]

    def _read(self, limit: int | None) -> tuple[ChatSession, list[StoredMessage]]:
        if limit is None and self.context_turns is not None:
            return self._store.read_window(
                self.user_id,
                self.session_id,
                turns=self.context_turns,
                token_budget=self.context_token_budget,
                branch=self.branch,
            )
        return self._store.read_newest(
            self.user_id,
            self.session_id,
            None if limit is None or limit < 0 else limit,
            branch=self.branch,
        )

    async def _compacted(
        self, summarise: Summarise, turns: int, token_budget: int
    ) -> list[dict[str, Any]]:
        """The context window with the branch's summary in place of what it covers."""
        try:
            session, messages = await asyncio.to_thread(
                partial(self._store.read_window, self.user_id, self.session_id, branch=self.branch),
                turns=turns,
            )
            branch = self.branch or session.active_branch
            summary = await asyncio.to_thread(
                self._store.get_summary, self.user_id, self.session_id, branch
            )
        except SessionNotFoundError:
            return []
        self._last_seq = session.last_seq
        compacted = await compact(messages, summary, token_budget=token_budget, summarise=summarise)
        if compacted.summary is not None:
            await asyncio.to_thread(
                self._store.put_summary, self.user_id, self.session_id, branch, compacted.summary
            )
        return compacted.items

    async def add_items(self, items: list[TResponseInputItem]) -> None:
        """Append ``items`` atomically, creating the session on first use."""
        if not items:
            return
        result = await complete_despite_cancellation(
            asyncio.to_thread(
                self._store.append_items,
                self.user_id,
                self.session_id,
                list(items),
                create_missing=True,
                last_seq_hint=self._last_seq,
                branch=self.branch,
            )
        )
        self._last_seq = result.last_seq

    async def pop_item(self) -> TResponseInputItem | None:
        """Remove and return the newest item; ``None`` if there is none."""
        try:
            message = await complete_despite_cancellation(
                asyncio.to_thread(
                    self._store.pop_item, self.user_id, self.session_id, branch=self.branch
                )
            )
        except SessionNotFoundError:
            return None
        return None if message is None else cast("TResponseInputItem", message.item)

    async def clear_session(self) -> None:
        """Remove every item; the session itself (title, metadata) stays."""
        try:
            await complete_despite_cancellation(
                asyncio.to_thread(
                    self._store.clear_items, self.user_id, self.session_id, branch=self.branch
                )
            )
        except SessionNotFoundError:
            return
