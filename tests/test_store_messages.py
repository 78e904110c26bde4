"""Messages: atomic ordered appends, newest-N, paging, pop, clear, fidelity, size, concurrency."""

from __future__ import annotations

import base64
import json
import logging
import math
import os
import threading
import time
import zlib
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from openai.types.responses import ResponseOutputMessage, ResponseOutputText

from chat_sessions import (
    BatchTooLargeError,
    ChatStore,
    InvalidCursorError,
    InvalidInputError,
    ItemTooLargeError,
    SessionNotFoundError,
)
from chat_sessions.codec import CHUNK_BYTES, MAX_ITEM_BYTES
from chat_sessions.keys import message_sk, partition_key
from chat_sessions.store.append import MAX_BATCH_ITEMS
from support import rows_of

USER = "user-a"
ONE_MIB = 1024 * 1024


def msg(text: str, role: str = "user") -> dict[str, Any]:
    return {"role": role, "content": text}


def texts(messages: list[Any]) -> list[str]:
    return [m.item["content"] for m in messages]


def incompressible_text(size: int) -> str:
    """A JSON-safe string of ``size`` characters that zlib cannot shrink."""
    return base64.b64encode(os.urandom(size))[:size].decode()


@pytest.fixture
def session(store: ChatStore) -> str:
    store.create_session(USER, "s1")
    return "s1"


def test_newest_n_in_chronological_order(store: ChatStore, session: str) -> None:
    for i in range(0, 30, 3):
        store.append_items(USER, session, [msg(f"m{j}") for j in range(i, i + 3)])

    header, newest = store.read_newest(USER, session, 5)
    _, everything = store.read_newest(USER, session, None)

    assert texts(newest) == [f"m{i}" for i in range(25, 30)]
    assert texts(everything) == [f"m{i}" for i in range(30)]
    assert header.message_count == 30
    assert [m.seq for m in everything] == sorted({m.seq for m in everything})
    assert store.read_newest(USER, session, 0)[1] == []


def test_append_to_missing_session_writes_nothing(
    store: ChatStore, dynamodb_client: Any, table_name: str
) -> None:
    with pytest.raises(SessionNotFoundError):
        store.append_items(USER, "ghost", [msg("x")])
    assert rows_of(dynamodb_client, table_name, partition_key(USER, "ghost")) == []


def test_append_can_create_the_session(store: ChatStore) -> None:
    store.append_items(USER, "new", [msg("first")], create_missing=True)
    store.append_items(USER, "new", [msg("second")], create_missing=True)

    session, messages = store.read_newest(USER, "new", None)
    assert texts(messages) == ["first", "second"]
    assert (session.message_count, session.title, session.metadata) == (2, None, {})


def test_empty_batch_is_rejected(store: ChatStore, session: str) -> None:
    with pytest.raises(InvalidInputError):
        store.append_items(USER, session, [])


@pytest.mark.parametrize("order", ["asc", "desc"])
def test_page_through_whole_history(store: ChatStore, session: str, order: str) -> None:
    for start in range(0, 120, 10):
        store.append_items(USER, session, [msg(f"m{i}") for i in range(start, start + 10)])

    seen: list[str] = []
    cursor = None
    while True:
        page = store.list_messages(USER, session, limit=50, cursor=cursor, order=order)  # type: ignore[arg-type]
        seen += texts(page.messages)
        cursor = page.next_cursor
        if cursor is None:
            break

    expected = [f"m{i}" for i in range(120)]
    assert seen == (expected if order == "asc" else expected[::-1])


def test_cursor_must_match_the_listing(store: ChatStore, session: str) -> None:
    store.append_items(USER, session, [msg(f"m{i}") for i in range(5)])
    cursor = store.list_messages(USER, session, limit=2, order="asc").next_cursor
    assert cursor is not None

    with pytest.raises(InvalidCursorError):
        store.list_messages(USER, session, limit=2, cursor=cursor, order="desc")
    with pytest.raises(InvalidCursorError):
        store.list_sessions(USER, cursor=cursor)
    with pytest.raises(InvalidCursorError):
        store.list_messages(USER, session, cursor="%%%")


def test_pop_returns_newest_and_counts(store: ChatStore, session: str) -> None:
    store.append_items(USER, session, [msg("a"), msg("b"), msg("c")])

    popped = store.pop_item(USER, session)

    assert popped is not None and popped.item == msg("c")
    session_now, messages = store.read_newest(USER, session, None)
    assert texts(messages) == ["a", "b"]
    assert session_now.message_count == 2
    assert texts([store.pop_item(USER, session), store.pop_item(USER, session)]) == ["b", "a"]
    assert store.pop_item(USER, session) is None
    assert store.get_session(USER, session).message_count == 0


def test_clear_keeps_session_and_purges_rows(
    store: ChatStore, session: str, dynamodb_client: Any, table_name: str
) -> None:
    store.update_session(USER, session, title="Kept", metadata={"k": "v"})
    store.append_items(USER, session, [msg(f"m{i}") for i in range(40)])
    store.append_items(USER, session, [{"role": "user", "content": incompressible_text(700_000)}])

    store.clear_items(USER, session)

    cleared, messages = store.read_newest(USER, session, None)
    assert messages == []
    assert (cleared.title, cleared.metadata, cleared.message_count) == ("Kept", {"k": "v"}, 0)
    # The clear wrote a trim marker; the stream consumer applies it (test_cascade.py does so
    # through the stream): what is below the new window goes, the marker stays until deleted.
    pk = partition_key(USER, session)
    assert store.purge_trimmed(pk) == 41 + 2  # 41 messages, the large one in 2 chunks
    kinds = [r["sk"]["S"].split("#")[0] for r in rows_of(dynamodb_client, table_name, pk)]
    assert kinds == ["SESSION", "TRIM"]
    assert store.purge_trimmed(pk) == 0  # idempotent
    store.append_items(USER, session, [msg("after")])
    assert texts(store.read_newest(USER, session, None)[1]) == ["after"]


def test_sdk_items_round_trip_exactly(store: ChatStore, session: str) -> None:
    items: list[Any] = [
        {"role": "user", "content": 'Größe? 日本語 🙂 \u2028 "quoted" \\ back'},
        {
            "role": "user",
            "content": [
                {"type": "input_text", "text": "look"},
                {"type": "input_image", "image_url": "https://example.com/a.png", "detail": "auto"},
            ],
        },
        {
            "type": "function_call",
            "call_id": "call_1",
            "name": "get_weather",
            "arguments": '{"city": "Paris"}',
        },
        {"type": "function_call_output", "call_id": "call_1", "output": '{"temp": 21.0}'},
        {"type": "reasoning", "id": "rs_1", "summary": [{"type": "summary_text", "text": "think"}]},
        {
            "type": "message",
            "role": "assistant",
            "status": "completed",
            "content": [{"type": "output_text", "text": "Sunny", "annotations": []}],
            "extra": {"float": 1.0, "int": 1, "neg": -0.5, "big": 2**62, "none": None, "t": True},
        },
    ]
    model = ResponseOutputMessage(
        id="msg_1",
        type="message",
        role="assistant",
        status="completed",
        content=[ResponseOutputText(type="output_text", text="From a model", annotations=[])],
    )

    store.append_items(USER, session, [*items, model])
    _, stored = store.read_newest(USER, session, None)
    restored = [m.item for m in stored]

    assert restored[:-1] == items
    assert restored[-1] == model.model_dump(mode="json", exclude_unset=True)
    extra = restored[5]["extra"]
    assert type(extra["float"]) is float and type(extra["int"]) is int
    assert json.dumps(restored[:-1]) == json.dumps(items)  # same types, same order of keys


def test_one_megabyte_items_round_trip(
    store: ChatStore, session: str, dynamodb_client: Any, table_name: str
) -> None:
    # Both at 1 MiB (the HTTP maximum; test_store_large goes to 32 MiB): one incompressible (split
    # into chunks), one compressible.
    envelope = len(json.dumps({"role": "user", "content": ""}, separators=(",", ":")))
    random_item = {"role": "user", "content": incompressible_text(ONE_MIB - envelope)}
    repetitive_item = {"role": "user", "content": "abc" * ((ONE_MIB - envelope) // 3)}

    store.append_items(USER, session, [random_item])
    store.append_items(USER, session, [repetitive_item])

    _, stored = store.read_newest(USER, session, None)
    assert [m.item for m in stored] == [random_item, repetitive_item]
    assert store.list_messages(USER, session, order="desc").messages[0].item == repetitive_item
    rows = rows_of(dynamodb_client, table_name, partition_key(USER, session))
    packed = zlib.compress(json.dumps(random_item, separators=(",", ":")).encode(), 6)
    assert sum(r["sk"]["S"].startswith("CHUNK#") for r in rows) == math.ceil(
        len(packed) / CHUNK_BYTES
    )
    assert len(packed) > 2 * CHUNK_BYTES  # so the item really was split
    assert all(len(r.get("data", {}).get("B", b"")) <= CHUNK_BYTES for r in rows)
    popped = store.pop_item(USER, session)
    assert popped is not None and popped.item == repetitive_item
    popped = store.pop_item(USER, session)
    assert popped is not None and popped.item == random_item
    assert [
        r["sk"]["S"] for r in rows_of(dynamodb_client, table_name, partition_key(USER, session))
    ] == ["SESSION"]


def test_over_the_maximum_writes_nothing(store: ChatStore, session: str) -> None:
    store.append_items(USER, session, [msg("before")])
    too_big = {"role": "user", "content": "x" * MAX_ITEM_BYTES}

    with pytest.raises(ItemTooLargeError):
        store.append_items(USER, session, [msg("would be lost"), too_big])
    with pytest.raises(BatchTooLargeError):
        store.append_items(USER, session, [msg("m")] * (MAX_BATCH_ITEMS + 1))

    current, messages = store.read_newest(USER, session, None)
    assert texts(messages) == ["before"]
    assert current.message_count == 1


def test_history_over_one_megabyte(store: ChatStore, session: str) -> None:
    contents = [incompressible_text(60_000) for _ in range(30)]  # 1.8 MB, above a Query page
    for start in range(0, 30, 5):
        store.append_items(USER, session, [msg(c) for c in contents[start : start + 5]])

    _, everything = store.read_newest(USER, session, None)
    _, newest = store.read_newest(USER, session, 25)
    paged: list[str] = []
    cursor = None
    while True:
        page = store.list_messages(USER, session, limit=100, cursor=cursor)
        paged += texts(page.messages)
        if (cursor := page.next_cursor) is None:
            break

    assert texts(everything) == contents
    assert texts(newest) == contents[5:]
    assert paged == contents


def test_unreadable_rows_are_skipped(
    store: ChatStore,
    session: str,
    dynamodb_client: Any,
    table_name: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    result = store.append_items(USER, session, [msg("a"), msg("b"), msg("c")])
    middle = {
        "pk": {"S": partition_key(USER, session)},
        "sk": {"S": message_sk(result.first_seq + 1)},
    }
    dynamodb_client.update_item(  # a hand edit that truncated the JSON
        TableName=table_name,
        Key=middle,
        UpdateExpression="SET #item = :broken",
        ExpressionAttributeNames={"#item": "item"},
        ExpressionAttributeValues={":broken": {"S": '{"role": "us'}},
    )

    with caplog.at_level(logging.WARNING, logger="chat_sessions"):
        _, messages = store.read_newest(USER, session, None)

    assert texts(messages) == ["a", "c"]
    assert any(r.message == "skipping unreadable message row" for r in caplog.records)
    assert all("us" not in str(getattr(r, "reason", "")) for r in caplog.records)
    assert texts(store.list_messages(USER, session).messages) == ["a", "c"]
    popped = store.pop_item(USER, session)
    assert popped is not None and popped.item == msg("c")
    popped = store.pop_item(USER, session)  # drops the broken row, returns the next good one
    assert popped is not None and popped.item == msg("a")


# --------------------------------------------------------------------------------- concurrency
# moto's in-memory backend is not thread-safe (its dicts change under concurrent requests), so it
# cannot judge concurrency; these run against DynamoDB Local, a real server.
real_server_only = pytest.mark.usefixtures("_real_server_only")


@pytest.fixture
def _real_server_only(backend: str) -> None:
    if backend == "moto":
        pytest.skip("moto is not thread-safe; concurrency is tested against DynamoDB Local")


def frozen_clock() -> Callable[[], float]:
    """Every writer reads the same instant: the worst case of clock skew between hosts."""
    instant = time.time()
    return lambda: instant


WRITER_CLOCKS = [
    pytest.param(time.time, id="real-clock"),
    pytest.param(frozen_clock(), id="same-instant"),
]


@real_server_only
@pytest.mark.parametrize("writer_clock", WRITER_CLOCKS)
def test_concurrent_writers_lose_nothing(
    make_store: Callable[..., ChatStore], writer_clock: Callable[[], float]
) -> None:
    make_store(clock=writer_clock).create_session(USER, "busy")
    writers, appends = 8, 25
    start = threading.Barrier(writers)

    def write(writer: int) -> None:
        own = make_store(clock=writer_clock)  # own object and client, like a separate process
        start.wait()
        for n in range(appends):
            own.append_items(USER, "busy", [msg(f"w{writer}-{n}")])

    with ThreadPoolExecutor(writers) as pool:
        list(pool.map(write, range(writers)))

    session, stored = make_store(clock=writer_clock).read_newest(USER, "busy", None)
    assert session.message_count == writers * appends
    assert len(stored) == writers * appends
    for writer in range(writers):
        own = [t for t in texts(stored) if t.startswith(f"w{writer}-")]
        assert own == [f"w{writer}-{n}" for n in range(appends)]


@real_server_only
@pytest.mark.parametrize("writer_clock", WRITER_CLOCKS)
def test_concurrent_batches_never_interleave(
    make_store: Callable[..., ChatStore], writer_clock: Callable[[], float]
) -> None:
    make_store(clock=writer_clock).create_session(USER, "busy")

    def write(writer: int) -> None:
        own = make_store(clock=writer_clock)
        for n in range(10):
            own.append_items(USER, "busy", [msg(f"w{writer}-{n}-{part}") for part in range(3)])

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(write, range(4)))

    stored = texts(make_store(clock=writer_clock).read_newest(USER, "busy", None)[1])
    assert len(stored) == 120
    for batch_start in range(0, 120, 3):
        batch = stored[batch_start : batch_start + 3]
        assert [t.rsplit("-", 1)[0] for t in batch] == [batch[0].rsplit("-", 1)[0]] * 3
        assert [t.rsplit("-", 1)[1] for t in batch] == ["0", "1", "2"]


@real_server_only
def test_concurrent_pops_never_return_an_item_twice(make_store: Callable[..., ChatStore]) -> None:
    setup = make_store()
    setup.create_session(USER, "pile")
    for start in range(0, 100, 20):
        setup.append_items(USER, "pile", [msg(f"m{i:03d}") for i in range(start, start + 20)])
    all_ready = threading.Barrier(8)

    def pop_ten(_: int) -> list[str]:
        own = make_store()
        all_ready.wait()
        popped = [own.pop_item(USER, "pile") for _ in range(10)]
        return [p.item["content"] for p in popped if p is not None]

    with ThreadPoolExecutor(8) as pool:
        results = [t for batch in pool.map(pop_ten, range(8)) for t in batch]

    assert len(results) == 80
    assert len(set(results)) == 80
    assert set(results) == {f"m{i:03d}" for i in range(20, 100)}
    session, remaining = setup.read_newest(USER, "pile", None)
    assert texts(remaining) == [f"m{i:03d}" for i in range(20)]
    assert session.message_count == 20


def test_a_cleared_unpurged_history_costs_one_small_page(store: ChatStore, session: str) -> None:
    from chat_sessions.store.history import FIRST_PAGE_ROWS

    for start in range(0, 600, 98):
        store.append_items(USER, session, [msg(f"m{i}") for i in range(start, start + 98)])
    store.clear_items(USER, session)  # the cascade has not purged the 588 rows yet
    store.append_items(USER, session, [msg("after")])
    scanned: list[int] = []
    store.client.meta.events.register(
        "after-call.dynamodb.Query", lambda parsed, **_: scanned.append(parsed["ScannedCount"])
    )

    _, everything = store.read_newest(USER, session, None)

    assert texts(everything) == ["after"]
    assert len(scanned) == 1 and scanned[0] <= FIRST_PAGE_ROWS + 1
