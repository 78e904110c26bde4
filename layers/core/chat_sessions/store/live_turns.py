"""``ChatStore``'s methods for a chat turn while it runs: its start in one round trip
(``turn_start``, ``sessions``) and its stream log (``stream_log``). ``ChatStore`` inherits them.
"""

from __future__ import annotations

from chat_sessions.models import ChatSession, StoredMessage

from . import header, sessions, stream_log, turn_start
from .context import StoreContext
from .stream_log import Batch, Holder


class LiveTurnMethods:
    """A running chat turn's start and stream log, on a ``ChatStore``."""

    _ctx: StoreContext

    def begin_turn_with_window(
        self,
        user_id: str,
        session_id: str,
        turn_id: str,
        *,
        lease_seconds: int,
        turns: int,
        token_budget: int | None = None,
    ) -> tuple[ChatSession, list[StoredMessage] | None]:
        """Take the lease and read the active branch's context window in one round trip; the
        window is ``None`` when it must be read after the lease (not ``main``'s, or a write
        landed between the two)."""
        return turn_start.begin_with_window(
            self._ctx,
            user_id,
            session_id,
            turn_id,
            lease_seconds=lease_seconds,
            turns=turns,
            token_budget=token_budget,
        )

    def create_session_for_turn(
        self, user_id: str, session_id: str | None, turn_id: str, *, lease_seconds: int
    ) -> tuple[ChatSession, bool]:
        """Create a session whose lease ``turn_id`` already holds (one PutItem), or return the
        live one with this id, lease untouched (``False``)."""
        return sessions.create(
            self._ctx,
            user_id,
            session_id,
            title=None,
            metadata=None,
            ttl_seconds=None,
            turn=(turn_id, lease_seconds),
        )

    def log_stream(self, user_id: str, session_id: str, turn_id: str, batch: Batch) -> None:
        """Write one batch of a turn's stream log (one PutItem)."""
        stream_log.put(self._ctx, header.session_pk(user_id, session_id), turn_id, batch)

    def open_stream_log(
        self, user_id: str, session_id: str, turn_id: str, from_batch: int = 0
    ) -> tuple[Holder, list[Batch]]:
        """The session's lease holder and a turn's logged batches, in one round trip."""
        pk = header.session_pk(user_id, session_id)
        return stream_log.opened(self._ctx, pk, turn_id, from_batch)

    def read_stream_log(
        self, user_id: str, session_id: str, turn_id: str, from_batch: int
    ) -> list[Batch]:
        """A turn's logged batches from ``from_batch`` on (one Query)."""
        pk = header.session_pk(user_id, session_id)
        return stream_log.read(self._ctx, pk, turn_id, from_batch)

    def turn_holder(self, user_id: str, session_id: str) -> Holder:
        """Whose the session's lease is (one GetItem)."""
        return stream_log.holder(self._ctx, header.session_pk(user_id, session_id))
