"""The cascade: deletes, expiry and clears physically remove a session's rows (moto and DynamoDB
Local). Stream records are real ones read from the backend's stream, or the sample events, and
always go through the cascade handler resolved from template.yaml."""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Callable
from typing import Any, cast

import pytest
from handlers import EVENTS, stream_event_files
from moto.events.models import EventPattern

from chat_sessions import ChatStore
from chat_sessions.errors import DeletionIncompleteError, DeletionNotFoundError
from chat_sessions.idempotency import IdempotencyRecord
from chat_sessions.keys import deletion_sk, partition_key, user_partition_key
from chat_sessions.store import deletion as deletion_store
from chat_sessions_local.seed import SAMPLE_DELETION_ID
from chat_sessions_local.streams import (
    TTL_IDENTITY,
    LocalCascade,
    StreamReader,
    as_aws_ttl_record,
    cascade_filters,
    passes,
)
from support import FakeClock, rows_of

pytestmark = pytest.mark.stream

USER = "user-123"
SESSION = "trip-2026"
PK = partition_key(USER, SESSION)
SAMPLE_START = 1_795_000_000.0
"""The sample events describe trip-2026 as seeded from this time (``seed_sample_session``)."""
SAMPLE_LAST_SEQ = 1_795_000_000_050_000


def message(text: str, role: str = "user") -> dict[str, Any]:
    return {"role": role, "content": text}


def noise(size: int) -> str:
    """Text that does not compress: stored in several CHUNK# rows when large."""
    return base64.b64encode(os.urandom(size))[:size].decode()


def seed_sample_session(make_store: Callable[..., ChatStore]) -> tuple[ChatStore, FakeClock]:
    """trip-2026 as the sample events describe it: 3 messages, one of them chunked."""
    clock = FakeClock(SAMPLE_START)
    # Its header must not expire by the real clock: DynamoDB Local would remove it meanwhile.
    store = make_store(clock=clock, session_ttl_seconds=100 * 365 * 86_400)
    store.create_session(USER, SESSION, title="Lisbon trip", metadata={"topic": "travel"})
    result = store.append_items(
        USER,
        SESSION,
        [
            message("Find hotels in Lisbon"),
            message(noise(700_000), "assistant"),
            message("Quieter?"),
        ],
    )
    assert result.last_seq <= SAMPLE_LAST_SEQ  # the sample events' old image covers them all
    return store, clock


def sample(name: str) -> dict[str, Any]:
    return dict(json.loads((EVENTS / name).read_text()))


def scan_session(client: Any, table_name: str, pk: str = PK) -> list[dict[str, Any]]:
    """Every item of the table that belongs to ``pk`` (a full scan, as the acceptance asks)."""
    items: list[dict[str, Any]] = []
    request: dict[str, Any] = {"TableName": table_name, "ConsistentRead": True}
    while True:
        response = client.scan(**request)
        items += [i for i in response["Items"] if i["pk"]["S"] == pk]
        if "LastEvaluatedKey" not in response:
            return items
        request["ExclusiveStartKey"] = response["LastEvaluatedKey"]


def metrics_of(output: str) -> dict[str, float]:
    """The metrics the handler published (CloudWatch embedded metric format, one JSON a line)."""
    published: dict[str, float] = {}
    for line in output.splitlines():
        if '"_aws"' in line:
            blob = json.loads(line)
            for definition in blob["_aws"]["CloudWatchMetrics"][0]["Metrics"]:
                name = definition["Name"]
                value = blob[name]
                published[name] = sum(value) if isinstance(value, list) else value
    return published


def kinds(rows: list[dict[str, Any]]) -> list[str]:
    return sorted(row["sk"]["S"].split("#")[0] for row in rows)


# ------------------------------------------------------------------------------ sample events


STREAM_EXPECTED = {
    "cascade__ttl_expiry.json",
    "cascade__deleted.json",
    "cascade__cleared.json",
    "cascade__delete_all.json",
}


def test_every_stream_sample_is_tested_and_passes_the_filters() -> None:
    assert set(stream_event_files()) == STREAM_EXPECTED
    for name in STREAM_EXPECTED:
        (record,) = sample(name)["Records"]
        assert passes(record), name


def test_ttl_expiry_record_cascades(
    make_store: Callable[..., ChatStore],
    cascade: Any,
    dynamodb_client: Any,
    table_name: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    _, clock = seed_sample_session(make_store)
    # What TTL does: the header's expires_at lies in the past, and DynamoDB deletes the item.
    clock.advance(3700)
    dynamodb_client.update_item(
        TableName=table_name,
        Key={"pk": {"S": PK}, "sk": {"S": "SESSION"}},
        UpdateExpression="SET expires_at = :past",
        ExpressionAttributeValues={":past": {"N": str(int(clock()) - 100)}},
    )
    dynamodb_client.delete_item(TableName=table_name, Key={"pk": {"S": PK}, "sk": {"S": "SESSION"}})
    assert set(kinds(scan_session(dynamodb_client, table_name))) == {"CHUNK", "MSG"}

    response = cascade(sample("cascade__ttl_expiry.json"))

    assert response == {"batchItemFailures": []}
    assert scan_session(dynamodb_client, table_name) == []
    assert metrics_of(capsys.readouterr().out) == {"SessionsExpired": 1, "RowsPurged": 5}


def test_delete_record_cascades_and_a_replay_deletes_nothing_extra(
    make_store: Callable[..., ChatStore],
    cascade: Any,
    dynamodb_client: Any,
    table_name: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    store, clock = seed_sample_session(make_store)
    assert store.delete_session(USER, SESSION) is True
    clock.advance(600)

    assert cascade(sample("cascade__deleted.json")) == {"batchItemFailures": []}
    assert scan_session(dynamodb_client, table_name) == []
    assert metrics_of(capsys.readouterr().out)["SessionsDeleted"] == 1

    # Re-created with the same id, then the old delete's batch arrives again (Lambda retries).
    store.create_session(USER, SESSION)
    store.append_items(USER, SESSION, [message("a new beginning")])
    before = scan_session(dynamodb_client, table_name)
    assert cascade(sample("cascade__deleted.json")) == {"batchItemFailures": []}
    assert scan_session(dynamodb_client, table_name) == before
    _, messages = store.read_newest(USER, SESSION, None)
    assert [m.item["content"] for m in messages] == ["a new beginning"]


def test_late_cascade_spares_a_recreated_sessions_messages(
    make_store: Callable[..., ChatStore], cascade: Any, dynamodb_client: Any, table_name: str
) -> None:
    store, clock = seed_sample_session(make_store)
    store.delete_session(USER, SESSION)
    clock.advance(600)
    store.create_session(USER, SESSION, title="Second try")
    store.append_items(USER, SESSION, [message("new 1"), message("new 2", "assistant")])

    cascade(sample("cascade__deleted.json"))  # the old session's cascade, after the re-creation

    assert kinds(scan_session(dynamodb_client, table_name)) == ["MSG", "MSG", "SESSION"]
    session, messages = store.read_newest(USER, SESSION, None)
    assert (session.title, [m.item["content"] for m in messages]) == (
        "Second try",
        ["new 1", "new 2"],
    )


def test_cleared_record_purges_below_the_window(
    make_store: Callable[..., ChatStore], cascade: Any, dynamodb_client: Any, table_name: str
) -> None:
    store, _ = seed_sample_session(make_store)
    store.clear_items(USER, SESSION)
    store.append_items(USER, SESSION, [message("after the clear")])

    assert cascade(sample("cascade__cleared.json")) == {"batchItemFailures": []}

    rows = scan_session(dynamodb_client, table_name)
    # The header, the message sent after the clear, and the clear's own marker (its record is a
    # different one; the stream tests below deliver it).
    assert kinds(rows) == ["MSG", "SESSION", "TRIM"]
    _, messages = store.read_newest(USER, SESSION, None)
    assert [m.item["content"] for m in messages] == ["after the clear"]


def test_a_poison_record_fails_alone(
    make_store: Callable[..., ChatStore], cascade: Any, dynamodb_client: Any, table_name: str
) -> None:
    seed_sample_session(make_store)
    dynamodb_client.delete_item(TableName=table_name, Key={"pk": {"S": PK}, "sk": {"S": "SESSION"}})
    (good,) = sample("cascade__ttl_expiry.json")["Records"]
    poison = json.loads(json.dumps(good))
    poison["dynamodb"]["SequenceNumber"] = "4100000000000000000000"
    del poison["dynamodb"]["OldImage"]  # e.g. a stream switched to KEYS_ONLY

    response = cascade({"Records": [poison, good]})

    assert response == {"batchItemFailures": [{"itemIdentifier": "4100000000000000000000"}]}
    assert scan_session(dynamodb_client, table_name) == []  # the good record was applied


# ------------------------------------------------------------------ real records from the stream


def test_dynamodb_local_ttl_records_are_reshaped_as_aws_sends_them() -> None:
    # As DynamoDB Local 11.1.0 emitted it for an expired header (values shortened).
    local = {
        "eventID": "d3d302a5-5e52-4d6a-b53d-a5bca20a0bc7",
        "eventName": "UNKNOWN_TO_SDK_VERSION",
        "dynamodb": {
            "Keys": {"updated_at": {"S": "2026-11-18T11:06:40Z"}, "user_id": {"S": "u"}}
            | {"sk": {"S": "SESSION"}, "pk": {"S": "u#s1"}},
            "OldImage": {"pk": {"S": "u#s1"}, "sk": {"S": "SESSION"}, "last_seq": {"N": "7"}},
            "SequenceNumber": "000000000000000000004",
            "StreamViewType": "OLD_IMAGE",
        },
    }

    reshaped = as_aws_ttl_record(local)

    assert reshaped["eventName"] == "REMOVE"
    assert reshaped["dynamodb"]["Keys"] == {"pk": {"S": "u#s1"}, "sk": {"S": "SESSION"}}
    assert (
        reshaped["userIdentity"] == sample("cascade__ttl_expiry.json")["Records"][0]["userIdentity"]
    )
    assert passes(reshaped)
    insert = {"eventName": "INSERT", "dynamodb": {"Keys": {"pk": {"S": "u#s1"}}}}
    assert as_aws_ttl_record(insert) is insert


def test_filters_pass_only_removed_headers_and_new_trim_markers(
    store: ChatStore, dynamodb_client: Any, table_name: str
) -> None:
    store.create_session(USER, SESSION)
    store.append_items(USER, SESSION, [message("hi"), message("hello", "assistant")])
    store.update_session(USER, SESSION, title="Greetings")
    store.pop_item(USER, SESSION)
    store.clear_items(USER, SESSION)
    store.delete_session(USER, SESSION)

    records = StreamReader(dynamodb_client, table_name).read()
    passed = [
        (r["eventName"], r["dynamodb"]["Keys"]["sk"]["S"].split("#")[0])
        for r in records
        if passes(r)
    ]

    assert len(records) > len(passed)
    assert sorted(passed) == [("INSERT", "TRIM"), ("REMOVE", "SESSION")]
    # The local matcher agrees with moto's implementation of the same pattern language.
    reference = [EventPattern.load(json.dumps(p)) for p in cascade_filters()]
    for record in records:
        assert passes(record) == any(p.matches_event(cast("Any", record)) for p in reference)


def test_delete_cascades_through_the_stream(
    store: ChatStore, local_cascade: LocalCascade, dynamodb_client: Any, table_name: str
) -> None:
    store.create_session(USER, SESSION)
    for turn in range(10):
        store.append_items(
            USER, SESSION, [message(f"q{turn}"), message(noise(400_000), "assistant")]
        )
    calls: list[str] = []
    store.client.meta.events.register(
        "before-call.dynamodb", lambda model, **_: calls.append(model.name)
    )

    assert store.delete_session(USER, SESSION) is True

    assert calls == ["TransactWriteItems"]  # one round trip, whatever the history
    assert local_cascade.run_once() == 1
    assert scan_session(dynamodb_client, table_name) == []


def test_clear_cascades_through_the_stream_and_removes_its_marker(
    store: ChatStore, local_cascade: LocalCascade, dynamodb_client: Any, table_name: str
) -> None:
    store.create_session(USER, SESSION)
    store.append_items(USER, SESSION, [message(str(i)) for i in range(30)])
    store.clear_items(USER, SESSION)
    store.append_items(USER, SESSION, [message("kept")])

    assert local_cascade.run_once() == 1

    assert kinds(scan_session(dynamodb_client, table_name)) == ["MSG", "SESSION"]
    assert store.get_session(USER, SESSION).message_count == 1
    assert local_cascade.run_once() == 0  # the marker's own removal does not come back


def test_expired_session_is_swept_and_cascades(
    store: ChatStore,
    local_cascade: LocalCascade,
    clock: FakeClock,
    dynamodb_client: Any,
    table_name: str,
) -> None:
    store.create_session(USER, SESSION, ttl_seconds=120)
    store.append_items(USER, SESSION, [message("short-lived")])
    store.create_session(USER, "long-lived")
    store.append_items(USER, "long-lived", [message("stays")])
    clock.advance(121)
    delivered: list[dict[str, Any]] = []
    real_handler = local_cascade._handler

    def spy(event: dict[str, Any], context: Any) -> dict[str, Any]:
        delivered.extend(event["Records"])
        return real_handler(event, context)

    local_cascade._handler = spy

    assert local_cascade.sweep() == 1
    local_cascade.run_once()

    assert [r.get("userIdentity") for r in delivered] == [TTL_IDENTITY]  # as TTL's deletes

    assert scan_session(dynamodb_client, table_name) == []
    assert len(scan_session(dynamodb_client, table_name, partition_key(USER, "long-lived"))) == 2


def test_replacing_an_expired_session_purges_what_it_left(
    store: ChatStore,
    local_cascade: LocalCascade,
    clock: FakeClock,
    dynamodb_client: Any,
    table_name: str,
) -> None:
    store.create_session(USER, SESSION)
    store.append_items(USER, SESSION, [message("old")])
    clock.advance(store.session_ttl_seconds + 1)  # expired, and TTL has not removed it yet
    store.append_items(USER, SESSION, [message("new")], create_missing=True)

    local_cascade.run_once()

    assert kinds(scan_session(dynamodb_client, table_name)) == ["MSG", "SESSION"]
    _, messages = store.read_newest(USER, SESSION, None)
    assert [m.item["content"] for m in messages] == ["new"]


def test_cascade_removes_a_deleted_sessions_rows_of_every_kind(
    store: ChatStore, dynamodb_client: Any, table_name: str, cascade: Any
) -> None:
    store.create_session(USER, SESSION)
    store.append_items(USER, SESSION, [message(noise(900_000))])
    store.append_items(
        USER, SESSION, [message("keyed")], idempotency=IdempotencyRecord("k", "h", "{}", 201)
    )
    assert set(kinds(rows_of(dynamodb_client, table_name, PK))) == {"CHUNK", "IDEMP", "MSG"} | {
        "SESSION"
    }
    reader = StreamReader(dynamodb_client, table_name)
    reader.read()  # skip the writes above
    store.delete_session(USER, SESSION)
    records = [r for r in reader.read() if passes(r)]

    assert cascade({"Records": records}) == {"batchItemFailures": []}
    assert cascade({"Records": records}) == {"batchItemFailures": []}  # replayed
    assert rows_of(dynamodb_client, table_name, PK) == []


# ------------------------------------------------------------------------ delete everything


def test_delete_all_record_deletes_what_the_user_had_when_asking(
    make_store: Callable[..., ChatStore],
    cascade: Any,
    local_cascade: LocalCascade,
    dynamodb_client: Any,
    table_name: str,
) -> None:
    store, clock = seed_sample_session(make_store)
    store.create_session(USER, "second")
    store.create_session("user-456", "their-chat")
    clock.advance(60)
    store.request_deletion(USER, deletion_id=SAMPLE_DELETION_ID)
    clock.advance(60)
    store.create_session(USER, "after-the-request")

    assert cascade(sample("cascade__delete_all.json")) == {"batchItemFailures": []}
    local_cascade.run_once()  # the headers' REMOVE records cascade

    assert scan_session(dynamodb_client, table_name) == []
    assert scan_session(dynamodb_client, table_name, partition_key(USER, "second")) == []
    assert [s.session_id for s in store.list_sessions(USER).sessions] == ["after-the-request"]
    assert [s.session_id for s in store.list_sessions("user-456").sessions] == ["their-chat"]
    deletion = store.get_deletion(USER, SAMPLE_DELETION_ID)
    assert (deletion.status, deletion.sessions_deleted) == ("done", 2)
    assert deletion.completed_at is not None
    assert cascade(sample("cascade__delete_all.json")) == {"batchItemFailures": []}  # replayed
    assert store.get_deletion(USER, SAMPLE_DELETION_ID).sessions_deleted == 2


def test_delete_all_out_of_time_resumes_where_it_stopped(
    store: ChatStore, monkeypatch: pytest.MonkeyPatch, dynamodb_client: Any, table_name: str
) -> None:
    monkeypatch.setattr(deletion_store, "PAGE_SIZE", 4)
    for number in range(10):
        store.create_session(USER, f"s{number}")
    deletion = store.request_deletion(USER)
    pk, sk = user_partition_key(USER), deletion_sk(deletion.deletion_id)

    with pytest.raises(DeletionIncompleteError):
        store.run_deletion(pk, sk, budget_seconds=0)  # one page, then out of time
    assert store.get_deletion(USER, deletion.deletion_id).status == "running"
    rounds = 1
    while True:
        rounds += 1
        try:
            store.run_deletion(pk, sk, budget_seconds=0)
            break
        except DeletionIncompleteError:
            continue

    assert store.list_sessions(USER).sessions == []
    done = store.get_deletion(USER, deletion.deletion_id)
    assert (done.status, done.sessions_deleted, rounds) == ("done", 10, 3)


def test_a_deletion_is_only_its_owners(store: ChatStore) -> None:
    deletion = store.request_deletion(USER)
    with pytest.raises(DeletionNotFoundError):
        store.get_deletion("user-456", deletion.deletion_id)
    with pytest.raises(DeletionNotFoundError):
        store.get_deletion(USER, "not-an-id")


def test_a_batch_that_fails_whole_is_delivered_again(
    store: ChatStore, new_client: Callable[[], Any], table_name: str, cascade: Any
) -> None:
    attempts: list[int] = []

    def flaky(event: dict[str, Any], context: Any) -> dict[str, Any]:
        attempts.append(len(event["Records"]))
        if len(attempts) == 1:
            raise RuntimeError("DynamoDB was unreachable")  # what Powertools does if all fail
        return dict(cascade(event))

    local = LocalCascade(new_client(), table_name, handler=flaky)
    store.create_session(USER, SESSION)
    store.append_items(USER, SESSION, [message("bye")])
    store.delete_session(USER, SESSION)

    local.run_once()
    local.run_once()

    assert attempts == [1, 1]
    assert rows_of(new_client(), table_name, PK) == []


def test_a_delete_all_page_counts_only_the_headers_it_removed(
    store: ChatStore, dynamodb_client: Any, table_name: str
) -> None:
    """A rerun reading an index that still lists deleted headers (it is eventually consistent),
    or a user deleting a session meanwhile: those are not counted again."""
    for number in range(3):
        store.create_session(USER, f"s{number}")
    deletion = store.request_deletion(USER)
    pk, sk = user_partition_key(USER), deletion_sk(deletion.deletion_id)
    listed = scan_session(dynamodb_client, table_name, partition_key(USER, "s0"))
    listed += scan_session(dynamodb_client, table_name, partition_key(USER, "s1"))
    headers = [{"pk": row["pk"], "sk": row["sk"]} for row in listed if row["sk"]["S"] == "SESSION"]
    store.delete_session(USER, "s0")  # gone before the page is applied
    asked = {"S": deletion.requested_at.strftime("%Y-%m-%dT%H:%M:%S.%fZ")}
    key = {"pk": {"S": pk}, "sk": {"S": sk}}

    assert deletion_store._delete_page(store._ctx, key, headers, asked) == 1
    assert store.get_deletion(USER, deletion.deletion_id).sessions_deleted == 1
    assert deletion_store._delete_page(store._ctx, key, headers, asked) == 0  # replayed
    assert [s.session_id for s in store.list_sessions(USER).sessions] == ["s2"]
