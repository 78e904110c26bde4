"""A chat turn's Server-Sent Events (docs/chat.md): numbered as they happen and logged for
resumption (``LiveTurn``), read back for a client that re-attaches (``resumed_frames``), or
replayed from an Idempotency-Key's record (``replay_frames``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from .aio import complete_despite_cancellation
from .errors import ChatSessionsError, InvalidInputError
from .http import error_event
from .resumption import Resumption, StreamRecorder
from .schemas import display_text
from .store import ChatStore
from .turns import TurnResult
from .upstream import log_failure

logger = logging.getLogger(__name__)
HEARTBEAT_SECONDS = 15.0


def done_event(result: TurnResult) -> dict[str, Any]:
    """The data of a turn's ``done``: what the buffered reply says, as the stream ends."""
    usage = {
        "input_tokens": result.input_tokens,
        "output_tokens": result.output_tokens,
        "total_tokens": result.total_tokens,
    }
    return {
        "message_count": result.message_count,
        "usage": usage,
        "title": result.title,
        "branch": result.branch,
    }


def sse(event_id: int, name: str, data: dict[str, Any]) -> str:
    payload = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    return f"id: {event_id}\nevent: {name}\ndata: {payload}\n\n"


@dataclass
class LiveTurn:
    """One turn's events as they happen: numbered, logged for resumption (``resumption``), and
    queued as SSE frames for the client, who may go away: the logging goes on."""

    store: ChatStore
    user_id: str
    session_id: str
    turn_id: str
    logged: bool
    """A stream is logged for resumption; a buffered reply has no one to resume it."""
    frames_out: asyncio.Queue[str | None] = field(default_factory=asyncio.Queue)
    next_id: int = 1
    recorder: StreamRecorder | None = None

    def announce(self) -> None:
        """``POST /v1/chat``'s ``session`` event (not logged: the resume URL names it)."""
        self._send("session", {"session_id": self.session_id}, logged=False)

    def start(self, history_start: int) -> None:
        if self.logged:
            write = partial(self.store.log_stream, self.user_id, self.session_id, self.turn_id)
            self.recorder = StreamRecorder(write, history_start)

    async def emit(self, name: str, data: dict[str, Any]) -> None:
        self._send(name, data)

    async def finish(self, task: asyncio.Task[TurnResult]) -> None:
        """After the turn: its terminal event, logged and sent; then the log's last write."""
        try:
            self._send("done", done_event(await task), final=True)
        except Exception as error:
            if not isinstance(error, ChatSessionsError):  # our bug: the edge never sees it
                log_failure(logger, "stream failed", error, ChatSessionsError("internal error"))
            self._send("error", error_event(error), final=True)
        finally:
            try:
                if self.recorder is not None:
                    await self.recorder.close()
            finally:
                self.frames_out.put_nowait(None)

    async def frames(self, finished: asyncio.Task[None]) -> AsyncIterator[str]:
        """The SSE frames until the terminal one. If the client goes away (this generator is
        closed), the turn and its log still run to their end before the invocation ends."""
        try:
            while (frame := await next_or_heartbeat(self.frames_out)) is not None:
                yield frame
        finally:
            if not finished.done():
                with contextlib.suppress(Exception):
                    await complete_despite_cancellation(finished)

    def _send(
        self, name: str, data: dict[str, Any], *, final: bool = False, logged: bool = True
    ) -> None:
        event_id, self.next_id = self.next_id, self.next_id + 1
        if logged and self.recorder is not None:
            self.recorder.add(event_id, name, data, final=final)
        self.frames_out.put_nowait(sse(event_id, name, data))


async def next_or_heartbeat(frames: asyncio.Queue[str | None]) -> str | None:
    """The next frame, or a keep-alive comment after ``HEARTBEAT_SECONDS`` without one."""
    try:
        return await asyncio.wait_for(frames.get(), HEARTBEAT_SECONDS)
    except TimeoutError:
        return ": keep-alive\n\n"  # a comment: keeps idle connections open


async def resumed_frames(resumption: Resumption) -> AsyncIterator[str]:
    """A resumed turn as SSE: its events with their first ids, heartbeats while it is quiet,
    and the terminal event (``stream_incomplete`` if none ever comes)."""
    quiet = time.monotonic()
    try:
        async for event in resumption.events():
            if event is not None:
                quiet = time.monotonic()
                yield sse(*event)
            elif time.monotonic() - quiet >= HEARTBEAT_SECONDS:
                quiet = time.monotonic()
                yield ": keep-alive\n\n"
    except ChatSessionsError as error:  # no id: it is not one of the turn's own events
        payload = json.dumps(error_event(error), ensure_ascii=False, separators=(",", ":"))
        yield f"event: error\ndata: {payload}\n\n"


def last_event_id_of(last_event_id: str | None) -> int:
    """The ``Last-Event-ID`` a resume starts after (0: from the start)."""
    if last_event_id is None or last_event_id.strip() == "":
        return 0
    text = last_event_id.strip()
    if not (text.isascii() and text.isdigit()) or len(text) > 9:
        raise InvalidInputError("Last-Event-ID must be an event id this turn sent (an integer)")
    return int(text)


async def replay_frames(result: TurnResult, new_session_id: str | None) -> AsyncIterator[str]:
    """A recorded turn as a short stream in the live format: ``session`` (new sessions), then
    per stored item its ``tool_call``, ``tool_output`` or whole-message ``token``, then ``done``."""
    events: list[tuple[str, dict[str, Any]]] = []
    if new_session_id is not None:
        events.append(("session", {"session_id": new_session_id}))
    for item in result.stored_items[1:]:
        kind = item.get("type", "message")
        if kind == "function_call":
            names = ("name", "call_id", "arguments")
            events.append(("tool_call", {name: item.get(name) for name in names}))
        elif kind == "function_call_output":
            output = item.get("output")
            if not isinstance(output, str):
                output = json.dumps(output, ensure_ascii=False)
            events.append(("tool_output", {"call_id": item.get("call_id"), "output": output}))
        elif kind == "message" and item.get("role") == "assistant" and display_text(item):
            events.append(("token", {"delta": display_text(item)}))
    events.append(("done", done_event(result)))
    for event_id, (name, data) in enumerate(events, start=1):
        yield sse(event_id, name, data)
