"""Idempotency-Key records: written in the append's (or turn commit's) own transaction, so a retry
with the same key and request writes nothing, on moto and on DynamoDB Local."""

from __future__ import annotations

import base64
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from agents import Agent, function_tool
from agents.testing import ScriptedModel, assistant_message, function_call

from chat_sessions import ChatStore, SessionNotFoundError
from chat_sessions.errors import IdempotencyKeyReusedError, InvalidIdempotencyKeyError
from chat_sessions.idempotency import (
    IDEMPOTENCY_TTL_SECONDS,
    IdempotencyRecord,
    IdempotentRequest,
    check_idempotency_key,
    derived_session_id,
    request_hash,
)
from chat_sessions.keys import idempotency_sk, partition_key
from chat_sessions.models import check_session_id
from chat_sessions.schemas import MessagesAppend
from chat_sessions.turns import run_turn
from support import FakeClock, rows_of

USER = "user-i"
LONG_TTL = 7 * 86_400  # sessions outlive a key's 24 h in these tests


def msg(text: str) -> dict[str, Any]:
    return {"role": "user", "content": text}


def record(key: str = "key-1", request: str = "hash-a", response: str = '{"ok":1}') -> Any:
    return IdempotencyRecord(key, request, response, 201)


def kinds(client: Any, table_name: str, session_id: str) -> dict[str, int]:
    """How many rows of each kind the session's partition holds (what a console scan shows)."""
    counts: dict[str, int] = {}
    for row in rows_of(client, table_name, partition_key(USER, session_id)):
        kind = row["sk"]["S"].split("#")[0]
        counts[kind] = counts.get(kind, 0) + 1
    return counts


@pytest.fixture
def store(make_store: Callable[..., ChatStore]) -> ChatStore:
    store = make_store(session_ttl_seconds=LONG_TTL)
    store.create_session(USER, "s1")
    return store


def test_a_retry_returns_the_first_result_and_writes_nothing(
    store: ChatStore, dynamodb_client: Any, table_name: str
) -> None:
    batch = [msg("a"), msg("b"), msg("c")]

    first = store.append_items(USER, "s1", batch, idempotency=record())
    header_after_first = store.get_session(USER, "s1")
    retry = store.append_items(USER, "s1", batch, idempotency=record())

    assert first.replay is None
    assert retry.replay is not None
    assert (retry.appended, retry.first_seq, retry.last_seq) == (3, first.first_seq, first.last_seq)
    assert (retry.replay.status, retry.replay.body) == (201, '{"ok":1}')
    assert kinds(dynamodb_client, table_name, "s1") == {"SESSION": 1, "MSG": 3, "IDEMP": 1}
    session, stored = store.read_newest(USER, "s1", None)
    assert [m.item for m in stored] == batch
    assert session.message_count == 3
    assert session.updated_at == header_after_first.updated_at  # not even the header was touched


def test_the_record_is_in_the_session_partition_with_its_batch_seq(
    store: ChatStore, dynamodb_client: Any, table_name: str, clock: FakeClock
) -> None:
    result = store.append_items(USER, "s1", [msg("a"), msg("b")], idempotency=record("k/1"))

    (row,) = [
        r
        for r in rows_of(dynamodb_client, table_name, partition_key(USER, "s1"))
        if r["sk"]["S"].startswith("IDEMP#")
    ]
    assert row["sk"]["S"] == idempotency_sk("k/1") == "IDEMP#k/1"
    assert int(row["seq"]["N"]) == result.last_seq  # bounds what a cascade of the session deletes
    assert int(row["first_seq"]["N"]) == result.first_seq
    assert row["request_hash"]["S"] == "hash-a"
    assert 0 < int(row["expires_at"]["N"]) - clock() <= IDEMPOTENCY_TTL_SECONDS
    # Message reads never see it: 'IDEMP#' sorts below 'MSG#'.
    assert len(store.read_newest(USER, "s1", None)[1]) == 2
    assert len(store.list_messages(USER, "s1", order="desc").messages) == 2
    store.pop_item(USER, "s1")
    store.pop_item(USER, "s1")
    assert store.pop_item(USER, "s1") is None


def test_the_same_key_for_another_request_is_refused_and_writes_nothing(
    store: ChatStore, dynamodb_client: Any, table_name: str
) -> None:
    store.append_items(USER, "s1", [msg("a")], idempotency=record(request="hash-a"))
    before = store.get_session(USER, "s1")

    with pytest.raises(IdempotencyKeyReusedError):
        store.append_items(USER, "s1", [msg("other")], idempotency=record(request="hash-b"))
    with pytest.raises(IdempotencyKeyReusedError):
        store.find_replay(USER, "s1", "key-1", "hash-b")

    after, stored = store.read_newest(USER, "s1", None)
    assert [m.item for m in stored] == [msg("a")]
    assert (after.last_seq, after.updated_at) == (before.last_seq, before.updated_at)
    assert kinds(dynamodb_client, table_name, "s1") == {"SESSION": 1, "MSG": 1, "IDEMP": 1}


def test_an_expired_record_counts_as_new(
    store: ChatStore, dynamodb_client: Any, table_name: str, clock: FakeClock
) -> None:
    first = store.append_items(USER, "s1", [msg("a")], idempotency=record())
    assert store.find_replay(USER, "s1", "key-1", "hash-a") is not None

    clock.advance(IDEMPOTENCY_TTL_SECONDS)  # DynamoDB's TTL has not removed the record yet
    assert store.find_replay(USER, "s1", "key-1", "hash-a") is None
    again = store.append_items(USER, "s1", [msg("a")], idempotency=record())

    assert again.replay is None and again.first_seq > first.last_seq
    assert [m.item for m in store.read_newest(USER, "s1", None)[1]] == [msg("a"), msg("a")]
    assert kinds(dynamodb_client, table_name, "s1") == {"SESSION": 1, "MSG": 2, "IDEMP": 1}
    replay = store.append_items(USER, "s1", [msg("a")], idempotency=record())
    assert replay.replay is not None and replay.first_seq == again.first_seq  # the new record


def test_a_large_response_is_stored_compressed(
    store: ChatStore, dynamodb_client: Any, table_name: str
) -> None:
    answer = '{"text": "' + "a long answer " * 2000 + '"}'

    store.append_items(USER, "s1", [msg("a")], idempotency=record(response=answer))
    replay = store.append_items(USER, "s1", [msg("a")], idempotency=record(response=answer))

    assert replay.replay is not None and replay.replay.body == answer
    (row,) = [
        r
        for r in rows_of(dynamodb_client, table_name, partition_key(USER, "s1"))
        if r["sk"]["S"].startswith("IDEMP#")
    ]
    assert "response" not in row and len(row["response_z"]["B"]) < len(answer) // 10


def test_keys_are_per_session_and_per_user(store: ChatStore) -> None:
    store.create_session(USER, "s2")
    store.create_session("someone-else", "s1")

    results = [
        store.append_items(user, session, [msg("a")], idempotency=record())
        for user, session in ((USER, "s1"), (USER, "s2"), ("someone-else", "s1"))
    ]

    assert [r.replay for r in results] == [None, None, None]


def test_a_missing_session_is_404_even_with_a_recorded_key(store: ChatStore) -> None:
    store.append_items(USER, "s1", [msg("a")], idempotency=record())
    store.delete_session(USER, "s1")

    with pytest.raises(SessionNotFoundError):
        store.append_items(USER, "s1", [msg("a")], idempotency=record())


@pytest.mark.parametrize("body", ["hash-a", "hash-b"])
def test_a_re_created_session_does_not_inherit_the_deleted_ones_keys(
    store: ChatStore, clock: FakeClock, body: str
) -> None:
    store.append_items(USER, "s1", [msg("old")], idempotency=record())
    store.delete_session(USER, "s1")  # its cascade has not run yet: the record is still there
    clock.advance(1)
    store.create_session(USER, "s1")

    result = store.append_items(USER, "s1", [msg("new")], idempotency=record(request=body))

    assert result.replay is None
    assert [m.item["content"] for m in store.read_newest(USER, "s1", None)[1]] == ["new"]
    retried = store.append_items(USER, "s1", [msg("new")], idempotency=record(request=body))
    assert retried.replay is not None  # the new session's own record now counts


@pytest.mark.parametrize("body", ["hash-a", "hash-b"])
def test_a_cleared_history_never_replays(
    store: ChatStore, dynamodb_client: Any, table_name: str, body: str
) -> None:
    store.append_items(USER, "s1", [msg("old")], idempotency=record())
    store.append_items(USER, "s1", [msg("other")], idempotency=record(key="key-2"))
    store.clear_items(USER, "s1")

    result = store.append_items(USER, "s1", [msg("new")], idempotency=record(request=body))

    assert result.replay is None  # neither the cleared reply nor a "key reused" refusal
    assert [m.item["content"] for m in store.read_newest(USER, "s1", None)[1]] == ["new"]
    assert store.append_items(USER, "s1", [msg("new")], idempotency=record(request=body)).replay
    store.purge_trimmed(partition_key(USER, "s1"))  # the clear's cascade (then it drops TRIM#)
    left = {"IDEMP": 1, "MSG": 1, "SESSION": 1, "TRIM": 1}  # key-1's new record; key-2's is gone
    assert kinds(dynamodb_client, table_name, "s1") == left


def test_the_clears_purge_keeps_a_record_the_key_wrote_meanwhile(
    store: ChatStore, make_store: Callable[..., ChatStore]
) -> None:
    store.append_items(USER, "s1", [msg("old")], idempotency=record())
    store.clear_items(USER, "s1")
    other = make_store(session_ttl_seconds=LONG_TTL)

    def reuse_the_key(**_: Any) -> None:  # between the purge's Query and its delete
        other.append_items(USER, "s1", [msg("new")], idempotency=record())

    store.client.meta.events.register("before-call.dynamodb.DeleteItem", reuse_the_key)
    store.purge_trimmed(partition_key(USER, "s1"))

    retried = other.append_items(USER, "s1", [msg("new")], idempotency=record())
    assert retried.replay is not None  # the fresh record survived the purge
    assert [m.item["content"] for m in store.read_newest(USER, "s1", None)[1]] == ["new"]


def test_an_expired_and_re_created_session_never_replays(
    make_store: Callable[..., ChatStore], clock: FakeClock
) -> None:
    store = make_store()  # the suite's short TTL
    store.append_items(USER, "s2", [msg("old")], create_missing=True, idempotency=record())
    clock.advance(store.session_ttl_seconds + 1)  # expired; TTL has not removed anything yet

    result = store.append_items(USER, "s2", [msg("new")], create_missing=True, idempotency=record())

    assert result.replay is None
    assert [m.item["content"] for m in store.read_newest(USER, "s2", None)[1]] == ["new"]


@pytest.mark.parametrize("create_missing", [False, True], ids=["api-append", "sdk-append"])
def test_a_header_from_before_history_start_keeps_its_records(
    store: ChatStore, dynamodb_client: Any, table_name: str, create_missing: bool
) -> None:
    first = store.append_items(USER, "s1", [msg("a")], idempotency=record())
    dynamodb_client.update_item(  # a header written before the attribute existed
        TableName=table_name,
        Key={"pk": {"S": partition_key(USER, "s1")}, "sk": {"S": "SESSION"}},
        UpdateExpression="REMOVE history_start",
    )
    # A later append does not start a new history (an SDK append stamps the header's creation).
    store.append_items(USER, "s1", [msg("b")], create_missing=create_missing)

    again = store.append_items(USER, "s1", [msg("a")], idempotency=record())

    assert again.replay is not None and again.first_seq == first.first_seq
    assert [m.item["content"] for m in store.read_newest(USER, "s1", None)[1]] == ["a", "b"]


async def test_a_turn_in_a_re_created_session_runs_despite_an_old_record(
    store: ChatStore, clock: FakeClock
) -> None:
    agent = Agent(name="assistant", model=ScriptedModel([[assistant_message("one")]] * 2))
    await run_turn(store, agent, USER, "s1", "hi", _ignore, idempotency=keyed("hi"))
    store.delete_session(USER, "s1")
    clock.advance(1)
    store.create_session(USER, "s1")

    again = await run_turn(store, agent, USER, "s1", "hi", _ignore, idempotency=keyed("hi"))

    assert again.replayed is False
    assert len(store.read_newest(USER, "s1", None)[1]) == 2


def test_a_batch_that_its_record_pushes_past_one_transaction_is_staged(store: ChatStore) -> None:
    store.append_items(USER, "s1", [msg(f"m{i}") for i in range(98)])  # 98 + header + marker
    calls: list[str] = []
    store.client.meta.events.register(
        "before-call.dynamodb", lambda model, **_: calls.append(model.name)
    )

    first = store.append_items(USER, "s1", [msg(f"m{i}") for i in range(98)], idempotency=record())
    again = store.append_items(USER, "s1", [msg(f"m{i}") for i in range(98)], idempotency=record())

    # The header and the key's record (is it a retry?), then the reservation of a staged batch.
    assert calls[:3] == ["GetItem", "GetItem", "UpdateItem"]
    assert first.replay is None and again.replay is not None
    assert len(store.read_newest(USER, "s1", None)[1]) == 196


# --------------------------------------------------------------------------- request identity


def test_the_request_hash_ignores_spelling_but_not_content() -> None:
    route = "POST /v1/sessions/{session_id}/messages"
    one = MessagesAppend.model_validate_json('{"items": [{"role": "user", "content": "hi"}]}')
    same = MessagesAppend.model_validate_json('{ "items":[ {"content":"hi",  "role":"user"} ] }')
    other = MessagesAppend.model_validate_json('{"items": [{"role": "user", "content": "hi!"}]}')

    assert request_hash(route, "s1", one) == request_hash(route, "s1", same)
    assert request_hash(route, "s1", one) != request_hash(route, "s1", other)
    assert request_hash(route, "s1", one) != request_hash(route, "s2", one)
    assert request_hash(route, "s1", one) != request_hash("POST /v1/chat", "s1", one)


@pytest.mark.parametrize("key", ["a", "~" * 255, "0f8e-4c1b:retry/1", "!#$%&'()*+,-./"])
def test_keys_of_visible_ascii_are_accepted(key: str) -> None:
    assert check_idempotency_key(key) == key


@pytest.mark.parametrize("key", ["", "x" * 256, "has space", "tab\t", "naïve", "\x7f", None])
def test_other_keys_are_refused(key: Any) -> None:
    with pytest.raises(InvalidIdempotencyKeyError):
        check_idempotency_key(key)


def test_a_new_chats_session_id_is_derived_from_its_key() -> None:
    derived = derived_session_id("key-1")

    assert derived == derived_session_id("key-1") != derived_session_id("key-2")
    assert check_session_id(derived) == derived and len(derived) == 32
    assert check_session_id(derived_session_id("~" * 255))


# -------------------------------------------------------------------------------- chat turns


@function_tool
def get_photo(name: str) -> str:
    """A photo, base64 (incompressible)."""
    return base64.b64encode(os.urandom(400_000)).decode()


def keyed(message: str, key: str = "turn-key") -> IdempotentRequest:
    return IdempotentRequest(key, f"hash-of-{message}")


async def _ignore(name: str, data: dict[str, Any]) -> None:
    return None


async def test_a_retried_turn_is_replayed_without_the_model(store: ChatStore) -> None:
    model = ScriptedModel([[assistant_message("Hello, Ada.")]])
    agent = Agent(name="assistant", model=model)

    first = await run_turn(store, agent, USER, "s1", "hi", _ignore, idempotency=keyed("hi"))
    retry = await run_turn(store, agent, USER, "s1", "hi", _ignore, idempotency=keyed("hi"))

    assert len(model.calls) == 1
    assert (first.replayed, retry.replayed) == (False, True)
    assert (retry.output, retry.stored_items) == (first.output, first.stored_items)
    assert (retry.message_count, retry.title, retry.total_tokens) == (
        first.message_count,
        first.title,
        first.total_tokens,
    )
    assert len(store.read_newest(USER, "s1", None)[1]) == 2
    store.begin_turn(USER, "s1", "probe", lease_seconds=60)  # the replay released its lease
    store.end_turn(USER, "s1", "probe")


async def test_a_turn_with_a_key_used_for_another_message_is_refused(store: ChatStore) -> None:
    model = ScriptedModel([[assistant_message("Hello, Ada.")]])
    agent = Agent(name="assistant", model=model)
    await run_turn(store, agent, USER, "s1", "hi", _ignore, idempotency=keyed("hi"))

    with pytest.raises(IdempotencyKeyReusedError):
        await run_turn(store, agent, USER, "s1", "bye", _ignore, idempotency=keyed("bye"))

    assert len(model.calls) == 1
    assert len(store.read_newest(USER, "s1", None)[1]) == 2
    store.begin_turn(USER, "s1", "probe", lease_seconds=60)  # the refusal released its lease


async def test_a_turn_too_large_for_its_record_is_replayed_from_the_history(
    store: ChatStore, dynamodb_client: Any, table_name: str
) -> None:
    model = ScriptedModel([
        [function_call("get_photo", {"name": "Alfama"}, call_id="call_1")],
        [assistant_message("Here it is.")],
    ])  # fmt: skip
    agent = Agent(name="assistant", model=model, tools=[get_photo])

    first = await run_turn(store, agent, USER, "s1", "photo", _ignore, idempotency=keyed("photo"))
    retry = await run_turn(store, agent, USER, "s1", "photo", _ignore, idempotency=keyed("photo"))

    assert retry.replayed and retry.stored_items == first.stored_items
    assert len(model.calls) == 2  # the two steps of the first turn only
    (row,) = [
        r
        for r in rows_of(dynamodb_client, table_name, partition_key(USER, "s1"))
        if r["sk"]["S"].startswith("IDEMP#")
    ]
    assert len(row["response"]["S"]) < 1024  # the 530 KB photo stayed in its message row


# ------------------------------------------------------------------------------- concurrency
real_server_only = pytest.mark.usefixtures("_real_server_only")


@pytest.fixture
def _real_server_only(backend: str) -> None:
    if backend == "moto":
        pytest.skip("moto is not thread-safe; concurrency is tested against DynamoDB Local")


@real_server_only
def test_concurrent_retries_write_once(
    make_store: Callable[..., ChatStore], dynamodb_client: Any, table_name: str
) -> None:
    make_store().create_session(USER, "busy")
    retries, plain_writers = 8, 2
    start = threading.Barrier(retries + plain_writers)
    batch = [msg("once-a"), msg("once-b")]

    def retry(_: int) -> Any:
        own = make_store()  # own object and client, like a separate Lambda invocation
        start.wait()
        return own.append_items(USER, "busy", batch, idempotency=record("same-key"))

    def plain(writer: int) -> None:
        own = make_store()
        start.wait()
        for n in range(5):
            own.append_items(USER, "busy", [msg(f"w{writer}-{n}")])

    with ThreadPoolExecutor(retries + plain_writers) as pool:
        plain_done = [pool.submit(plain, w) for w in range(plain_writers)]
        results = list(pool.map(retry, range(retries)))
        for future in plain_done:
            future.result()

    assert sum(r.replay is None for r in results) == 1  # exactly one wrote
    assert len({(r.first_seq, r.last_seq) for r in results}) == 1  # all got the same batch
    assert {r.replay.body for r in results if r.replay is not None} == {'{"ok":1}'}
    session, stored = make_store().read_newest(USER, "busy", None)
    texts = [m.item["content"] for m in stored]
    assert texts.count("once-a") == texts.count("once-b") == 1
    assert session.message_count == len(stored) == 2 + plain_writers * 5
    assert kinds(dynamodb_client, table_name, "busy")["IDEMP"] == 1


@real_server_only
def test_concurrent_retries_at_the_same_instant_write_once(
    make_store: Callable[..., ChatStore],
) -> None:
    instant = time.time()
    frozen = make_store(clock=lambda: instant)
    frozen.create_session(USER, "busy")
    start = threading.Barrier(6)

    def retry(_: int) -> Any:
        own = make_store(clock=lambda: instant)  # every writer reads the same instant
        start.wait()
        return own.append_items(USER, "busy", [msg("once")], idempotency=record("k"))

    with ThreadPoolExecutor(6) as pool:
        results = list(pool.map(retry, range(6)))

    assert sum(r.replay is None for r in results) == 1
    assert len({r.first_seq for r in results}) == 1
    assert [m.item for m in frozen.read_newest(USER, "busy", None)[1]] == [msg("once")]
