"""The chat app over real HTTP (uvicorn on 127.0.0.1, httpx streaming): SSE, buffering,
disconnects, concurrency, errors."""

from __future__ import annotations

import asyncio
import json
import re
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from agents import Agent, function_tool
from agents.testing import ModelStep, ScriptedModel, assistant_message, function_call
from test_upstream import PROVIDER_FAILURES, RATE_LIMITED, SECRET, Failure

from chat_sessions import ChatStore, service
from chat_sessions.agent_config import OfflineModel, offline_reply
from chat_sessions.chat_app import create_chat_app
from chat_sessions.titles import generate_title, heuristic_title
from chat_sessions.turns import TurnSettings
from chat_sessions_local.issuer import DevIssuer
from chat_sessions_local.serving import serve

USER = "frank"


class Gate:
    """Holds the offline model before each token until the test lets one through."""

    def __init__(self) -> None:
        self.held = False
        self._tokens = threading.Semaphore(0)

    async def pause(self) -> None:
        if self.held:
            await asyncio.to_thread(self._tokens.acquire)

    def let_through(self, count: int = 1) -> None:
        for _ in range(count):
            self._tokens.release()

    def open(self) -> None:
        self.held = False
        self.let_through(1000)


@dataclass
class ChatServer:
    url: str
    store: ChatStore
    issuer: DevIssuer
    gate: Gate
    agent: list[Agent[Any]] = field(default_factory=list)

    def headers(self, user: str = USER, stream: bool = True) -> dict[str, str]:
        headers = {"Authorization": f"Bearer {self.issuer.mint(user)}"}
        if stream:
            headers["Accept"] = "text/event-stream"
        return headers


@pytest.fixture
def chat_server(
    make_store: Callable[..., ChatStore], dev_issuer: DevIssuer, monkeypatch: pytest.MonkeyPatch
) -> Iterator[ChatServer]:
    store = make_store(clock=time.time)
    monkeypatch.setattr(service, "get_store", lambda: store)
    gate = Gate()
    server_state = ChatServer("", store, dev_issuer, gate)
    server_state.agent.append(Agent(name="assistant", model=OfflineModel(pause=gate.pause)))
    app = create_chat_app(agent=lambda: server_state.agent[0], verifier=dev_issuer.verifier)
    with serve(app) as url:
        server_state.url = url
        store.create_session(USER, "c1")
        yield server_state
        gate.open()


def parse_sse(lines: Iterator[str]) -> Iterator[dict[str, Any]]:
    """SSE frames as {"id", "event", "data"}; comments (heartbeats) are skipped."""
    frame: dict[str, Any] = {}
    for line in lines:
        if line == "":
            if frame:
                yield frame
            frame = {}
        elif line.startswith(":"):
            continue
        else:
            key, _, value = line.partition(": ")
            frame[key] = json.loads(value) if key == "data" else value


def chat_once(server: ChatServer, message: str) -> list[dict[str, Any]]:
    with httpx.stream(
        "POST",
        f"{server.url}/v1/sessions/c1/chat",
        json={"message": message},
        headers=server.headers(),
    ) as response:
        return list(parse_sse(response.iter_lines()))


def stored_items(server: ChatServer, session_id: str = "c1") -> list[dict[str, Any]]:
    return [m.item for m in server.store.read_newest(USER, session_id, None)[1]]


def test_a_turn_streams_tokens_then_done_and_is_stored(chat_server: ChatServer) -> None:
    with httpx.stream(
        "POST",
        f"{chat_server.url}/v1/sessions/c1/chat",
        json={"message": "Hello there"},
        headers=chat_server.headers(),
    ) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        events = list(parse_sse(response.iter_lines()))

    names = [e["event"] for e in events]
    assert names[0] == "turn" and names[-1] == "done" and set(names[1:-1]) == {"token"}
    turn = events[0]["data"]
    assert turn == {"turn_id": turn["turn_id"], "message": "Hello there", "branch": "main"}
    assert re.fullmatch(r"[0-9a-f]{32}", turn["turn_id"])
    assert [int(e["id"]) for e in events] == list(range(1, len(events) + 1))
    text = "".join(e["data"]["delta"] for e in events if e["event"] == "token")
    assert text == offline_reply("Hello there")
    assert len(names) > 10  # word by word, not one chunk
    assert events[-1]["data"]["message_count"] == 2
    stored = stored_items(chat_server)
    assert stored[0] == {"role": "user", "content": "Hello there"}
    assert stored[1]["content"][0]["text"] == text


def test_tokens_arrive_before_the_run_finishes(chat_server: ChatServer) -> None:
    chat_server.gate.held = True
    with httpx.stream(
        "POST",
        f"{chat_server.url}/v1/sessions/c1/chat",
        json={"message": "one two three"},
        headers=chat_server.headers(),
        timeout=10,
    ) as response:
        events = parse_sse(response.iter_lines())
        chat_server.gate.let_through(1)
        assert next(events)["event"] == "turn"  # before the model's first word
        first = next(events)
        # The model is held before its second word: the run is not finished, nothing is stored.
        assert first["event"] == "token"
        assert stored_items(chat_server) == []
        chat_server.gate.open()
        rest = list(events)
    assert rest[-1]["event"] == "done"
    assert len(stored_items(chat_server)) == 2


def test_a_disconnected_client_still_gets_its_turn_stored(chat_server: ChatServer) -> None:
    chat_server.gate.held = True
    with httpx.stream(
        "POST",
        f"{chat_server.url}/v1/sessions/c1/chat",
        json={"message": "are you still there"},
        headers=chat_server.headers(),
        timeout=10,
    ) as response:
        chat_server.gate.let_through(2)
        events = parse_sse(response.iter_lines())
        assert next(events)["event"] == "turn"
        assert next(events)["event"] == "token"
    # The client hung up mid-answer; the model goes on.
    chat_server.gate.open()
    deadline = time.monotonic() + 10
    while len(stored_items(chat_server)) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    stored = stored_items(chat_server)
    assert stored[0] == {"role": "user", "content": "are you still there"}
    assert stored[1]["content"][0]["text"] == offline_reply("are you still there")


def test_a_second_concurrent_turn_is_refused(chat_server: ChatServer) -> None:
    chat_server.gate.held = True
    with httpx.stream(
        "POST",
        f"{chat_server.url}/v1/sessions/c1/chat",
        json={"message": "first"},
        headers=chat_server.headers(),
        timeout=10,
    ) as first:
        chat_server.gate.let_through(1)
        first_events = parse_sse(first.iter_lines())
        assert next(first_events)["event"] == "turn"
        assert next(first_events)["event"] == "token"

        second = httpx.post(
            f"{chat_server.url}/v1/sessions/c1/chat",
            json={"message": "second"},
            headers=chat_server.headers(),
        )
        assert second.status_code == 409
        assert second.json()["error"]["code"] == "turn_in_progress"
        chat_server.gate.open()
        assert list(first_events)[-1]["event"] == "done"
    stored = stored_items(chat_server)
    assert (len(stored), stored[0]["content"]) == (2, "first")  # never interleaved


def test_the_buffered_form_returns_the_whole_turn_as_json(chat_server: ChatServer) -> None:
    response = httpx.post(
        f"{chat_server.url}/v1/sessions/c1/chat",
        json={"message": "no streaming please"},
        headers=chat_server.headers(stream=False),
    )

    body = response.json()
    assert response.status_code == 200
    assert (body["session_id"], body["output"]) == ("c1", offline_reply("no streaming please"))
    assert body["new_items"] == stored_items(chat_server)[1:]
    assert set(body["usage"]) == {"input_tokens", "output_tokens", "total_tokens"}


def test_chat_without_a_session_creates_one_and_announces_it(chat_server: ChatServer) -> None:
    with httpx.stream(
        "POST", f"{chat_server.url}/v1/chat", json={"message": "hi"}, headers=chat_server.headers()
    ) as response:
        events = list(parse_sse(response.iter_lines()))

    assert events[0]["event"] == "session"
    session_id = events[0]["data"]["session_id"]
    assert events[-1]["event"] == "done"
    assert len(stored_items(chat_server, session_id)) == 2


@function_tool
def get_reviews(hotel: str) -> str:
    """Review score of a hotel."""
    return f"{hotel}: 4.6"


def test_tool_calls_and_outputs_are_streamed_in_order(chat_server: ChatServer) -> None:
    model = ScriptedModel([
        [function_call("get_reviews", {"hotel": "Alfama"}, call_id="call_9")],
        [assistant_message("Alfama scores 4.6.")],
    ])  # fmt: skip
    chat_server.agent[0] = Agent(name="assistant", model=model, tools=[get_reviews])

    events = chat_once(chat_server, "Reviews?")

    names = [e["event"] for e in events]
    assert names.index("tool_call") < names.index("tool_output") < names.index("done")
    assert next(e for e in events if e["event"] == "tool_output")["data"] == {
        "call_id": "call_9",
        "output": "Alfama: 4.6",
    }
    assert [i.get("type", "message") for i in stored_items(chat_server)] == [
        "message", "function_call", "function_call_output", "message",
    ]  # fmt: skip


# ------------------------------------------------------------------------------ failed turns


def failing_agent(error: Exception) -> Agent[Any]:
    return Agent(name="assistant", model=ScriptedModel([ModelStep.raise_error(error)]))


def chat_buffered(server: ChatServer, message: str) -> httpx.Response:
    return httpx.post(
        f"{server.url}/v1/sessions/c1/chat",
        json={"message": message},
        headers=server.headers(stream=False),
        timeout=10,
    )


def assert_nothing_stored_and_the_session_free(server: ChatServer) -> None:
    assert stored_items(server) == []
    server.agent[0] = Agent(name="assistant", model=OfflineModel())
    assert chat_once(server, "again")[-1]["event"] == "done"  # the lease was released


@pytest.mark.parametrize("failure", PROVIDER_FAILURES, ids=lambda f: f.name)
def test_a_provider_failure_is_the_same_error_buffered_and_streamed(
    chat_server: ChatServer, failure: Failure
) -> None:
    chat_server.agent[0] = failing_agent(failure.make())
    buffered = chat_buffered(chat_server, "hello?")
    chat_server.agent[0] = failing_agent(failure.make())
    events = chat_once(chat_server, "hello?")

    body = buffered.json()["error"]
    assert (buffered.status_code, body["code"]) == (failure.status, failure.code)
    retry_after = None if failure.retry_after is None else str(failure.retry_after)
    assert buffered.headers.get("retry-after") == retry_after
    expected = {"code": failure.code, "message": body["message"], "retryable": failure.retryable}
    if failure.retry_after is not None:
        expected["retry_after"] = failure.retry_after
    assert [e["event"] for e in events] == ["turn", "error"]
    assert events[-1]["data"] == expected
    assert SECRET not in buffered.text + json.dumps(events)
    assert_nothing_stored_and_the_session_free(chat_server)


@function_tool(failure_error_function=None)  # the SDK raises instead of telling the model
def broken_lookup(hotel: str) -> str:
    """Review score of a hotel."""
    raise ValueError(f"lookup failed for {hotel}")


def test_a_tool_that_raises_is_a_502_agent_failed(chat_server: ChatServer) -> None:
    def agent() -> Agent[Any]:
        steps = [[function_call("broken_lookup", {"hotel": "Alfama"}, call_id="call_9")]]
        return Agent(name="assistant", model=ScriptedModel(steps), tools=[broken_lookup])

    chat_server.agent[0] = agent()
    buffered = chat_buffered(chat_server, "Reviews?")
    chat_server.agent[0] = agent()
    events = chat_once(chat_server, "Reviews?")

    assert (buffered.status_code, buffered.json()["error"]["code"]) == (502, "agent_failed")
    assert "retry-after" not in buffered.headers
    assert [e["event"] for e in events] == ["turn", "tool_call", "error"]
    assert events[-1]["data"] == {
        "code": "agent_failed",
        "message": "the agent run failed",
        "retryable": False,
    }
    assert_nothing_stored_and_the_session_free(chat_server)


def test_a_turn_over_its_time_limit_is_a_504(
    make_store: Callable[..., ChatStore], dev_issuer: DevIssuer, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = make_store(clock=time.time)
    monkeypatch.setattr(service, "get_store", lambda: store)
    store.create_session(USER, "c1")

    async def slow(call: Any) -> Any:
        await asyncio.sleep(5)
        return [assistant_message("too late")]

    app = create_chat_app(
        agent=lambda: Agent(name="assistant", model=ScriptedModel([ModelStep.respond(slow)])),
        verifier=dev_issuer.verifier,
        settings=TurnSettings(timeout_seconds=0.2),
    )
    with serve(app) as url:
        server = ChatServer(url, store, dev_issuer, Gate())
        buffered = chat_buffered(server, "hi")
        events = chat_once(server, "hi")

    assert (buffered.status_code, buffered.json()["error"]["code"]) == (504, "turn_timeout")
    assert events[-1]["data"] == {
        "code": "turn_timeout",
        "message": "the agent run took longer than 0.2 seconds",
        "retryable": True,
    }
    assert stored_items(server) == []


JSON = {"headers": {"Content-Type": "application/json"}}


def test_our_own_bug_is_a_500_internal_error(chat_server: ChatServer) -> None:
    def broken_append(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError(f"a bug in our code {SECRET}")

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(chat_server.store, "append_items", broken_append)
        buffered = chat_buffered(chat_server, "hello?")
        events = chat_once(chat_server, "hello?")

    assert buffered.status_code == 500
    assert buffered.json() == {"error": {"code": "internal_error", "message": "internal error"}}
    assert SECRET not in buffered.text
    assert events[-1]["event"] == "error"
    assert events[-1]["data"] == {
        "code": "internal_error",
        "message": "internal error",
        "retryable": False,
    }
    assert_nothing_stored_and_the_session_free(chat_server)


@pytest.mark.parametrize(
    ("path", "options", "status", "code"),
    [
        ("/v1/sessions/c1/chat", {"json": {"message": ""}}, 422, "validation_failed"),
        ("/v1/sessions/c1/chat", {"json": {"message": "x" * 32_001}}, 422, "validation_failed"),
        (
            "/v1/sessions/c1/chat",
            {"json": {"message": "hi", "model": "x"}},
            422,
            "validation_failed",
        ),
        ("/v1/sessions/c1/chat", {"content": b"{not json", **JSON}, 400, "malformed_json"),
        ("/v1/sessions/c1/chat", {"content": b"{}"}, 415, "unsupported_media_type"),
        ("/v1/sessions/bad%0Aid/chat", {"json": {"message": "hi"}}, 422, "validation_failed"),
        ("/v1/sessions/missing/chat", {"json": {"message": "hi"}}, 404, "session_not_found"),
    ],
)
def test_bad_requests_get_the_api_error_before_any_stream(
    chat_server: ChatServer, path: str, options: dict[str, Any], status: int, code: str
) -> None:
    options = dict(options)  # the parameters are shared by both backends' runs
    headers = {**chat_server.headers(), **options.pop("headers", {})}
    response = httpx.post(f"{chat_server.url}{path}", headers=headers, **options)

    assert response.status_code == status
    assert response.headers["content-type"] == "application/json"
    assert response.json()["error"]["code"] == code
    assert stored_items(chat_server) == []


def test_no_token_no_turn(chat_server: ChatServer) -> None:
    response = httpx.post(f"{chat_server.url}/v1/sessions/c1/chat", json={"message": "hi"})
    other_user = httpx.post(
        f"{chat_server.url}/v1/sessions/c1/chat",
        json={"message": "hi"},
        headers=chat_server.headers(user="mallory"),
    )

    assert (response.status_code, response.json()["error"]["code"]) == (401, "unauthorized")
    assert (other_user.status_code, other_user.json()["error"]["code"]) == (
        404,
        "session_not_found",
    )
    assert stored_items(chat_server) == []


# ---------------------------------------------------------------------------------------- titles


def test_the_first_turn_names_an_untitled_session(chat_server: ChatServer) -> None:
    first = chat_once(
        chat_server, "Plan   a long weekend in Lisbon with my two kids in May, please, near the sea"
    )
    second = chat_once(chat_server, "And in June?")

    expected = heuristic_title(
        "Plan a long weekend in Lisbon with my two kids in May, please, near the sea"
    )
    assert first[-1]["data"]["title"] == expected
    assert expected.endswith("…") and len(expected) <= 60
    assert second[-1]["data"]["title"] == expected  # named once, not renamed per turn
    assert chat_server.store.get_session(USER, "c1").title == expected


def test_a_title_the_user_set_is_never_replaced(chat_server: ChatServer) -> None:
    chat_server.store.update_session(USER, "c1", title="My trip")

    done = chat_once(chat_server, "hello")[-1]
    regenerate = httpx.post(
        f"{chat_server.url}/v1/sessions/c1/title", headers=chat_server.headers(stream=False)
    )

    assert done["data"]["title"] == "My trip"
    assert (regenerate.status_code, regenerate.json()["error"]["code"]) == (
        409,
        "title_set_by_user",
    )
    assert chat_server.store.get_session(USER, "c1").title == "My trip"


def test_a_title_can_be_regenerated(chat_server: ChatServer) -> None:
    url = f"{chat_server.url}/v1/sessions/c1/title"
    empty = httpx.post(url, headers=chat_server.headers(stream=False))
    chat_server.store.append_items(USER, "c1", [{"role": "user", "content": "Hotels in Porto"}])
    chat_server.store.set_generated_title(USER, "c1", "Old generated title")

    titled = httpx.post(url, headers=chat_server.headers(stream=False))

    assert (empty.status_code, empty.json()["error"]["code"]) == (404, "message_not_found")
    assert (titled.status_code, titled.json()["title"]) == (200, "Hotels in Porto")


async def test_a_configured_model_writes_the_title_and_failures_fall_back() -> None:
    writer = ScriptedModel([[assistant_message('"Lisbon Family Weekend"')]])
    broken = ScriptedModel([ModelStep.raise_error(RuntimeError("down"))])

    assert await generate_title("Plan a weekend in Lisbon", writer) == "Lisbon Family Weekend"
    assert await generate_title("Plan a weekend in Lisbon", broken) == "Plan a weekend in Lisbon"
    assert await generate_title("x", OfflineModel()) == "x"


async def test_a_slow_or_limited_title_model_never_holds_or_fails_the_turn() -> None:
    async def slow(call: Any) -> Any:
        await asyncio.sleep(5)
        return [assistant_message("Too late")]

    limited = ScriptedModel([ModelStep.raise_error(RATE_LIMITED.make())])
    started = time.monotonic()

    slow_title = await generate_title(
        "Plan a weekend in Lisbon", ScriptedModel([ModelStep.respond(slow)]), timeout_seconds=0.1
    )

    assert slow_title == "Plan a weekend in Lisbon"
    assert time.monotonic() - started < 2
    assert await generate_title("Plan a weekend in Lisbon", limited) == "Plan a weekend in Lisbon"


def test_idle_streams_get_heartbeats(
    chat_server: ChatServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    import chat_sessions.event_stream

    monkeypatch.setattr(chat_sessions.event_stream, "HEARTBEAT_SECONDS", 0.05)
    chat_server.gate.held = True
    with httpx.stream(
        "POST",
        f"{chat_server.url}/v1/sessions/c1/chat",
        json={"message": "take your time"},
        headers=chat_server.headers(),
        timeout=10,
    ) as response:
        lines = response.iter_lines()
        heartbeats = 0
        for line in lines:  # the model is held: only heartbeats can arrive
            if line == ": keep-alive":
                heartbeats += 1
                if heartbeats == 3:
                    break
        chat_server.gate.open()
        rest = list(parse_sse(lines))

    assert heartbeats == 3
    assert rest[-1]["event"] == "done"


# ------------------------------------------------------------------------------- idempotency


def keyed_chat(
    server: ChatServer, message: str, key: str, path: str = "/v1/sessions/c1/chat"
) -> tuple[httpx.Response, list[dict[str, Any]]]:
    headers = {**server.headers(), "Idempotency-Key": key}
    with httpx.stream(
        "POST", f"{server.url}{path}", json={"message": message}, headers=headers, timeout=10
    ) as response:
        return response, list(parse_sse(response.iter_lines()))


def test_a_retried_turn_replays_as_a_short_stream_without_the_model(
    chat_server: ChatServer,
) -> None:
    model = ScriptedModel([
        [function_call("get_reviews", {"hotel": "Alfama"}, call_id="call_9")],
        [assistant_message("Alfama scores 4.6.")],
    ])  # fmt: skip
    chat_server.agent[0] = Agent(name="assistant", model=model, tools=[get_reviews])

    first_response, first = keyed_chat(chat_server, "Reviews?", "k-1")
    retry_response, retry = keyed_chat(chat_server, "Reviews?", "k-1")

    assert len(model.calls) == 2  # the first turn's two steps; the retry ran nothing
    assert "idempotent-replayed" not in first_response.headers
    assert retry_response.headers["idempotent-replayed"] == "true"
    assert retry_response.headers["content-type"].startswith("text/event-stream")
    assert [e["event"] for e in retry] == ["tool_call", "tool_output", "token", "done"]
    assert [int(e["id"]) for e in retry] == [1, 2, 3, 4]
    live = {e["event"]: e["data"] for e in first}
    replayed = {e["event"]: e["data"] for e in retry}
    for name in ("tool_call", "tool_output", "done"):
        assert replayed[name] == live[name]
    tokens = "".join(e["data"]["delta"] for e in first if e["event"] == "token")
    assert replayed["token"] == {"delta": tokens}
    assert len(stored_items(chat_server)) == 4


def test_a_retry_while_the_turn_runs_meets_the_lease(chat_server: ChatServer) -> None:
    chat_server.gate.held = True
    headers = {**chat_server.headers(), "Idempotency-Key": "k-2"}
    with httpx.stream(
        "POST",
        f"{chat_server.url}/v1/sessions/c1/chat",
        json={"message": "slow"},
        headers=headers,
        timeout=10,
    ) as first:
        chat_server.gate.let_through(1)
        events = parse_sse(first.iter_lines())
        assert next(events)["event"] == "turn"
        assert next(events)["event"] == "token"

        during = httpx.post(
            f"{chat_server.url}/v1/sessions/c1/chat", json={"message": "slow"}, headers=headers
        )
        chat_server.gate.open()
        done = list(events)[-1]

    after = httpx.post(
        f"{chat_server.url}/v1/sessions/c1/chat",
        json={"message": "slow"},
        headers={**chat_server.headers(stream=False), "Idempotency-Key": "k-2"},
    )
    assert (during.status_code, during.json()["error"]["code"]) == (409, "turn_in_progress")
    assert done["event"] == "done"
    assert (after.status_code, after.headers["idempotent-replayed"]) == (200, "true")
    assert after.json()["output"] == offline_reply("slow")
    assert len(stored_items(chat_server)) == 2


def test_a_retried_new_chat_announces_the_same_session(chat_server: ChatServer) -> None:
    _, first = keyed_chat(chat_server, "hi", "new-1", path="/v1/chat")
    _, retry = keyed_chat(chat_server, "hi", "new-1", path="/v1/chat")

    assert first[0] == retry[0] and first[0]["event"] == "session"
    assert [e["event"] for e in retry] == ["session", "token", "done"]
    assert retry[-1]["data"] == first[-1]["data"]
    assert len(stored_items(chat_server, first[0]["data"]["session_id"])) == 2


@pytest.mark.parametrize(
    ("key", "message", "status", "code"),
    [
        ("bad key", "hi", 400, "invalid_idempotency_key"),
        ("x" * 256, "hi", 400, "invalid_idempotency_key"),
        ("used", "another message", 422, "idempotency_key_reused"),
    ],
)
def test_bad_or_reused_keys_are_refused_before_any_stream(
    chat_server: ChatServer, key: str, message: str, status: int, code: str
) -> None:
    keyed_chat(chat_server, "hi", "used")

    response = httpx.post(
        f"{chat_server.url}/v1/sessions/c1/chat",
        json={"message": message},
        headers={**chat_server.headers(), "Idempotency-Key": key},
    )

    assert (response.status_code, response.json()["error"]["code"]) == (status, code)
    assert response.headers["content-type"] == "application/json"
    assert len(stored_items(chat_server)) == 2
    chat_server.store.begin_turn(USER, "c1", "probe", lease_seconds=60)  # no lease left behind


# ---------------------------------------------------------------- branches: edit, regenerate, named


def chat_json(server: ChatServer, body: dict[str, Any]) -> httpx.Response:
    return httpx.post(
        f"{server.url}/v1/sessions/c1/chat", json=body, headers=server.headers(stream=False)
    )


def test_an_edit_streams_and_its_done_names_the_new_active_branch(chat_server: ChatServer) -> None:
    chat_json(chat_server, {"message": "first"})
    chat_json(chat_server, {"message": "second"})
    second = chat_server.store.read_newest(USER, "c1", None)[1][2]
    with httpx.stream(
        "POST",
        f"{chat_server.url}/v1/sessions/c1/chat",
        json={"message": "second, edited", "replaces_seq": second.seq},
        headers=chat_server.headers(),
    ) as response:
        events = list(parse_sse(response.iter_lines()))

    done = events[-1]
    assert done["event"] == "done"
    branch = done["data"]["branch"]
    assert branch != "main"
    assert chat_server.store.get_session(USER, "c1").active_branch == branch
    assert [i["content"] for i in stored_items(chat_server)[:3] if "role" in i][:3][
        2
    ] == "second, edited"
    assert done["data"]["message_count"] == 4


def test_regenerate_and_a_named_branch_through_the_api(chat_server: ChatServer) -> None:
    chat_json(chat_server, {"message": "first"})

    again = chat_json(chat_server, {"regenerate": True})
    on_main = chat_json(chat_server, {"message": "on main", "branch": "main"})

    assert again.status_code == 200
    assert again.json()["branch"] != "main"
    assert on_main.json()["branch"] == "main"
    main = [m.item for m in chat_server.store.read_newest(USER, "c1", None, branch="main")[1]]
    assert [i["content"] for i in main if i.get("role") == "user"] == ["first", "on main"]


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"regenerate": True, "message": "x"}, 422, "validation_failed"),
        ({}, 422, "validation_failed"),
        ({"message": "x", "replaces_seq": 0}, 422, "validation_failed"),
        ({"message": "x", "replaces_seq": 12345}, 404, "message_not_found"),
        ({"message": "x", "branch": "nope"}, 422, "validation_failed"),
        ({"message": "x", "branch": "b_" + "2" * 20}, 404, "branch_not_found"),
        ({"regenerate": True}, 404, "message_not_found"),
    ],
)
def test_bad_rewrites_are_refused_and_store_nothing(
    chat_server: ChatServer, body: dict[str, Any], status: int, code: str
) -> None:
    response = chat_json(chat_server, body)

    assert (response.status_code, response.json()["error"]["code"]) == (status, code)
    assert stored_items(chat_server) == []
    assert [b.branch_id for b in chat_server.store.list_branches(USER, "c1").branches] == ["main"]
