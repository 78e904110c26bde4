"""The store: every DynamoDB call chat-sessions makes (design and costs in docs/data-model.md).

``ChatStore`` is the public face; each rule lives in the module named after it:

- ``table``: the door to boto3 (retries, client tokens, error translation, paging, batches);
- ``header``: the session header, liveness and sliding expiry;
- ``sessions``, ``history``, ``append``, ``retention``, ``lease``, ``idempotency``, ``deletion``,
  ``purge``: the operations;
- ``branch_state``, ``branches``, ``branch_append``, ``branch_history``, ``view``, ``edits``,
  ``summaries``: branches (docs/branches.md), whose methods ``ChatStore`` takes from ``tree``;
- ``rows`` and ``wire``: how items are laid out in the table.

Delete-all requests and the cascade's purges come from ``upkeep``; a running chat turn's start
and stream log (``turn_start``, ``stream_log``) from ``live_turns``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from chat_sessions.clock import Clock
from chat_sessions.codec import MAX_ITEM_BYTES
from chat_sessions.idempotency import IdempotencyRecord
from chat_sessions.models import (
    AppendResult,
    ChatSession,
    MessagePage,
    Order,
    SessionPage,
    StoredMessage,
    StoredResponse,
    check_branch_id,
)

from . import append, history, idempotency, lease, sessions, window
from .context import StoreContext
from .lease import TurnCommit
from .live_turns import LiveTurnMethods
from .sessions import UNSET
from .table import Table
from .tree import BranchMethods
from .upkeep import UpkeepMethods

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient


class ChatStore(BranchMethods, UpkeepMethods, LiveTurnMethods):
    """Sessions and their messages for many users in one DynamoDB table.

    Args:
        table_name: The table; defaults to ``CHAT_SESSIONS_TABLE_NAME``.
        client: A boto3 DynamoDB client; defaults to a lazily created, process-wide one.
        clock: Seconds since the epoch; expiry and sequence numbers follow it (tests inject one).
        session_ttl_seconds: Idle lifetime; defaults to ``CHAT_SESSIONS_SESSION_TTL_SECONDS``.
        ttl_bounds: The ``(min, max)`` a session's own ``ttl_seconds`` may take; defaults to
            ``CHAT_SESSIONS_{MIN,MAX}_SESSION_TTL_SECONDS``.
        max_stored_items: The retention cap (0: none); defaults to
            ``CHAT_SESSIONS_MAX_STORED_ITEMS``. See ``append_items``.
        conflict_budget_seconds: How long a call that gets no definite answer (concurrent
            writers, throttling, 5xx, timeouts) is resent before ``ConflictError``,
            ``ThrottledError`` or ``UnavailableError`` (at least 3 tries).
        sleep: How to wait between those tries (tests may inject one).
    """

    def __init__(
        self,
        table_name: str | None = None,
        *,
        client: DynamoDBClient | None = None,
        clock: Clock = time.time,
        session_ttl_seconds: int | None = None,
        ttl_bounds: tuple[int, int] | None = None,
        max_stored_items: int | None = None,
        conflict_budget_seconds: float = 5.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if None in (table_name, session_ttl_seconds, ttl_bounds, max_stored_items):
            from chat_sessions.config import get_settings

            settings = get_settings()
            table_name = table_name or settings.table_name
            if session_ttl_seconds is None:
                session_ttl_seconds = settings.session_ttl_seconds
            if ttl_bounds is None:
                ttl_bounds = (settings.min_session_ttl_seconds, settings.max_session_ttl_seconds)
            if max_stored_items is None:
                max_stored_items = settings.max_stored_items
        assert table_name is not None
        assert session_ttl_seconds is not None
        assert ttl_bounds is not None
        assert max_stored_items is not None
        if session_ttl_seconds <= 0:
            raise ValueError("session_ttl_seconds must be positive")
        self.table = Table(table_name, client, budget_seconds=conflict_budget_seconds, sleep=sleep)
        self._ctx = StoreContext(
            self.table, clock, session_ttl_seconds, ttl_bounds, max_stored_items
        )

    @property
    def client(self) -> DynamoDBClient:
        return self.table.client

    @property
    def table_name(self) -> str:
        return self.table.name

    @property
    def session_ttl_seconds(self) -> int:
        return self._ctx.session_ttl_seconds

    @property
    def max_stored_items(self) -> int:
        return self._ctx.max_stored_items

    # ----------------------------------------------------------------------------------- sessions

    def create_session(
        self,
        user_id: str,
        session_id: str | None = None,
        *,
        title: str | None = None,
        metadata: dict[str, str] | None = None,
        ttl_seconds: int | None = None,
    ) -> tuple[ChatSession, bool]:
        """Create a session, or return the live one that already has this id (never overwritten).

        Args:
            ttl_seconds: This session's idle lifetime, within ``ttl_bounds``; the deployment's
                when ``None``.

        Returns:
            The session and whether this call created it.
        """
        return sessions.create(
            self._ctx, user_id, session_id, title=title, metadata=metadata, ttl_seconds=ttl_seconds
        )

    def get_session(self, user_id: str, session_id: str) -> ChatSession:
        """The live session, or ``SessionNotFoundError`` (absent, expired, or not this user's)."""
        return sessions.get(self._ctx, user_id, session_id)

    def list_sessions(
        self,
        user_id: str,
        *,
        limit: int = 20,
        cursor: str | None = None,
        metadata: dict[str, str] | None = None,
    ) -> SessionPage:
        """The user's live sessions, most recent activity first, ``limit`` per page.

        Args:
            metadata: Only sessions whose metadata has every one of these key/value pairs.
        """
        return sessions.list_page(self._ctx, user_id, limit=limit, cursor=cursor, metadata=metadata)

    def update_session(
        self,
        user_id: str,
        session_id: str,
        *,
        title: str | None = UNSET,
        metadata: dict[str, str] = UNSET,
    ) -> ChatSession:
        """Set the title (``None`` removes it) and/or replace the metadata; counts as activity."""
        return sessions.update(self._ctx, user_id, session_id, title=title, metadata=metadata)

    def set_generated_title(self, user_id: str, session_id: str, title: str) -> ChatSession:
        """Set a generated title, unless the user set one (``TitleSetByUserError``)."""
        return sessions.set_generated_title(self._ctx, user_id, session_id, title)

    def delete_session(self, user_id: str, session_id: str) -> bool:
        """Delete the session: one write, whatever its history; idempotent.

        Its messages are unreachable at once (they hang off the header) and are physically
        removed by the stream consumer (``purge_session``), as for sessions that expire.

        Returns:
            Whether this call deleted a live session (``False`` when absent or already expired).
        """
        return sessions.delete(self._ctx, user_id, session_id)

    # ----------------------------------------------------------------------------------- messages

    def append_items(
        self,
        user_id: str,
        session_id: str,
        items: Sequence[object],
        *,
        create_missing: bool = False,
        last_seq_hint: int | None = None,
        turn: TurnCommit | None = None,
        idempotency: IdempotencyRecord | None = None,
        max_item_bytes: int = MAX_ITEM_BYTES,
        branch: str | None = None,
    ) -> AppendResult:
        """Append a batch atomically and in order, after every batch committed before it.

        Args:
            items: Agents SDK input items (dicts or pydantic models).
            create_missing: Create the session if it is absent or expired (the SDK ``Session`` way);
                otherwise such a session raises ``SessionNotFoundError``.
            last_seq_hint: The session's ``last_seq`` as last seen by the caller; saves the conflict
                round trip when the clock alone would not be past it.
            turn: Commit a chat turn: only while holding its lease, which the write releases,
                adding the turn's token usage to the session.
            idempotency: Record this write under its Idempotency-Key, in the same transaction.
                If the key is already recorded (within 24 h, in this history), nothing is
                written: the same request gets the recorded batch and response back
                (``replay``), another request ``IdempotencyKeyReusedError``.
            max_item_bytes: The largest item taken, as JSON (an edge's own limit; at most
                ``codec.MAX_ITEM_BYTES``, 32 MiB).
            branch: The branch to append to; the active one when ``None`` (docs/branches.md).

        With a retention cap (``max_stored_items``), a batch that would take the session over it
        removes the oldest whole turns in the same transaction: the window's start moves to a
        user message, so no turn is cut and no tool call loses its output, and the cascade
        purges the rows below it. The newest turn always stays, even alone over the cap.

        Raises:
            SessionNotFoundError, ItemTooLargeError, BatchTooLargeError, InvalidInputError,
            TurnLostError: nothing was written. ConflictError, ThrottledError, UnavailableError:
            no answer came within the retry budget; the batch may have been stored with every
            answer lost (retry with an Idempotency-Key to be exact across calls).
        """
        return append.append(
            self._ctx,
            user_id,
            session_id,
            items,
            create_missing=create_missing,
            last_seq_hint=last_seq_hint,
            turn=turn,
            idempotency_record=idempotency,
            max_item_bytes=max_item_bytes,
            branch=None if branch is None else check_branch_id(branch),
        )

    def read_newest(
        self, user_id: str, session_id: str, limit: int | None, *, branch: str | None = None
    ) -> tuple[ChatSession, list[StoredMessage]]:
        """The session and the newest ``limit`` messages (all when ``None``) of ``branch`` (the
        active one when ``None``), oldest first."""
        branch = None if branch is None else check_branch_id(branch)
        return history.read_newest(self._ctx, user_id, session_id, limit, branch)

    def read_window(
        self,
        user_id: str,
        session_id: str,
        *,
        turns: int,
        token_budget: int | None = None,
        branch: str | None = None,
    ) -> tuple[ChatSession, list[StoredMessage]]:
        """The session and its newest ``turns`` whole user turns, oldest first (within
        ``token_budget`` estimated tokens, the newest turn always kept). Costs what the window
        holds, not the history."""
        branch = None if branch is None else check_branch_id(branch)
        return window.read_window(
            self._ctx, user_id, session_id, turns=turns, token_budget=token_budget, branch=branch
        )

    def read_batch(
        self, user_id: str, session_id: str, first_seq: int, last_seq: int, *, branch: str = "main"
    ) -> list[StoredMessage]:
        """The messages one append stored in ``branch``, by its seq range, oldest first."""
        branch = check_branch_id(branch)
        return history.read_batch(self._ctx, user_id, session_id, first_seq, last_seq, branch)

    def list_messages(
        self,
        user_id: str,
        session_id: str,
        *,
        limit: int = 50,
        cursor: str | None = None,
        order: Order = "asc",
        branch: str | None = None,
    ) -> MessagePage:
        """One page of ``branch``'s whole history (the active one when ``None``), oldest first
        (``asc``) or newest first (``desc``)."""
        branch = None if branch is None else check_branch_id(branch)
        return history.list_page(
            self._ctx, user_id, session_id, limit=limit, cursor=cursor, order=order, branch=branch
        )

    def pop_item(
        self, user_id: str, session_id: str, *, branch: str | None = None
    ) -> StoredMessage | None:
        """Remove and return the newest message of ``branch`` (the active one when ``None``);
        ``None`` when there is none. One another branch shares stays, for that branch."""
        branch = None if branch is None else check_branch_id(branch)
        return history.pop(self._ctx, user_id, session_id, branch)

    def clear_items(self, user_id: str, session_id: str, *, branch: str | None = None) -> None:
        """Remove every message of ``branch`` (the active one when ``None``) at once; the
        session stays."""
        branch = None if branch is None else check_branch_id(branch)
        history.clear(self._ctx, user_id, session_id, branch)

    # ---------------------------------------------------------------------------------- chat turns

    def begin_turn(
        self, user_id: str, session_id: str, turn_id: str, *, lease_seconds: int
    ) -> ChatSession:
        """Take the session's turn lease; the session as it now stands."""
        return lease.begin(self._ctx, user_id, session_id, turn_id, lease_seconds=lease_seconds)

    def end_turn(self, user_id: str, session_id: str, turn_id: str) -> None:
        """Release the lease of a turn that stores nothing; a no-op if it is not held."""
        lease.end(self._ctx, user_id, session_id, turn_id)

    def find_replay(
        self,
        user_id: str,
        session_id: str,
        key: str,
        request_hash: str,
        *,
        history_start: int | None = None,
    ) -> StoredResponse | None:
        """The response recorded under an Idempotency-Key in this session's history."""
        return idempotency.find(
            self._ctx, user_id, session_id, key, request_hash, history_start=history_start
        )


__all__ = ["UNSET", "ChatStore", "TurnCommit"]
