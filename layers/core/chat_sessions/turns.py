"""A chat turn (docs/chat.md): lease, context window, streamed agent run, one atomic write.

History is managed here, not by the SDK's ``session=``: the user message and the run's new items
are stored together when the run completes, or not at all.
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, replace
from functools import partial
from typing import TYPE_CHECKING, Any

from .aio import complete_despite_cancellation
from .codec import response_fits
from .compaction import Summarise, compact
from .errors import BranchNotFoundError, ChatSessionsError, TurnFailedError, TurnLostError
from .idempotency import IdempotencyRecord, IdempotentRequest
from .keys import MAIN_BRANCH
from .models import ChatSession, StoredMessage, StoredResponse
from .privilege import for_the_model
from .store import ChatStore, TurnCommit
from .store.edits import Edit
from .store.window import context_window

if TYPE_CHECKING:
    from agents import Agent, RunResultStreaming

logger = logging.getLogger(__name__)

Emit = Callable[[str, dict[str, Any]], Awaitable[None]]
"""Receives each streamed event: ``(name, data)``, e.g. ``("token", {"delta": "Hi"})``."""


@dataclass(frozen=True)
class TurnSettings:
    context_turns: int = 10
    context_token_budget: int | None = None
    compaction: bool = False
    """Over ``context_token_budget``, summarise the oldest turns instead of leaving them out."""
    drop_compacted: bool = False
    """With ``compaction``, remove the branch's own messages a summary covers (it stays)."""
    timeout_seconds: float = 120.0
    lease_margin_seconds: int = 30

    @property
    def lease_seconds(self) -> int:
        """A turn's lease: its time limit and a margin, so a crashed turn's lapses soon."""
        return int(self.timeout_seconds) + self.lease_margin_seconds

    def compacts(self, summarise: Summarise | None) -> bool:
        return bool(self.compaction and self.context_token_budget and summarise is not None)


@dataclass(frozen=True)
class Rewrite:
    """A turn that replaces a user message and stores its result as a new branch, made active
    (docs/branches.md): the message ``replaces_seq`` (``None``: the branch's last one), with the
    turn's message, or with its own text again (``regenerate``)."""

    replaces_seq: int | None = None
    regenerate: bool = False


@dataclass(frozen=True)
class TurnResult:
    """What the ``done`` event reports, and what was stored."""

    session_id: str
    output: str
    stored_items: list[dict[str, Any]]
    message_count: int
    title: str | None
    input_tokens: int
    output_tokens: int
    replayed: bool = False
    """An earlier call with the same Idempotency-Key and message ran this turn: this call ran no
    model and stored nothing."""
    branch: str = "main"
    """The branch the turn read and stored (the active one when its lease was taken)."""

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens

    def recorded(self) -> str:
        """The turn as its Idempotency-Key's record keeps it: the buffered reply's fields plus
        what ``done`` reports. New items too large for one record are read back from the
        history on replay instead."""
        form: dict[str, Any] = {
            "session_id": self.session_id,
            "output": self.output,
            "new_items": self.stored_items[1:],
            "usage": {
                "input_tokens": self.input_tokens,
                "output_tokens": self.output_tokens,
                "total_tokens": self.total_tokens,
            },
            "message_count": self.message_count,
            "title": self.title,
            "branch": self.branch,
        }
        text = json.dumps(form, ensure_ascii=False, separators=(",", ":"))
        if response_fits(text):
            return text
        form["new_items"] = None
        return json.dumps(form, ensure_ascii=False, separators=(",", ":"))


def read_context(
    store: ChatStore,
    user_id: str,
    session_id: str,
    settings: TurnSettings,
    branch: str | None = None,
) -> list[dict[str, Any]]:
    """The turn's context window from storage (``store.window``: sized to the window), without
    privileged items no trusted writer vouched for (``privilege``)."""
    _, messages = store.read_window(
        user_id,
        session_id,
        turns=settings.context_turns,
        token_budget=settings.context_token_budget,
        branch=branch,
    )
    return [m.item for m in messages if for_the_model(m.item, m.vouched)]


async def run_turn(
    store: ChatStore,
    agent: Agent[Any],
    user_id: str,
    session_id: str,
    message: str,
    emit: Emit,
    settings: TurnSettings | None = None,
    on_started: Callable[[ChatSession], None] | None = None,
    title_for: Callable[[str], Awaitable[str]] | None = None,
    idempotency: IdempotentRequest | None = None,
    rewrite: Rewrite | None = None,
    summarise: Summarise | None = None,
    branch: str | None = None,
    turn_id: str | None = None,
    opened: ChatSession | None = None,
) -> TurnResult:
    """Run one turn, streaming its events to ``emit``; store it when the run completes.

    With ``rewrite``, the turn runs on the history before the message it replaces and is stored
    as a new branch (``store.edits``), in one write with the fork. With ``settings.compaction``
    and a token budget, turns over it are summarised by ``summarise`` (``compaction``).

    Once the lease is held and the context read, ``on_started`` gets the session and the
    first event is ``turn`` ``{turn_id, message, branch}`` (``opened``: a session just made
    with this turn's lease, nothing to take or read). ``title_for`` names an untitled session.
    With ``idempotency`` the commit records the result under the key, and a turn recorded
    under it already is returned (``replayed``) with no model run, before ``on_started``
    (``_Where.earlier``). Store writes complete even if the caller is cancelled.

    Raises:
        SessionNotFoundError, TurnInProgressError, IdempotencyKeyReusedError (before
        ``on_started``, before anything is emitted), TurnFailedError (nothing stored).
    """
    settings = settings or TurnSettings()
    turn_id = turn_id or uuid.uuid4().hex
    plain = branch in (None, MAIN_BRANCH) and not rewrite and not settings.compacts(summarise)
    session, early = (
        (opened, [])
        if opened is not None
        else await _begin(store, user_id, session_id, turn_id, settings, plain)
    )
    # The branch named, or the one active when the lease was taken: a switch meanwhile does not
    # move the turn.
    where = _Where(store, user_id, session_id, branch or session.active_branch, settings)
    stored_it = False
    try:
        if opened is not None and where.branch != MAIN_BRANCH:
            raise BranchNotFoundError("a new session has no branch but main")
        # A session this turn just made holds no record yet.
        earlier = None if opened is not None else await where.earlier(session, idempotency)
        if earlier is not None:  # the lease is released below: this call stores nothing
            return await asyncio.to_thread(_replayed, store, session, user_id, message, earlier)
        window, edit, message = await where.context(message, rewrite, summarise, early)
        if on_started is not None:
            on_started(session)
        stored_on = edit.branch_id if edit is not None else where.branch
        await emit("turn", {"turn_id": turn_id, "message": message, "branch": stored_on})
        user_item = _user_item(message)
        result = await _stream(agent, [*window, user_item], emit, settings.timeout_seconds)
        stored = [user_item, *[_as_dict(item.to_input_item()) for item in result.new_items]]
        title = None
        if session.title is None and title_for is not None:
            title = await title_for(message)
        ran = _Ran(turn_id, result, stored, title, edit)
        try:
            done, stored_it = await where.store_turn(session, ran, idempotency)
        except TurnLostError:
            stored_it = True  # the lease is someone else's now: do not release it
            raise
        if isinstance(done, StoredResponse):  # recorded meanwhile: nothing stored, lease ours
            return await asyncio.to_thread(_replayed, store, session, user_id, message, done)
        return done
    finally:
        if not stored_it:
            await complete_despite_cancellation(
                asyncio.to_thread(store.end_turn, user_id, session_id, turn_id)
            )


async def _begin(
    store: ChatStore,
    user_id: str,
    session_id: str,
    turn_id: str,
    settings: TurnSettings,
    plain: bool,
) -> tuple[ChatSession, list[StoredMessage] | None]:
    """Take the lease; for a ``plain`` turn (the active branch, no edit, no compaction), read
    its window in the same round trip (``store.turn_start``). ``None``: read it after."""
    if not plain:
        begin = partial(store.begin_turn, lease_seconds=settings.lease_seconds)
        return await asyncio.to_thread(begin, user_id, session_id, turn_id), None
    both = partial(
        store.begin_turn_with_window,
        lease_seconds=settings.lease_seconds,
        turns=settings.context_turns,
        token_budget=settings.context_token_budget,
    )
    return await asyncio.to_thread(both, user_id, session_id, turn_id)


async def _stream(agent: Agent[Any], items: list[Any], emit: Emit, timeout: float) -> Any:
    """Run the agent on ``items``, forwarding its events to ``emit``; the streamed result.

    A failure of the run (the model provider, a tool, a guardrail) or the time limit is a
    ``TurnFailedError`` (``chat_sessions.upstream``), logged once. A failure of our own
    forwarding is left as it is: a bug, not the agent's.
    """
    from agents import Runner

    from .upstream import log_failure, turn_timeout

    try:
        async with asyncio.timeout(timeout):
            result = Runner.run_streamed(agent, input=items)
            try:
                async for event in _run_events(result):
                    await _forward(event, emit)
            finally:
                if not result.is_complete:  # we stopped reading: stop the run, tools included
                    result.cancel()
    except TimeoutError as exc:
        failure = turn_timeout(timeout)
        log_failure(logger, "agent run failed", exc, failure)
        raise failure from None
    return result


async def _run_events(result: RunResultStreaming) -> AsyncIterator[Any]:
    """The run's stream events. What the run raises becomes its ``TurnFailedError``; our own
    errors and cancellation (how the time limit arrives) pass as they are."""
    from .upstream import log_failure, run_failure

    try:
        async for event in result.stream_events():
            yield event
    except (asyncio.CancelledError, ChatSessionsError):
        raise
    except Exception as exc:
        failure = run_failure(exc)
        log_failure(logger, "agent run failed", exc, failure)
        raise failure from exc


def _outcome(
    session: ChatSession, result: Any, stored: list[dict[str, Any]], title: str | None
) -> TurnResult:
    """What ``done`` reports, from the header the lease returned: no read after the write. (A
    plain append that raced this turn is not counted; a title the user set meanwhile is kept in
    storage.)"""
    usage = result.context_wrapper.usage
    return TurnResult(
        session_id=session.session_id,
        output=str(result.final_output),
        stored_items=stored,
        message_count=session.message_count + len(stored),
        title=session.title or title,
        input_tokens=usage.input_tokens,
        output_tokens=usage.output_tokens,
        branch=session.active_branch,
    )


def _replayed(
    store: ChatStore, session: ChatSession, user_id: str, message: str, earlier: StoredResponse
) -> TurnResult:
    """The turn an Idempotency-Key's record holds (its user message is this request's: the
    same, as the request hashes matched), with the session's ``message_count`` as it is now
    (as an append's replay reads it back)."""
    session_id = session.session_id
    form = json.loads(earlier.body)
    new_items = form["new_items"]
    if new_items is None:  # too large for the record: the turn's own rows, after the user's
        branch = form.get("branch", "main")
        rows = store.read_batch(
            user_id, session_id, earlier.first_seq + 1, earlier.last_seq, branch=branch
        )
        new_items = [row.item for row in rows]
    return TurnResult(
        session_id=form["session_id"],
        output=form["output"],
        stored_items=[_user_item(message), *new_items],
        message_count=session.message_count,
        title=form["title"],
        input_tokens=form["usage"]["input_tokens"],
        output_tokens=form["usage"]["output_tokens"],
        replayed=True,
        branch=form.get("branch", "main"),
    )


async def _forward(event: Any, emit: Emit) -> None:
    """Map the SDK's stream events to the API's: ``token``, ``tool_call``, ``tool_output``."""
    if event.type == "raw_response_event":
        data = event.data
        if getattr(data, "type", "") == "response.output_text.delta" and data.delta:
            await emit("token", {"delta": data.delta})
    elif event.type == "run_item_stream_event":
        raw = getattr(event.item, "raw_item", None)
        if event.name == "tool_called":
            await emit(
                "tool_call",
                {
                    "name": _field(raw, "name"),
                    "call_id": _field(raw, "call_id"),
                    "arguments": _field(raw, "arguments"),
                },
            )
        elif event.name == "tool_output":
            output = getattr(event.item, "output", None)
            await emit(
                "tool_output",
                {
                    "call_id": _field(raw, "call_id"),
                    "output": output
                    if isinstance(output, str)
                    else json.dumps(output, default=str),
                },
            )


@dataclass(frozen=True)
class _Ran:
    """A run that completed: what the turn stores."""

    turn_id: str
    result: Any
    stored: list[dict[str, Any]]
    title: str | None
    edit: Edit | None


@dataclass(frozen=True)
class _Where:
    """The session and branch a turn reads its context from (and stores into)."""

    store: ChatStore
    user_id: str
    session_id: str
    branch: str
    settings: TurnSettings

    async def earlier(
        self, session: ChatSession, idempotency: IdempotentRequest | None
    ) -> StoredResponse | None:
        """The turn an Idempotency-Key recorded already in this history, if any (read after
        taking the lease, so a retry cannot slip between the first turn's commit and its own
        start: while the first turn runs, the retry meets the lease)."""
        if idempotency is None:
            return None
        find = partial(
            self.store.find_replay,
            self.user_id,
            self.session_id,
            idempotency.key,
            idempotency.request_hash,
            history_start=session.history_start,
        )
        return await asyncio.to_thread(find)

    async def outcome(
        self,
        session: ChatSession,
        result: Any,
        stored: list[dict[str, Any]],
        title: str | None,
        edit: Edit | None,
    ) -> TurnResult:
        """What ``done`` reports: counted on the branch the turn stores into."""
        outcome = replace(_outcome(session, result, stored, title), branch=self.branch)
        if edit is not None:
            count = edit.before.message_count + len(stored)
            return replace(outcome, message_count=count, branch=edit.branch_id)
        if self.branch != session.active_branch:  # the session's count is the active one's
            named = await asyncio.to_thread(
                self.store.get_branch, self.user_id, self.session_id, self.branch
            )
            return replace(outcome, message_count=named.message_count + len(stored))
        return outcome

    async def store_turn(
        self, session: ChatSession, ran: _Ran, idempotency: IdempotentRequest | None
    ) -> tuple[TurnResult | StoredResponse, bool]:
        """The turn's one write (a new branch for an edit), with its usage, its title and its
        Idempotency-Key's record; what it stored, or the earlier response recorded meanwhile
        under the key (nothing stored), and whether it stored."""
        outcome = await self.outcome(session, ran.result, ran.stored, ran.title, ran.edit)
        usage = ran.result.context_wrapper.usage
        commit = TurnCommit(ran.turn_id, usage.input_tokens, usage.output_tokens, ran.title)
        record = idempotency.record(outcome.recorded()) if idempotency is not None else None
        return await self._write(outcome, ran.stored, commit, record, ran.edit)

    async def _write(
        self,
        outcome: TurnResult,
        stored: list[dict[str, Any]],
        commit: TurnCommit,
        record: IdempotencyRecord | None,
        edit: Edit | None,
    ) -> tuple[TurnResult | StoredResponse, bool]:
        if edit is not None:
            made = await complete_despite_cancellation(
                asyncio.to_thread(
                    partial(self.store.commit_edit, self.user_id, self.session_id, edit, stored),
                    turn=commit,
                    idempotency=record,
                )
            )
            return replace(outcome, branch=made.branch_id), True
        appended = await complete_despite_cancellation(
            asyncio.to_thread(
                partial(self.store.append_items, self.user_id, self.session_id, stored),
                turn=commit,
                idempotency=record,
                branch=self.branch,
            )
        )
        if appended.replay is not None:
            return appended.replay, False
        # A retention trim in the same write removed the oldest turns.
        return replace(outcome, message_count=outcome.message_count - appended.removed), True

    async def context(
        self,
        message: str,
        rewrite: Rewrite | None,
        summarise: Summarise | None,
        early: list[StoredMessage] | None = None,
    ) -> tuple[list[dict[str, Any]], Edit | None, str]:
        """The context window (``early``: read with the lease), the edit the turn makes (if
        any), and its message."""
        if early is not None and rewrite is None:
            return [m.item for m in early if for_the_model(m.item, m.vouched)], None, message
        budget = self.settings.context_token_budget
        if rewrite is not None:
            edit = await asyncio.to_thread(
                partial(self.store.plan_edit, self.user_id, self.session_id, branch=self.branch),
                replaces_seq=rewrite.replaces_seq,
            )
            message = _text_of(edit.replaced.item) if rewrite.regenerate else message
            return await asyncio.to_thread(self._before, edit), edit, message
        if self.settings.compaction and budget and summarise is not None:
            return await self._compacted(budget, summarise), None, message
        read = partial(read_context, self.store, self.user_id, self.session_id, self.settings)
        return await asyncio.to_thread(read, self.branch), None, message

    async def _compacted(self, budget: int, summarise: Summarise) -> list[dict[str, Any]]:
        """The window with the branch's summary in place of the turns it covers, and a new
        summary stored when what is left is still over the budget (the lease is held: no turn
        of the session races it)."""
        store, user_id, session_id = self.store, self.user_id, self.session_id
        read_summary = asyncio.to_thread(store.get_summary, user_id, session_id, self.branch)
        read_window = asyncio.to_thread(
            partial(store.read_window, user_id, session_id, branch=self.branch),
            turns=self.settings.context_turns,
        )
        summary, (_, messages) = await asyncio.gather(read_summary, read_window)
        compacted = await compact(messages, summary, token_budget=budget, summarise=summarise)
        if compacted.summary is not None:
            stored = await asyncio.to_thread(
                store.put_summary, user_id, session_id, self.branch, compacted.summary
            )
            if self.settings.drop_compacted and stored == compacted.summary:
                await asyncio.to_thread(
                    store.drop_summarised, user_id, session_id, self.branch, stored.high_seq
                )
        return compacted.items

    def _before(self, edit: Edit) -> list[dict[str, Any]]:
        """An edit's context: the window of the history before the message it replaces."""
        messages = self.store.read_edit_window(
            self.user_id,
            self.session_id,
            edit,
            turns=self.settings.context_turns,
            token_budget=self.settings.context_token_budget,
        )
        return [m.item for m in messages if for_the_model(m.item, m.vouched)]


def _text_of(item: dict[str, Any]) -> str:
    """A user message's text (its parts' text joined, for a message of parts)."""
    content = item.get("content")
    if isinstance(content, str):
        return content
    parts = content if isinstance(content, list) else []
    return "".join(str(part.get("text", "")) for part in parts if isinstance(part, dict))


def _user_item(message: str) -> dict[str, Any]:
    return {"role": "user", "content": message}


def _field(raw: Any, name: str) -> Any:
    return raw.get(name) if isinstance(raw, dict) else getattr(raw, name, None)


def _as_dict(item: Any) -> dict[str, Any]:
    if isinstance(item, dict):
        return item
    dumped: dict[str, Any] = item.model_dump(mode="json", exclude_unset=True)
    return dumped


__all__ = [
    "Rewrite",
    "TurnFailedError",
    "TurnResult",
    "TurnSettings",
    "context_window",
    "read_context",
    "run_turn",
]
