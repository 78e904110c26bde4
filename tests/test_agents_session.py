"""DynamoDBSession as the Agents SDK sees it: protocol, limits, cancellation, real agent runs."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Callable
from typing import Any

import pytest
from agents import Agent, Runner, function_tool
from agents.memory import Session, SessionSettings
from agents.testing import ScriptedModel, assistant_message, function_call

from chat_sessions import ChatStore, DynamoDBSession
from chat_sessions.store.client import default_client

USER = "user-a"


def msg(text: str) -> Any:
    return {"role": "user", "content": text}


@pytest.fixture
def open_session(make_store: Callable[..., ChatStore]) -> Callable[..., DynamoDBSession]:
    def make(session_id: str = "conv-1", **options: Any) -> DynamoDBSession:
        return DynamoDBSession(session_id, user_id=USER, store=make_store(), **options)

    return make


def test_satisfies_the_sdk_protocol(open_session: Callable[..., DynamoDBSession]) -> None:
    assert isinstance(open_session(), Session)


def test_opening_makes_no_dynamodb_call(make_store: Callable[..., ChatStore]) -> None:
    store = make_store()
    calls: list[str] = []
    store.client.meta.events.register("before-send.dynamodb", lambda **kw: calls.append("call"))

    DynamoDBSession("conv-1", user_id=USER, store=store)
    default_store_session = DynamoDBSession("conv-2", user_id=USER)

    assert calls == []
    assert default_store_session._store.table._client is None
    assert default_client.cache_info().currsize == 0  # no client was even created


async def test_basic_protocol_and_limits(open_session: Callable[..., DynamoDBSession]) -> None:
    session = open_session()
    assert await session.get_items() == []

    await session.add_items([msg(f"m{i}") for i in range(5)])
    await session.add_items([])

    assert await session.get_items() == [msg(f"m{i}") for i in range(5)]
    assert await session.get_items(limit=2) == [msg("m3"), msg("m4")]
    assert await session.get_items(limit=0) == []
    assert await session.get_items(limit=-1) == [msg(f"m{i}") for i in range(5)]
    assert await session.pop_item() == msg("m4")

    await session.clear_session()
    assert await session.get_items() == []
    assert await session.pop_item() is None


async def test_session_settings_limit(open_session: Callable[..., DynamoDBSession]) -> None:
    session = open_session(session_settings=SessionSettings(limit=3))
    await session.add_items([msg(f"m{i}") for i in range(6)])

    assert await session.get_items() == [msg("m3"), msg("m4"), msg("m5")]
    assert len(await session.get_items(limit=5)) == 5


async def test_fresh_object_sees_earlier_writes(
    open_session: Callable[..., DynamoDBSession],
) -> None:
    await open_session().add_items([msg("from writer 1")])
    await open_session().add_items([msg("from writer 2")])

    assert await open_session().get_items() == [msg("from writer 1"), msg("from writer 2")]
    assert await open_session("conv-other").get_items() == []


async def test_write_completes_when_caller_is_cancelled(
    make_store: Callable[..., ChatStore],
) -> None:
    release = threading.Event()
    started = threading.Event()

    class SlowStore(ChatStore):
        def append_items(self, *args: Any, **kwargs: Any) -> Any:
            started.set()
            release.wait(10)
            return super().append_items(*args, **kwargs)

    slow = make_store()
    slow.__class__ = SlowStore
    session = DynamoDBSession("conv-1", user_id=USER, store=slow)

    task = asyncio.create_task(session.add_items([msg("must not be lost")]))
    await asyncio.to_thread(started.wait, 10)
    task.cancel()
    await asyncio.sleep(0.05)
    assert not task.done()  # still waiting for the write, despite the cancellation
    release.set()

    with pytest.raises(asyncio.CancelledError):
        await task
    reader = DynamoDBSession("conv-1", user_id=USER, store=make_store())
    assert await reader.get_items() == [msg("must not be lost")]


# ------------------------------------------------------------------------------ agent runs


@function_tool
def get_weather(city: str) -> str:
    """Weather for a city."""
    return f"Sunny in {city}"


def tool_then_answer() -> list[Any]:
    return [
        [function_call("get_weather", {"city": "Paris"}, call_id="call_1")],
        [assistant_message("It is sunny in Paris.")],
    ]


def assert_turn_with_tool(items: list[Any], question: str) -> None:
    assert [i.get("type", "message") for i in items] == [
        "message",
        "function_call",
        "function_call_output",
        "message",
    ]
    assert items[0] == {"role": "user", "content": question}
    assert (items[1]["name"], json.loads(items[1]["arguments"])) == (
        "get_weather",
        {"city": "Paris"},
    )
    assert items[2] == {
        "type": "function_call_output",
        "call_id": "call_1",
        "output": "Sunny in Paris",
    }
    assert items[3]["role"] == "assistant"
    assert items[3]["content"][0]["text"] == "It is sunny in Paris."


async def test_runner_run_with_tool_and_follow_up(
    open_session: Callable[..., DynamoDBSession],
) -> None:
    model = ScriptedModel([*tool_then_answer(), [assistant_message("Yes, all day.")]])
    agent = Agent(name="assistant", model=model, tools=[get_weather])

    first = await Runner.run(agent, "Weather in Paris?", session=open_session())
    second = await Runner.run(agent, "All day?", session=open_session())

    assert first.final_output == "It is sunny in Paris."
    assert second.final_output == "Yes, all day."
    stored = await open_session().get_items()
    assert_turn_with_tool(stored[:4], "Weather in Paris?")
    assert stored[4] == {"role": "user", "content": "All day?"}
    assert len(stored) == 6
    follow_up_input = model.last_call.input if model.last_call else None
    assert follow_up_input == stored[:5]  # the model saw the whole first turn in context
    model.assert_complete()


def test_runner_run_sync(open_session: Callable[..., DynamoDBSession]) -> None:
    agent = Agent(name="assistant", model=ScriptedModel(tool_then_answer()), tools=[get_weather])

    result = Runner.run_sync(agent, "Weather in Paris?", session=open_session())

    assert result.final_output == "It is sunny in Paris."
    assert_turn_with_tool(asyncio.run(open_session().get_items()), "Weather in Paris?")


async def test_runner_run_streamed(open_session: Callable[..., DynamoDBSession]) -> None:
    agent = Agent(name="assistant", model=ScriptedModel(tool_then_answer()), tools=[get_weather])

    result = Runner.run_streamed(agent, "Weather in Paris?", session=open_session())
    kinds = [event.type async for event in result.stream_events()]

    assert "raw_response_event" in kinds
    assert result.final_output == "It is sunny in Paris."
    assert_turn_with_tool(await open_session().get_items(), "Weather in Paris?")


# ------------------------------------------------------------------------------ context window


def fill_turns(store: ChatStore, session_id: str, turns: int) -> None:
    for start in range(0, turns, 20):
        batch: list[Any] = []
        for number in range(start, min(start + 20, turns)):
            batch += [
                msg(f"q{number}"),
                {"type": "function_call", "call_id": f"c{number}", "name": "f", "arguments": "{}"},
                {"type": "function_call_output", "call_id": f"c{number}", "output": "x"},
                {"role": "assistant", "content": f"a{number}"},
            ]
        store.append_items(USER, session_id, batch, create_missing=True)


def rows_read(store: ChatStore) -> list[int]:
    counts: list[int] = []
    store.client.meta.events.register(
        "after-call.dynamodb.Query",
        lambda parsed, **_: counts.append(int(parsed.get("ScannedCount", 0))),
    )
    return counts


async def test_a_context_window_sees_whole_recent_turns_at_a_flat_cost(
    make_store: Callable[..., ChatStore],
) -> None:
    costs = []
    for history in (10, 100):
        store = make_store()
        fill_turns(store, f"h{history}", history)
        read = rows_read(store)
        model = ScriptedModel([[assistant_message("ok")]])
        session = DynamoDBSession(f"h{history}", user_id=USER, store=store, context_turns=3)

        await Runner.run(Agent(name="a", model=model), "next?", session=session)

        seen = model.last_call.input if model.last_call else []
        assert [i.get("content") for i in seen if i.get("role") == "user"] == [
            f"q{history - 3}",
            f"q{history - 2}",
            f"q{history - 1}",
            "next?",
        ]
        assert seen[1]["type"] == "function_call" and seen[2]["type"] == "function_call_output"
        costs.append(sum(read))
    assert costs[0] == costs[1]  # rows read follow the window, not the history
    assert costs[0] <= 4 * 3 + 2  # one read sized to the window: its rows, one more, the header


async def test_a_context_window_respects_a_token_budget(
    make_store: Callable[..., ChatStore],
) -> None:
    store = make_store()
    fill_turns(store, "s", 10)
    session = DynamoDBSession(
        "s", user_id=USER, store=store, context_turns=5, context_token_budget=1
    )

    items = await session.get_items()

    assert [i.get("content") for i in items if i.get("role") == "user"] == ["q9"]  # newest stays
    assert len(await session.get_items(limit=100)) == 40  # an explicit limit is not a window


async def test_a_turn_with_fifty_parallel_tool_calls_is_stored_whole(
    open_session: Callable[..., DynamoDBSession],
) -> None:
    calls = [
        function_call("get_weather", {"city": f"c{i}"}, call_id=f"call_{i}") for i in range(50)
    ]
    model = ScriptedModel([calls, [assistant_message("All sunny.")]])
    agent = Agent(name="assistant", model=model, tools=[get_weather])

    result = await Runner.run(agent, "Weather in 50 cities?", session=open_session())

    stored: list[Any] = await open_session().get_items()
    assert result.final_output == "All sunny."
    kinds = [i.get("type", "message") for i in stored]
    assert kinds == ["message", *["function_call"] * 50, *["function_call_output"] * 50, "message"]
    assert {i["output"] for i in stored if i.get("type") == "function_call_output"} == {
        f"Sunny in c{i}" for i in range(50)
    }
