"""A chat turn's first byte (docs/chat.md, "The first byte"): the model starts after one round
trip, the lease and the window read together, and the window is read again when a write landed
between the two, so the lease's guarantee holds."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import Any

import pytest
from agents import Agent
from agents.testing import ScriptedModel, assistant_message

from chat_sessions import ChatStore, service
from chat_sessions.models import ChatSession
from chat_sessions.store import history, lease
from chat_sessions.turns import TurnSettings, run_turn

USER = "iris"


class Calls:
    """Every DynamoDB operation a store sends, in order (its table's one door)."""

    def __init__(self, store: ChatStore) -> None:
        self.names: list[str] = []
        table = store._ctx.table
        sent = table.call

        def call(operation: str, /, **request: Any) -> Any:
            self.names.append(operation)
            return sent(operation, **request)

        table.call = call  # type: ignore[method-assign]


def said(*texts: str) -> Agent[Any]:
    return Agent(name="a", model=ScriptedModel([[assistant_message(t)] for t in texts]))


def user_texts(agent: Agent[Any]) -> list[str]:
    """The user messages the model was given on its last call."""
    model = agent.model
    assert isinstance(model, ScriptedModel)
    assert model.last_call is not None
    items = model.last_call.input
    assert isinstance(items, list)
    return [i["content"] for i in items if isinstance(i, dict) and i.get("role") == "user"]


async def _ignore(name: str, data: dict[str, Any]) -> None:
    return None


def turn(
    store: ChatStore, agent: Agent[Any], message: str, **options: Any
) -> tuple[list[str], Any]:
    """Run a turn; the operations sent before the model started, and the result."""
    calls = Calls(store)
    before: list[str] = []

    def on_started(session: ChatSession) -> None:
        before.extend(calls.names)

    result = asyncio.run(
        run_turn(store, agent, USER, "s", message, _ignore, on_started=on_started, **options)
    )
    return before, result


def test_a_plain_turn_reads_its_window_with_the_lease(make_store: Callable[..., ChatStore]) -> None:
    store = make_store()
    store.create_session(USER, "s")
    asyncio.run(run_turn(store, said("a1"), USER, "s", "q1", _ignore))
    overlapped = store._ctx.table.overlapped
    agent = said("a2")

    before, _ = turn(store, agent, "q2")

    assert sorted(before) == ["query", "update_item"]  # the lease and the window, nothing else
    assert store._ctx.table.overlapped == overlapped + 1  # sent together: one round trip
    assert user_texts(agent) == ["q1", "q2"]


def test_a_write_between_the_read_and_the_lease_is_seen(
    make_store: Callable[..., ChatStore], monkeypatch: pytest.MonkeyPatch
) -> None:
    store = make_store()
    store.create_session(USER, "s")
    asyncio.run(run_turn(store, said("a1"), USER, "s", "q1", _ignore))
    window_read = threading.Event()
    read_rows = history.newest_rows
    take = lease.take
    raced = False

    def read_then_someone_appends(*args: Any, **kwargs: Any) -> Any:
        nonlocal raced
        found = read_rows(*args, **kwargs)
        if not raced:  # a plain append lands after the window is read, before the lease
            raced = True
            store.append_items(USER, "s", [{"role": "user", "content": "raced"}])
        window_read.set()
        return found

    def lease_after_the_read(*args: Any, **kwargs: Any) -> Any:
        window_read.wait(10)
        return take(*args, **kwargs)

    monkeypatch.setattr(history, "newest_rows", read_then_someone_appends)
    monkeypatch.setattr(lease, "take", lease_after_the_read)
    agent = said("a2")

    before, _ = turn(store, agent, "q2")

    assert user_texts(agent) == ["q1", "raced", "q2"]  # the window was read again
    assert before.count("query") == 2


def test_a_turn_on_another_branch_reads_after_the_lease(
    make_store: Callable[..., ChatStore],
) -> None:
    store = make_store()
    store.create_session(USER, "s")
    asyncio.run(run_turn(store, said("a1"), USER, "s", "q1", _ignore))
    fork = store.fork_branch(USER, "s", name="side")
    store.activate_branch(USER, "s", fork.branch_id)
    asyncio.run(run_turn(store, said("side answer"), USER, "s", "side q", _ignore))
    store.activate_branch(USER, "s", "main")
    agent = said("a2")

    _, result = turn(store, agent, "q2", branch=fork.branch_id)

    assert result.branch == fork.branch_id
    assert user_texts(agent) == ["q1", "side q", "q2"]


def test_a_new_chat_starts_its_model_after_one_write(
    make_store: Callable[..., ChatStore], monkeypatch: pytest.MonkeyPatch
) -> None:
    store = make_store()
    monkeypatch.setattr(service, "get_store", lambda: store)
    settings = TurnSettings()
    calls = Calls(store)
    session, made = service.open_chat(USER, None, "e" * 32, lease_seconds=settings.lease_seconds)
    before: list[str] = []

    def on_started(started: ChatSession) -> None:
        before.extend(calls.names)

    agent = said("hello")
    result = asyncio.run(
        run_turn(
            store,
            agent,
            USER,
            session.session_id,
            "hi",
            _ignore,
            settings,
            on_started,
            turn_id="e" * 32,
            opened=session,
        )
    )

    assert made and session.turn_in_progress == "e" * 32
    assert before == ["put_item"]  # the session, with the lease taken
    assert result.message_count == 2
    assert store.get_session(USER, session.session_id).turn_in_progress is None


def test_a_new_chat_cannot_start_while_its_sessions_lease_is_held(
    make_store: Callable[..., ChatStore], monkeypatch: pytest.MonkeyPatch
) -> None:
    store = make_store()
    monkeypatch.setattr(service, "get_store", lambda: store)
    _, made = service.open_chat(USER, "k1", "f" * 32, lease_seconds=60)
    again, made_again = service.open_chat(USER, "k1", "0" * 32, lease_seconds=60)

    assert made and not made_again  # a retry finds the session; its lease is untouched
    assert again.turn_in_progress == "f" * 32
    with pytest.raises(Exception, match="another turn"):
        asyncio.run(run_turn(store, said("x"), USER, "k1", "hi", _ignore, turn_id="0" * 32))
