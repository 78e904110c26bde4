"""The first byte and resumable streams (docs/chat.md): what a turn costs before its model starts,
what a resume costs (exact, metered), and timings over the whole local stack (the HTTP API and
the chat app on DynamoDB Local) as ratios to a plain GET measured in the same run.

Run by ``make bench`` with the storage benchmark.
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any
from unittest.mock import patch

import httpx
from agents import Agent

from bench.meter import Cost, metered_store
from chat_sessions import ChatStore, service
from chat_sessions.agent_config import OfflineModel, build_agent
from chat_sessions.models import ChatSession
from chat_sessions.resumption import FLUSH_SECONDS, POLL_SECONDS, Resumption
from chat_sessions.store.stream_log import Batch
from chat_sessions.turns import TurnSettings, run_turn
from chat_sessions_local.dynamodb_local import DynamoDBLocal, free_port

USER = "bench-user"
TEXT = "x" * 600
SAMPLES = 30


def start_costs(server: DynamoDBLocal, table: str = "chat-bench-start") -> list[tuple[str, Cost]]:
    """What a turn sends before its model starts, and what a resume of a finished turn reads."""
    meter, store = metered_store(server, table)
    agent = Agent(name="assistant", model=OfflineModel())
    pair = [{"role": "user", "content": TEXT}, {"role": "assistant", "content": TEXT}]
    store.create_session(USER, "s", title="bench")
    store.append_items(USER, "s", pair * 20)
    rows: list[tuple[str, Cost]] = []

    def until_started(name: str, turn: Callable[[Callable[[ChatSession], None]], Any]) -> None:
        overlapped = store.table.overlapped
        at_start: list[Cost] = []
        with meter.measure() as cost:

            def started(session: ChatSession) -> None:
                at_start.append(Cost(cost.round_trips, list(cost.operations), cost.reported_read))
                at_start[0].billed_write = cost.billed_write
                at_start[0].billed_index_write = cost.billed_index_write

            turn(started)
        at_start[0].round_trips -= store.table.overlapped - overlapped
        rows.append((name, at_start[0]))

    until_started(
        "chat turn, until its model starts",
        lambda started: asyncio.run(
            run_turn(store, agent, USER, "s", "What next?", _ignore, on_started=started)
        ),
    )
    until_started("new chat (POST /v1/chat), until its model starts", partial_new_chat(store))
    session = store.get_session(USER, "s")
    expires = int(time.time()) + 3600
    batch = Batch(0, _events(200), True, session.history_start, expires)
    store.log_stream(USER, "s", "f" * 32, batch)
    overlapped = store.table.overlapped
    with meter.measure() as cost:
        asyncio.run(_drain(store, "f" * 32))
    cost.round_trips -= store.table.overlapped - overlapped
    rows.append(("resume a finished turn (200 events, 1 batch)", cost))
    return rows


def partial_new_chat(store: ChatStore) -> Callable[[Callable[[ChatSession], None]], Any]:
    settings = TurnSettings()
    agent = Agent(name="assistant", model=OfflineModel())

    def turn(started: Callable[[ChatSession], None]) -> Any:
        with patch.object(service, "get_store", lambda: store):
            session, _ = service.open_chat(
                USER, None, "e" * 32, lease_seconds=settings.lease_seconds
            )
        return asyncio.run(
            run_turn(
                store,
                agent,
                USER,
                session.session_id,
                "Hi",
                _ignore,
                settings,
                started,
                turn_id="e" * 32,
                opened=session,
            )
        )

    return turn


async def _drain(store: ChatStore, turn_id: str) -> None:
    resumed = await Resumption.open(store, USER, "s", turn_id, 0, limit_seconds=60)
    async for _ in resumed.events():
        pass


def _events(count: int) -> list[tuple[int, str, dict[str, Any]]]:
    tokens = [(i, "token", {"delta": f"word{i} "}) for i in range(1, count)]
    return [*tokens, (count, "done", {"message_count": 2})]


async def _ignore(name: str, data: dict[str, Any]) -> None:
    return None


# ------------------------------------------------------------------------------------ timings


def timings() -> str:
    """Over the local stack (its own DynamoDB Local): first byte and ``done`` against a plain
    GET, the sequential start for reference, the stream log of a streamed answer, and how far a
    resumed reader lags the live one."""
    from chat_sessions_local.dev import local_stack

    saved = os.environ.get("CHAT_SESSIONS_OFFLINE_WORD_DELAY")
    os.environ["CHAT_SESSIONS_OFFLINE_WORD_DELAY"] = "0"
    build_agent.cache_clear()
    try:
        with local_stack(port=free_port()) as (_, issuer, url):
            client = _Client(url, issuer.mint(USER))
            return _timed(client)
    finally:
        build_agent.cache_clear()
        if saved is None:
            os.environ.pop("CHAT_SESSIONS_OFFLINE_WORD_DELAY", None)
        else:
            os.environ["CHAT_SESSIONS_OFFLINE_WORD_DELAY"] = saved


@dataclass(frozen=True)
class Arrival:
    event_id: str
    name: str
    data: str
    at: float


class _Client:
    def __init__(self, url: str, token: str) -> None:
        self.url = url
        self.http = httpx.Client(timeout=60, headers={"Authorization": f"Bearer {token}"})

    def get_ms(self, path: str) -> float:
        started = time.perf_counter()
        self.http.get(self.url + path).raise_for_status()
        return (time.perf_counter() - started) * 1000

    def stream(self, path: str, body: dict[str, Any] | None = None) -> Iterator[Arrival]:
        """Each event of a chat turn or a resume as it arrives."""
        method = "POST" if body is not None else "GET"
        headers = {"Accept": "text/event-stream"}
        with self.http.stream(method, self.url + path, json=body, headers=headers) as response:
            event_id, name = "", ""
            for line in response.iter_lines():
                if line.startswith("id: "):
                    event_id = line.removeprefix("id: ")
                elif line.startswith("event: "):
                    name = line.removeprefix("event: ")
                elif line.startswith("data: "):
                    yield Arrival(event_id, name, line.removeprefix("data: "), time.perf_counter())


def _turn_ms(client: _Client, path: str, body: dict[str, Any]) -> tuple[float, float, float]:
    """Milliseconds to the ``turn`` event (the model starts), the first token, and ``done``."""
    started = time.perf_counter()
    marks: dict[str, float] = {}
    for arrival in client.stream(path, body):
        marks.setdefault(arrival.name, arrival.at)
    return tuple((marks[n] - started) * 1000 for n in ("turn", "token", "done"))  # type: ignore[return-value]


ROUND_TRIP_MS = 10
"""Added to every DynamoDB call in the second run: a round trip in AWS, where DynamoDB Local's
loopback (which also serialises calls sent together) hides what a round trip saves."""


def _timed(client: _Client) -> str:
    client.http.post(client.url + "/v1/sessions", json={"session_id": "t"}).raise_for_status()
    for _ in range(3):  # warm: imports, JWKS, connections
        _turn_ms(client, "/v1/sessions/t/chat", {"message": "warm up"})
        client.get_ms("/v1/sessions/t")
    lines = _starts(client, "on loopback")
    sleep = lambda **_: time.sleep(ROUND_TRIP_MS / 1000)  # noqa: E731
    events = service.get_store().table.client.meta.events
    events.register("before-send.dynamodb", sleep)
    try:
        lines += _starts(client, f"with {ROUND_TRIP_MS} ms added to each DynamoDB call")
    finally:
        events.unregister("before-send.dynamodb", sleep)
    return "\n".join([*lines, *_streamed(client)])


def _starts(client: _Client, where: str) -> list[str]:
    """First byte and ``done`` of a turn, of a new chat, and of the sequential start, against
    a plain GET."""
    get: list[float] = []
    plain, new, before = [], [], []
    for _ in range(SAMPLES):  # in turns, so a slow moment of the machine hits all alike
        get.append(client.get_ms("/v1/sessions/t"))
        plain.append(_turn_ms(client, "/v1/sessions/t/chat", {"message": "hi"}))
        new.append(_turn_ms(client, "/v1/chat", {"message": "hi"}))
        with patch.object(ChatStore, "begin_turn_with_window", _sequential):
            before.append(_turn_ms(client, "/v1/sessions/t/chat", {"message": "hi"}))
    reference = statistics.median(get)

    def ratio(samples: list[tuple[float, float, float]], at: int) -> str:
        value = statistics.median(s[at] for s in samples)
        return f"{value:.1f} ms, {value / reference:.2f}x"

    return [
        f"- {where[0].upper()}{where[1:]}: a plain `GET /v1/sessions/{{id}}` takes a median "
        f"{reference:.1f} ms (medians of {SAMPLES} each, ratios to that GET):",
        f"  - `POST .../chat`: its model starts at {ratio(plain, 0)}; first token "
        f"{ratio(plain, 1)}; `done` {ratio(plain, 2)};",
        f"  - the same with the window read after the lease (the start before this change): "
        f"model starts at {ratio(before, 0)}; `done` {ratio(before, 2)};",
        f"  - `POST /v1/chat` (a new session): model starts at {ratio(new, 0)}; `done` "
        f"{ratio(new, 2)}.",
    ]


def _sequential(store: ChatStore, user_id: str, session_id: str, turn_id: str, **kw: Any) -> Any:
    """The start before ``turn_start``: the lease, then (after it) the window."""
    return store.begin_turn(user_id, session_id, turn_id, lease_seconds=kw["lease_seconds"]), None


def _streamed(client: _Client) -> list[str]:
    """A 6-second answer (120 words, 50 ms each) with a second reader resuming from the start
    once the first words are out: the log it wrote, and the resumed reader's lag."""
    os.environ["CHAT_SESSIONS_OFFLINE_WORD_DELAY"] = "0.05"
    build_agent.cache_clear()
    message = " ".join(f"w{i}" for i in range(110))
    live: list[Arrival] = []
    resumed: list[Arrival] = []
    turn_id: list[str] = []
    ready = threading.Event()

    def reader() -> None:
        ready.wait(30)
        time.sleep(0.5)
        resumed.extend(client.stream(f"/v1/sessions/t/turns/{turn_id[0]}/events"))

    thread = threading.Thread(target=reader)
    thread.start()
    started = time.perf_counter()
    for arrival in client.stream("/v1/sessions/t/chat", {"message": message}):
        if arrival.name == "turn":
            turn_id.append(json.loads(arrival.data)["turn_id"])
            ready.set()
        live.append(arrival)
    seconds = time.perf_counter() - started
    thread.join(60)
    at = {a.event_id: a.at for a in live}
    lags = [(a.at - at[a.event_id]) * 1000 for a in resumed[len(resumed) // 3 :]]
    same = [(a.event_id, a.data) for a in resumed] == [(a.event_id, a.data) for a in live]
    batches = _log_batches(turn_id[0])
    return [
        f"- A streamed answer of {len(live)} events over {seconds:.1f} s wrote its log in "
        f"{batches} batches, one PutItem each (at most one per {FLUSH_SECONDS:g} s, the first "
        "and the last at once), 1 WCU each at this size: not a write per token.",
        f"- A second reader resuming it mid-answer got all {len(resumed)} events "
        f"({'the same' if same else 'NOT the same'}"
        f" as the live stream). Past the events it had missed, it trailed the live reader by "
        f"a median {statistics.median(lags):.0f} ms, at most {max(lags):.0f} ms (the bound is "
        f"the flush interval plus the poll, {FLUSH_SECONDS + POLL_SECONDS:g} s, plus a round "
        "trip).",
    ]


def _log_batches(turn_id: str) -> int:
    """How many batches the turn's log holds (the stack's own store reads them back)."""
    return len(service.get_store().read_stream_log(USER, "t", turn_id, 0))
