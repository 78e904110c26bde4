"""Resumable streams (docs/chat.md, "Resumable streams"): a turn's events logged in batches as
they stream (``StreamRecorder``), and read back for a client that re-attaches (``Resumption``).

The recorder writes at most once per ``FLUSH_SECONDS``, off the live stream's path. A failed
write is retried under the same batch key with what it held plus what came since, so the log
never duplicates an event or skips one.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

from .errors import StreamIncompleteError, TurnNotFoundError
from .store import ChatStore
from .store.stream_log import TTL_SECONDS, Batch, Event, Holder

logger = logging.getLogger(__name__)

FLUSH_SECONDS = 1.0
"""The least time between two writes of a turn's log (the first and the terminal go at once)."""
MAX_BATCH_BYTES = 300_000
"""A batch is cut here (DynamoDB items are at most 400 KB)."""
FINAL_ATTEMPTS = 3
"""Writes of the batch holding the terminal event before the recorder gives up."""
POLL_SECONDS = 0.5
"""How often a resumed stream reads the log while the turn runs."""
LEASE_CHECK_SECONDS = 5.0
"""Quiet time after which a resumed stream checks that the turn still holds the lease."""
GRACE_SECONDS = 10.0
"""Time allowed, after the lease went, for the terminal event to be logged."""


def _size(event: Event) -> int:
    return len(json.dumps(event, ensure_ascii=False, separators=(",", ":")).encode())


LONG_TEXT = 1000
"""A field of an event too large to log is replaced when it is longer than this."""


def _loggable(event: Event) -> Event:
    """The event, or, when it alone would not fit a batch (a huge tool output), the same event
    with its long text fields replaced by a note (its ``call_id`` and shape stay)."""
    if _size(event) <= MAX_BATCH_BYTES:
        return event
    event_id, name, data = event
    kept = {
        key: _omitted(value) if isinstance(value, str) and len(value) > LONG_TEXT else value
        for key, value in data.items()
    }
    return (event_id, name, kept)


def _omitted(text: str) -> str:
    return f"[omitted from the stream log: {len(text.encode())} bytes; the stored message has it]"


@dataclass
class StreamRecorder:
    """Logs one turn's events (``add``) in batches; ``close`` waits until all are written."""

    write: Callable[[Batch], None]
    history_start: int
    flush_seconds: float = FLUSH_SECONDS
    expires_at: int = field(default_factory=lambda: math.floor(time.time()) + TTL_SECONDS)
    """One expiry for all the turn's batches: the log never expires in part."""
    _pending: list[Event] = field(default_factory=list)
    _retry: list[Event] = field(default_factory=list)
    """The events a failed write of batch ``_index`` held: its next write is a superset."""
    _index: int = 0
    _done: bool = False
    _wake: asyncio.Event = field(default_factory=asyncio.Event)
    _ending: asyncio.Event = field(default_factory=asyncio.Event)
    _task: asyncio.Task[None] | None = None

    def add(self, event_id: int, name: str, data: dict[str, Any], *, final: bool = False) -> None:
        self._pending.append(_loggable((event_id, name, data)))
        if final:
            self._ending.set()
        self._wake.set()
        if self._task is None:
            self._task = asyncio.create_task(self._run())

    async def close(self) -> None:
        if self._task is not None:
            await self._task

    async def _run(self) -> None:
        failures = 0  # of writes since the terminal event came
        while not self._done:
            await self._wake.wait()
            self._wake.clear()
            written = await self._flush()
            failures = 0 if written or not self._ending.is_set() else failures + 1
            if self._retry or self._pending:  # a failed write, or a batch cut at its size
                self._wake.set()
            if failures >= FINAL_ATTEMPTS:
                logger.warning("stream log incomplete: its last batch could not be written")
                return
            await self._pause(failures)

    async def _pause(self, failures: int) -> None:
        """Until the next write may go: ``flush_seconds``, cut short by the terminal event
        (then only a backoff after a failure)."""
        if self._ending.is_set():
            await asyncio.sleep(0.2 * failures)
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._ending.wait(), self.flush_seconds)

    async def _flush(self) -> bool:
        """Write what is waiting as batch ``_index``; whether it was written."""
        events, taken = list(self._retry), 0
        size = sum(map(_size, events))
        for event in self._pending:
            size += _size(event)
            if events and size > MAX_BATCH_BYTES:
                break
            events.append(event)
            taken += 1
        if not events:
            return True
        del self._pending[:taken]
        final = self._ending.is_set() and not self._pending
        try:
            batch = Batch(self._index, events, final, self.history_start, self.expires_at)
            await asyncio.to_thread(self.write, batch)
        except Exception as exc:  # the log never fails the turn: retried at the next flush
            logger.warning("stream log write failed", extra={"error": type(exc).__name__})
            self._retry = events
            return False
        self._index, self._retry, self._done = self._index + 1, [], final
        return True


@dataclass
class Resumption:
    """A client re-attaching to a turn: its logged events after ``last_id``, then the rest as
    they are logged, until the terminal event (``events``)."""

    store: ChatStore
    user_id: str
    session_id: str
    turn_id: str
    last_id: int
    batches: list[Batch]
    limit_seconds: float
    """The longest a resume waits (the turn's lease)."""
    clock: Callable[[], float] = time.monotonic

    @classmethod
    async def open(
        cls,
        store: ChatStore,
        user_id: str,
        session_id: str,
        turn_id: str,
        last_id: int,
        limit_seconds: float,
    ) -> Resumption:
        """One round trip (the lease holder and the log); ``TurnNotFoundError`` if the turn is
        neither logged nor running in this session's current history."""
        holder, batches = await asyncio.to_thread(
            store.open_stream_log, user_id, session_id, turn_id
        )
        if not _known(turn_id, holder, batches):
            raise TurnNotFoundError("no such turn in this session, or its stream log expired")
        return cls(store, user_id, session_id, turn_id, last_id, batches, limit_seconds)

    async def events(self) -> AsyncIterator[Event | None]:
        """The missed events, then the live ones; ``None`` on each poll that brought nothing
        (the caller's chance to send a heartbeat). Ends after the terminal event.

        Raises:
            StreamIncompleteError: the lease went and no terminal event was logged in time.
        """
        start = quiet = checked = self.clock()
        index, lost_at = -1, None
        batches = self.batches
        while True:
            for batch in batches:
                if batch.index > index + 1:  # a batch missing (never written): no further
                    raise StreamIncompleteError(
                        "the turn's stream log has a gap: read the session's messages"
                    )
                index = batch.index
                for event in batch.events:
                    if event[0] > self.last_id:
                        self.last_id, quiet = event[0], self.clock()
                        yield event
                if batch.final:
                    return
            yield None
            now = self.clock()
            if lost_at is None and now - max(quiet, checked) >= LEASE_CHECK_SECONDS:
                checked = now
                if await self._lease_gone():
                    lost_at = now
            if now - start > self.limit_seconds or (
                lost_at is not None and now - lost_at >= GRACE_SECONDS
            ):
                raise StreamIncompleteError(
                    "the turn ended without logging its last events: read the session's messages"
                )
            await asyncio.sleep(POLL_SECONDS)
            batches = await asyncio.to_thread(
                self.store.read_stream_log,
                self.user_id,
                self.session_id,
                self.turn_id,
                max(index, 0),  # again from the last batch read: it may have grown
            )

    async def _lease_gone(self) -> bool:
        holder = await asyncio.to_thread(self.store.turn_holder, self.user_id, self.session_id)
        return holder.turn_id != self.turn_id


def _known(turn_id: str, holder: Holder, batches: list[Batch]) -> bool:
    """The turn runs now, or its log is there and of the session's current history."""
    if batches:
        return batches[0].history_start >= holder.history_start
    return holder.turn_id == turn_id
