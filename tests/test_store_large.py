"""Appends of any size: staged batches are atomic, ordered, never interleaved, and leave nothing
visible or behind when their writer dies (docs/data-model.md, "Appends of any size")."""

from __future__ import annotations

import base64
import json
import os
import threading
from collections.abc import Callable
from typing import Any

import pytest

from chat_sessions import (
    ChatStore,
    ConflictError,
    InvalidInputError,
    ItemTooLargeError,
    SessionNotFoundError,
)
from chat_sessions.codec import MAX_ITEM_BYTES, MAX_NESTING
from chat_sessions.idempotency import IdempotencyRecord
from chat_sessions.keys import partition_key
from chat_sessions.store import TurnCommit, staging
from support import FakeClock

USER = "user-a"


def msg(text: str, role: str = "user") -> dict[str, Any]:
    return {"role": role, "content": text}


def texts(store: ChatStore, session_id: str) -> list[str]:
    return [m.item["content"] for m in store.read_newest(USER, session_id, None)[1]]


def incompressible(size: int) -> str:
    return base64.b64encode(os.urandom(size))[:size].decode()


def message_rows(client: Any, table: str, session_id: str) -> list[str]:
    return [
        r["sk"]["S"]
        for r in rows_of_all(client, table, partition_key(USER, session_id))
        if r["sk"]["S"].startswith(("MSG#", "CHUNK#"))
    ]


def rows_of_all(client: Any, table: str, pk: str) -> list[dict[str, Any]]:
    """Every row of a partition, all pages (``rows_of`` reads one)."""
    found: list[dict[str, Any]] = []
    request: dict[str, Any] = {
        "TableName": table,
        "KeyConditionExpression": "pk = :pk",
        "ExpressionAttributeValues": {":pk": {"S": pk}},
        "ProjectionExpression": "pk, sk",
        "ConsistentRead": True,
    }
    while True:
        page = client.query(**request)
        found += page["Items"]
        if "LastEvaluatedKey" not in page:
            return found
        request["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def calls_of(store: ChatStore) -> list[str]:
    calls: list[str] = []
    store.client.meta.events.register(
        "before-call.dynamodb", lambda model, **_: calls.append(model.name)
    )
    return calls


def real_server_scale(backend: str, full: int, on_moto: int) -> int:
    """moto copies the whole table for every transaction (quadratic in what it holds), so the
    full sizes run on DynamoDB Local, a real server, and smaller ones on moto."""
    return full if backend == "dynamodb_local" else on_moto


def test_ten_thousand_items_in_one_call(backend: str, store: ChatStore) -> None:
    count = real_server_scale(backend, 10_000, 1_000)
    store.append_items(USER, "s1", [msg("before")], create_missing=True)
    items = [msg(f"m{i:05d}", "user" if i % 2 == 0 else "assistant") for i in range(count)]

    result = store.append_items(USER, "s1", items)

    assert result.appended == count and result.last_seq - result.first_seq == count - 1
    assert texts(store, "s1") == ["before", *[f"m{i:05d}" for i in range(count)]]
    assert store.get_session(USER, "s1").message_count == count + 1


def test_a_batch_that_fits_one_transaction_is_one_round_trip(store: ChatStore) -> None:
    store.create_session(USER, "s1")
    calls = calls_of(store)

    store.append_items(USER, "s1", [msg(f"m{i}") for i in range(98)])

    assert calls == ["TransactWriteItems"]


def test_a_staged_batch_costs_its_groups_plus_two(store: ChatStore) -> None:
    store.create_session(USER, "s1")
    calls = calls_of(store)

    store.append_items(USER, "s1", [msg(f"m{i}") for i in range(250)])

    # reserve, 3 groups of at most 99 rows, commit
    assert calls == ["UpdateItem", *["TransactWriteItems"] * 3, "TransactWriteItems"]


def test_thirty_two_megabytes_in_one_call_and_a_32_mib_item(backend: str, store: ChatStore) -> None:
    store.create_session(USER, "s1")
    envelope = len(json.dumps(msg(""), separators=(",", ":")))
    largest = msg(incompressible(real_server_scale(backend, MAX_ITEM_BYTES, 5_000_000) - envelope))
    many = [msg(incompressible(1_000_000)) for _ in range(real_server_scale(backend, 32, 5))]

    store.append_items(USER, "s1", [largest])
    store.append_items(USER, "s1", many)

    _, stored = store.read_newest(USER, "s1", None)
    assert [m.item for m in stored] == [largest, *many]
    assert store.pop_item(USER, "s1") is not None
    assert store.get_session(USER, "s1").message_count == len(many)
    with pytest.raises(ItemTooLargeError):
        store.append_items(USER, "s1", [msg("x" * MAX_ITEM_BYTES)])


@pytest.mark.parametrize("before", [["before"], []], ids=["after-a-message", "empty-session"])
def test_a_staged_batch_is_invisible_until_its_commit(
    store: ChatStore, make_store: Callable[..., ChatStore], before: list[str]
) -> None:
    store.create_session(USER, "s1")
    if before:
        store.append_items(USER, "s1", [msg(text) for text in before])
    reader = make_store()
    seen: list[tuple[list[str], int]] = []
    transactions = {"count": 0}

    def look(**_: Any) -> None:  # before each staging transaction and the commit
        transactions["count"] += 1
        seen.append((texts(reader, "s1"), reader.get_session(USER, "s1").message_count))

    store.client.meta.events.register("before-call.dynamodb.TransactWriteItems", look)
    store.append_items(USER, "s1", [msg(f"m{i}") for i in range(300)])

    assert transactions["count"] == 5  # 4 groups, then the commit
    assert seen == [(before, len(before))] * 5  # staged rows lie above the window, unread
    assert texts(reader, "s1") == [*before, *[f"m{i}" for i in range(300)]]


class WriterDied(BaseException):
    """The process ended: nothing after this runs, not even clean-up."""


def die_after(store: ChatStore, transactions: int) -> None:
    """From the ``transactions``-th staging transaction on, every call of ``store`` fails."""
    sent = {"count": 0}

    def hook(model: Any, **_: Any) -> None:
        if model.name == "TransactWriteItems":
            sent["count"] += 1
        if sent["count"] >= transactions:
            raise WriterDied

    store.client.meta.events.register("before-call.dynamodb", hook)


def test_a_writer_that_dies_mid_batch_leaves_nothing_visible_or_behind(
    make_store: Callable[..., ChatStore], clock: FakeClock, dynamodb_client: Any, table_name: str
) -> None:
    dying = make_store()
    dying.create_session(USER, "s1")
    dying.append_items(USER, "s1", [msg("before")])
    die_after(dying, 3)  # two groups staged, then the process ends

    with pytest.raises(WriterDied):
        dying.append_items(USER, "s1", [msg(f"m{i}") for i in range(400)])

    other = make_store()
    assert texts(other, "s1") == ["before"]
    assert len(message_rows(dynamodb_client, table_name, "s1")) == 1 + 198  # staged, unseen
    clock.advance(staging.LEASE_SECONDS + 1)  # the dead writer's reservation lapses

    other.append_items(USER, "s1", [msg("after")])

    assert texts(other, "s1") == ["before", "after"]
    assert other.get_session(USER, "s1").message_count == 2
    assert len(message_rows(dynamodb_client, table_name, "s1")) == 2  # the orphans are gone
    other.append_items(USER, "s1", [msg(f"n{i}") for i in range(150)])  # staging works again
    assert texts(other, "s1")[-1] == "n149"


def test_a_live_reservation_makes_a_plain_append_wait_its_turn(
    backend: str, make_store: Callable[..., ChatStore]
) -> None:
    if backend == "moto":
        pytest.skip("moto is not thread-safe; concurrency is tested against DynamoDB Local")
    big = make_store()
    big.create_session(USER, "s1")
    small = make_store()
    done: list[str] = []
    staged_once = threading.Event()

    def small_appends() -> None:
        staged_once.wait(30)
        for i in range(5):
            small.append_items(USER, "s1", [msg(f"small{i}")])
        done.append("small")

    def signal(**_: Any) -> None:
        staged_once.set()

    big.client.meta.events.register("after-call.dynamodb.UpdateItem", signal)
    thread = threading.Thread(target=small_appends)
    thread.start()
    big.append_items(USER, "s1", [msg(f"big{i}") for i in range(500)])
    thread.join(60)

    stored = texts(big, "s1")
    assert done == ["small"] and len(stored) == 505
    start = stored.index("big0")
    assert stored[start : start + 500] == [f"big{i}" for i in range(500)]  # never interleaved
    assert [t for t in stored if t.startswith("small")] == [f"small{i}" for i in range(5)]


def test_a_large_turn_commit_with_its_lease(store: ChatStore) -> None:
    store.create_session(USER, "s1")
    store.begin_turn(USER, "s1", "turn-1", lease_seconds=60)
    calls = [
        {"type": "function_call", "call_id": f"c{i}", "name": "f", "arguments": "{}"}
        for i in range(50)
    ]
    outputs = [
        {"type": "function_call_output", "call_id": f"c{i}", "output": "x"} for i in range(50)
    ]
    items = [msg("go"), *calls, *outputs, msg("done", "assistant")]

    store.append_items(USER, "s1", items, turn=TurnCommit("turn-1", 5, 7))

    session, stored = store.read_newest(USER, "s1", None)
    assert [m.item for m in stored] == items
    assert session.usage.total_tokens == 12
    store.begin_turn(USER, "s1", "turn-2", lease_seconds=60)  # the commit released the lease


def test_a_replayed_large_batch_stores_nothing_and_leaves_nothing(
    store: ChatStore, dynamodb_client: Any, table_name: str
) -> None:
    store.create_session(USER, "s1")
    record = IdempotencyRecord("key-1", "hash-1", '{"appended": 200}', 201)
    items = [msg(f"m{i}") for i in range(200)]

    first = store.append_items(USER, "s1", items, idempotency=record)
    calls = calls_of(store)
    again = store.append_items(USER, "s1", items, idempotency=record)

    assert calls == ["GetItem", "GetItem"]  # the header and the record: nothing staged again
    assert first.replay is None and again.replay is not None
    assert (again.first_seq, again.last_seq) == (first.first_seq, first.last_seq)
    assert len(texts(store, "s1")) == 200
    assert len(message_rows(dynamodb_client, table_name, "s1")) == 200


def test_a_session_deleted_while_staging_gets_nothing(
    make_store: Callable[..., ChatStore], dynamodb_client: Any, table_name: str
) -> None:
    writer = make_store()
    writer.create_session(USER, "s1")
    other = make_store()
    sent = {"count": 0}

    def delete_midway(model: Any, **_: Any) -> None:
        sent["count"] += 1
        if sent["count"] == 2:
            other.delete_session(USER, "s1")

    writer.client.meta.events.register("before-call.dynamodb.TransactWriteItems", delete_midway)
    with pytest.raises(SessionNotFoundError):
        writer.append_items(USER, "s1", [msg(f"m{i}") for i in range(300)])

    with pytest.raises(SessionNotFoundError):
        other.get_session(USER, "s1")
    assert message_rows(dynamodb_client, table_name, "s1") != []  # left for the cascade


def test_what_cannot_be_read_back_is_refused_at_write(store: ChatStore) -> None:
    store.create_session(USER, "s1")
    deep: Any = "leaf"
    for _ in range(MAX_NESTING - 1):  # with the item itself: MAX_NESTING deep, the most
        deep = [deep]
    store.append_items(USER, "s1", [{"role": "user", "content": deep}])
    too_deep: Any = {"role": "user", "content": [deep]}
    bombs: list[Any] = [
        too_deep,
        {"role": "user", "content": 10**5000},
        {"role": "user", "content": float("nan")},
        {"role": "user", "content": "\ud800"},
    ]
    for bomb in bombs:
        with pytest.raises(InvalidInputError):
            store.append_items(USER, "s1", [msg("would be lost"), bomb])

    session, stored = store.read_newest(USER, "s1", None)
    assert session.message_count == 1 and len(stored) == 1
    assert store.pop_item(USER, "s1") is not None


def test_the_cascade_of_a_deleted_session_reaches_its_unfinished_batch(
    make_store: Callable[..., ChatStore], dynamodb_client: Any, table_name: str
) -> None:
    from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import (
        DynamoDBRecord,
    )

    from chat_sessions.cascade import cascade

    dying = make_store()
    dying.create_session(USER, "s1")
    dying.append_items(USER, "s1", [msg("before")])
    die_after(dying, 3)
    with pytest.raises(WriterDied):
        dying.append_items(USER, "s1", [msg(f"m{i}") for i in range(400)])
    store = make_store()
    key = {"pk": {"S": partition_key(USER, "s1")}, "sk": {"S": "SESSION"}}
    old = dynamodb_client.get_item(TableName=table_name, Key=key, ConsistentRead=True)["Item"]
    store.delete_session(USER, "s1")

    record = {"eventName": "REMOVE", "dynamodb": {"Keys": key, "OldImage": old}}
    cascade(store, DynamoDBRecord(record))

    assert message_rows(dynamodb_client, table_name, "s1") == []  # orphans above last_seq too


def reserve_by_hand(client: Any, table: str, session_id: str, seq: int, until: int) -> None:
    """A reservation another writer holds (or held: ``until`` in the past), on the header."""
    client.update_item(
        TableName=table,
        Key={"pk": {"S": partition_key(USER, session_id)}, "sk": {"S": "SESSION"}},
        UpdateExpression="SET staging_id = :other, staging_first = :seq, staging_last = :seq, "
        "reserved_seq = :seq, staging_until = :until",
        ExpressionAttributeValues={
            ":other": {"S": "another-writer"},
            ":seq": {"N": str(seq)},
            ":until": {"N": str(until)},
        },
    )


def test_no_batch_ever_lands_in_a_range_once_reserved(
    store: ChatStore, dynamodb_client: Any, table_name: str
) -> None:
    store.create_session(USER, "s1")
    ahead = store.get_session(USER, "s1").first_seq + 10**9  # a reservation 1,000 s ahead,
    dynamodb_client.update_item(  # revoked and removed since: only its high-water mark is left
        TableName=table_name,
        Key={"pk": {"S": partition_key(USER, "s1")}, "sk": {"S": "SESSION"}},
        UpdateExpression="SET reserved_seq = :seq",
        ExpressionAttributeValues={":seq": {"N": str(ahead)}},
    )

    result = store.append_items(USER, "s1", [msg("after")])

    assert result.first_seq > ahead  # never inside what a revoked writer may still delete
    assert texts(store, "s1") == ["after"]


def test_an_append_waits_a_bounded_time_for_a_live_reservation(
    store: ChatStore, dynamodb_client: Any, table_name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(staging, "WAIT_SECONDS", 0.3)
    store.create_session(USER, "s1")
    seq = store.get_session(USER, "s1").first_seq + 10
    reserve_by_hand(dynamodb_client, table_name, "s1", seq, until=2**40)  # held, far from lapsing

    with pytest.raises(ConflictError):
        store.append_items(USER, "s1", [msg("blocked")])

    assert texts(store, "s1") == []


def test_a_window_whose_turn_is_too_long_to_reach_never_starts_mid_turn(
    make_store: Callable[..., ChatStore], monkeypatch: pytest.MonkeyPatch
) -> None:
    from chat_sessions.store import window

    monkeypatch.setattr(window, "MAX_WINDOW_ROWS", 32)
    store = make_store()
    tool = {"type": "function_call_output", "call_id": "c", "output": "x"}
    store.append_items(USER, "s1", [msg("q"), *[tool] * 90], create_missing=True)
    scanned: list[int] = []
    store.client.meta.events.register(
        "after-call.dynamodb.Query", lambda parsed, **_: scanned.append(parsed["ScannedCount"])
    )

    _, found = store.read_window(USER, "s1", turns=2)

    assert found == []  # no user message within reach: no window rather than half a turn
    assert max(scanned) <= 32 + 1  # the header and at most the cap
    store.append_items(USER, "s1", [msg("next")])
    assert [m.item for m in store.read_window(USER, "s1", turns=2)[1]] == [msg("next")]
