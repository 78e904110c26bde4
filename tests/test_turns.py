"""Chat turns (docs/chat.md): context window, streamed events, atomic storage, the turn lease."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from typing import Any

import pytest
from agents import Agent, ModelSettings, function_tool
from agents.testing import ModelStep, ScriptedModel, assistant_message, function_call
from agents.usage import Usage
from test_upstream import PROVIDER_FAILURES, RATE_LIMITED, SECRET, Failure

from chat_sessions import ChatStore, SessionNotFoundError
from chat_sessions.errors import (
    TurnFailedError,
    TurnInProgressError,
    TurnLostError,
    TurnTimeoutError,
)
from chat_sessions.http import status_of
from chat_sessions.store import TurnCommit
from chat_sessions.turns import TurnSettings, context_window, run_turn
from support import FakeClock, Records

USER = "erin"


def user(text: str) -> dict[str, Any]:
    return {"role": "user", "content": text}


def call(call_id: str) -> dict[str, Any]:
    return {"type": "function_call", "call_id": call_id, "name": "f", "arguments": "{}"}


def output(call_id: str) -> dict[str, Any]:
    return {"type": "function_call_output", "call_id": call_id, "output": "x"}


def answer(text: str) -> dict[str, Any]:
    return {
        "role": "assistant",
        "type": "message",
        "content": [{"type": "output_text", "text": text}],
    }


# ------------------------------------------------------------------------------ context window


def test_window_keeps_the_last_turns_whole() -> None:
    history = [
        answer("greeting before any user message"),
        user("q1"), call("c1"), output("c1"), answer("a1"),
        user("q2"), answer("a2"),
        user("q3"), call("c3"), output("c3"), answer("a3"),
    ]  # fmt: skip

    assert context_window(history, turns=2) == history[5:]
    assert context_window(history, turns=3) == history[1:]
    assert context_window(history, turns=10) == history[1:]
    assert context_window(history, turns=0) == []
    assert context_window([answer("no user yet")], turns=5) == []


def test_token_budget_drops_whole_old_turns_but_keeps_the_newest() -> None:
    big = "x" * 4000  # ~1000 tokens
    history = [user("q1"), answer(big), user("q2"), call("c2"), output("c2"), answer("a2")]

    assert context_window(history, turns=10, token_budget=100) == history[2:]
    assert context_window(history, turns=10, token_budget=10) == history[2:]  # newest stays
    assert context_window(history, turns=10, token_budget=10_000) == history


# --------------------------------------------------------------------------------- agent turns


@function_tool
def get_reviews(hotel: str) -> str:
    """Review score of a hotel."""
    return f"{hotel}: 4.6"


class Recorder:
    def __init__(self) -> None:
        self.events: list[tuple[str, dict[str, Any]]] = []

    async def __call__(self, name: str, data: dict[str, Any]) -> None:
        self.events.append((name, data))

    def names(self) -> list[str]:
        return [name for name, _ in self.events]

    def text(self) -> str:
        return "".join(data["delta"] for name, data in self.events if name == "token")


def agent_with(steps: list[Any]) -> tuple[Agent[Any], ScriptedModel]:
    model = ScriptedModel(steps)
    agent = Agent(
        name="assistant", model=model, tools=[get_reviews], model_settings=ModelSettings()
    )
    return agent, model


@pytest.fixture
def chat(store: ChatStore) -> ChatStore:
    store.create_session(USER, "c1")
    return store


async def test_a_text_answer_streams_and_is_stored(chat: ChatStore) -> None:
    agent, _ = agent_with(
        [
            ModelStep(
                output=[assistant_message("Hello there, Erin!")],
                usage=Usage(requests=1, input_tokens=12, output_tokens=5, total_tokens=17),
            )
        ]
    )
    events = Recorder()

    result = await run_turn(chat, agent, USER, "c1", "Hi, I'm Erin", events)

    assert events.text() == "Hello there, Erin!"
    assert "token" in events.names()
    session, stored = chat.read_newest(USER, "c1", None)
    assert [m.item for m in stored] == result.stored_items
    assert result.stored_items[0] == user("Hi, I'm Erin")
    assert result.stored_items[1]["content"][0]["text"] == "Hello there, Erin!"
    assert (result.message_count, session.message_count) == (2, 2)
    assert session.usage.model_dump() == {
        "input_tokens": 12,
        "output_tokens": 5,
        "total_tokens": 17,
    }


async def test_a_tool_call_and_its_output_stream_and_are_stored(chat: ChatStore) -> None:
    agent, _ = agent_with([
        [function_call("get_reviews", {"hotel": "Alfama"}, call_id="call_1")],
        [assistant_message("Alfama scores 4.6.")],
    ])  # fmt: skip
    events = Recorder()

    result = await run_turn(chat, agent, USER, "c1", "Reviews for Alfama?", events)

    tool_call = next(data for name, data in events.events if name == "tool_call")
    tool_output = next(data for name, data in events.events if name == "tool_output")
    assert (tool_call["name"], tool_call["call_id"]) == ("get_reviews", "call_1")
    assert tool_output == {"call_id": "call_1", "output": "Alfama: 4.6"}
    assert events.names().index("tool_call") < events.names().index("tool_output")
    assert [i.get("type", "message") for i in result.stored_items] == [
        "message", "function_call", "function_call_output", "message",
    ]  # fmt: skip
    _, stored = chat.read_newest(USER, "c1", None)
    assert [m.item for m in stored] == result.stored_items


async def assert_the_session_is_free(chat: ChatStore, history: list[dict[str, Any]]) -> None:
    """Nothing of the failed turn was stored, and its lease is gone: the next turn runs."""
    _, stored = chat.read_newest(USER, "c1", None)
    assert [m.item for m in stored] == history
    retry, _ = agent_with([[assistant_message("Now it works.")]])
    result = await run_turn(chat, retry, USER, "c1", "Again?", Recorder())
    assert result.message_count == len(history) + 2


@pytest.mark.parametrize("failure", PROVIDER_FAILURES, ids=lambda f: f.name)
async def test_a_provider_failure_is_its_error_stores_nothing_and_frees_the_session(
    chat: ChatStore, failure: Failure
) -> None:
    chat.append_items(USER, "c1", [user("earlier"), answer("before")])
    agent, _ = agent_with([
        [function_call("get_reviews", {"hotel": "Alfama"}, call_id="call_1")],
        ModelStep.raise_error(failure.make()),
    ])  # fmt: skip

    with pytest.raises(TurnFailedError) as failed:
        await run_turn(chat, agent, USER, "c1", "Reviews?", Recorder())

    assert (status_of(failed.value), failed.value.code) == (failure.status, failure.code)
    assert failed.value.retryable is failure.retryable
    assert failed.value.retry_after_seconds == failure.retry_after
    await assert_the_session_is_free(chat, [user("earlier"), answer("before")])


@function_tool(failure_error_function=None)  # the SDK raises instead of telling the model
def broken_lookup(hotel: str) -> str:
    """Review score of a hotel."""
    raise ValueError(f"lookup failed for {hotel}")


async def test_a_tool_that_raises_fails_the_turn_as_the_agents_failure(chat: ChatStore) -> None:
    model = ScriptedModel([
        [function_call("broken_lookup", {"hotel": "Alfama"}, call_id="call_1")],
        [assistant_message("never reached")],
    ])  # fmt: skip
    agent = Agent(name="assistant", model=model, tools=[broken_lookup])

    with pytest.raises(TurnFailedError) as failed:
        await run_turn(chat, agent, USER, "c1", "Reviews?", Recorder())

    assert (type(failed.value), status_of(failed.value)) == (TurnFailedError, 502)
    assert (failed.value.code, failed.value.retryable) == ("agent_failed", False)
    await assert_the_session_is_free(chat, [])


async def test_a_store_bug_is_not_dressed_as_the_agents_failure(
    chat: ChatStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken_append(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("a bug in our code")

    monkeypatch.setattr(chat, "append_items", broken_append)
    agent, _ = agent_with([[assistant_message("Hello")]])

    with pytest.raises(RuntimeError, match="a bug in our code"):
        await run_turn(chat, agent, USER, "c1", "Hi", Recorder())

    monkeypatch.undo()
    await assert_the_session_is_free(chat, [])


async def test_a_forwarding_bug_is_not_dressed_as_the_agents_failure(chat: ChatStore) -> None:
    async def broken_emit(name: str, data: dict[str, Any]) -> None:
        raise KeyError("a bug in our code")

    agent, _ = agent_with([[assistant_message("Hello")]])

    with pytest.raises(KeyError):
        await run_turn(chat, agent, USER, "c1", "Hi", broken_emit)

    await assert_the_session_is_free(chat, [])


@pytest.fixture
def turn_logs() -> Iterator[Records]:
    logger = logging.getLogger("chat_sessions.turns")
    handler = Records()
    logger.addHandler(handler)
    yield handler
    logger.removeHandler(handler)


async def test_a_failed_run_is_logged_once_by_cause_and_code_without_content(
    chat: ChatStore, turn_logs: Records, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "chat-sessions-ChatFunction-X1")
    agent, _ = agent_with([ModelStep.raise_error(RATE_LIMITED.make())])

    with pytest.raises(TurnFailedError):
        await run_turn(chat, agent, USER, "c1", f"private question: {SECRET}", Recorder())

    (record,) = turn_logs.records
    assert record.getMessage() == (
        "agent run failed in chat-sessions-ChatFunction-X1: "
        "openai.RateLimitError (model_rate_limited, 503)"
    )
    assert SECRET not in str(vars(record))


async def test_the_second_turn_sees_the_first(chat: ChatStore) -> None:
    agent, model = agent_with([
        [function_call("get_reviews", {"hotel": "Alfama"}, call_id="call_1")],
        [assistant_message("Alfama scores 4.6.")],
        [assistant_message("Alfama is the better rated one.")],
    ])  # fmt: skip

    first = await run_turn(chat, agent, USER, "c1", "Reviews for Alfama?", Recorder())
    await run_turn(chat, agent, USER, "c1", "Which of these has better reviews?", Recorder())

    assert model.last_call is not None
    assert model.last_call.input == [
        *first.stored_items,
        user("Which of these has better reviews?"),
    ]
    model.assert_complete()


async def test_a_second_turn_is_refused_while_one_runs(chat: ChatStore, clock: FakeClock) -> None:
    chat.begin_turn(USER, "c1", "someone-else", lease_seconds=150)
    agent, model = agent_with([[assistant_message("never runs")]])

    with pytest.raises(TurnInProgressError):
        await run_turn(chat, agent, USER, "c1", "hello?", Recorder())
    assert model.calls == ()

    clock.advance(151)  # the other turn's lease lapsed (its function crashed)
    result = await run_turn(chat, agent, USER, "c1", "hello?", Recorder())
    assert result.message_count == 2


async def test_turns_need_a_live_session(chat: ChatStore) -> None:
    agent, _ = agent_with([[assistant_message("x")]])
    with pytest.raises(SessionNotFoundError):
        await run_turn(chat, agent, "mallory", "c1", "hi", Recorder())


def test_a_lapsed_lease_cannot_commit(chat: ChatStore, clock: FakeClock) -> None:
    chat.begin_turn(USER, "c1", "slow-turn", lease_seconds=60)
    clock.advance(61)
    chat.begin_turn(USER, "c1", "new-turn", lease_seconds=60)

    with pytest.raises(TurnLostError):
        chat.append_items(USER, "c1", [user("late")], turn=TurnCommit("slow-turn"))
    chat.append_items(USER, "c1", [user("on time")], turn=TurnCommit("new-turn", 3, 4))

    session, stored = chat.read_newest(USER, "c1", None)
    assert [m.item for m in stored] == [user("on time")]
    assert session.usage.total_tokens == 7
    chat.begin_turn(USER, "c1", "next", lease_seconds=60)  # the commit released the lease


async def test_a_run_over_the_time_limit_stores_nothing(
    chat: ChatStore, turn_logs: Records
) -> None:
    async def slow(call: Any) -> Any:
        await asyncio.sleep(5)
        return [assistant_message("too late")]

    agent, _ = agent_with([ModelStep.respond(slow)])
    settings = TurnSettings(timeout_seconds=0.2)

    with pytest.raises(TurnTimeoutError) as failed:
        await run_turn(chat, agent, USER, "c1", "hi", Recorder(), settings)

    assert (status_of(failed.value), failed.value.code) == (504, "turn_timeout")
    assert (failed.value.retryable, failed.value.retry_after_seconds) == (True, None)
    assert [r.__dict__["cause"] for r in turn_logs.records] == ["TimeoutError"]
    assert chat.read_newest(USER, "c1", None)[1] == []
    chat.begin_turn(USER, "c1", "next", lease_seconds=60)  # the lease was released
