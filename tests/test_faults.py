"""The store under injected DynamoDB faults (tests/faults.py), against DynamoDB Local only.

moto does not honour TransactWriteItems' ``ClientRequestToken`` (botocore fills it in and keeps it
across its own retries of one call); DynamoDB Local and AWS do, so a lost answer followed by
botocore's retry of the same transaction is applied once there. Everything else — the store's own
retry loops, single-item writes, whose retries are not idempotent — is what these tests check.

Each scripted test loses the answer of the first write a call sends (whichever operation the
store uses: ``WRITE``), or of one named step of a longer call (a staged append's reserve, one of
its transactions, a delete-all's progress write), which DynamoDB applied, then refuses the next
send of it (botocore's retry or the store's own: throttled, or a conflict), and asserts the one
outcome the caller should see, and that nothing is left behind.
"""

from __future__ import annotations

import math
import random
import sys
import threading
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError, ReadTimeoutError
from botocore.retries.standard import ExponentialBackoff
from faults import KINDS, WRITE, FaultInjector, Kind, everywhere

from chat_sessions import ChatSessionsError, ChatStore, UnavailableError, keys
from chat_sessions.idempotency import IdempotencyRecord
from chat_sessions.store import staging
from chat_sessions_local.dynamodb_local import DynamoDBLocal
from support import FakeClock

# chat_sessions.repository's at HEAD, chat_sessions.store's in the store refactor in progress.
TurnCommit: Any = vars(sys.modules[ChatStore.__module__])["TurnCommit"]

pytestmark = [
    pytest.mark.integration,
    pytest.mark.parametrize("backend", ["dynamodb_local"], indirect=True),
]

USER = "user-f"
LOST: tuple[Kind, ...] = ("lost", "lost_timeout")
REFUSED: tuple[tuple[Kind, ...], ...] = (
    ("throttle",),
    ("conflict",),
    ("throttle",) * 4,  # past botocore's own attempts: the store's resends must carry on
    ("server_error",) * 4,
)
"""What the retries of a write whose answer was lost meet."""
Faulty = Callable[..., tuple[ChatStore, FaultInjector]]


@pytest.fixture(autouse=True)
def _no_retry_sleep(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ExponentialBackoff, "delay_amount", lambda self, context: 0)


@pytest.fixture
def faulty(new_client: Callable[[], Any], make_store: Callable[..., ChatStore]) -> Faulty:
    """A store whose own client goes through a new injector (options: FaultInjector's)."""

    def make(**options: Any) -> tuple[ChatStore, FaultInjector]:
        client = new_client()
        injector = FaultInjector(client, **options)
        return make_store(client=client, sleep=lambda seconds: None), injector

    return make


@pytest.fixture
def clean(make_store: Callable[..., ChatStore]) -> ChatStore:
    """A store with a client of its own, no faults: what is really stored."""
    return make_store()


def msg(tag: str) -> dict[str, Any]:
    return {"role": "user", "content": tag}


def tags(store: ChatStore, session_id: str) -> list[str]:
    _, messages = store.read_newest(USER, session_id, None)
    return [str(message.item["content"]) for message in messages]


def with_session(store: ChatStore, *contents: str) -> str:
    store.create_session(USER, "s1")
    if contents:
        store.append_items(USER, "s1", [msg(tag) for tag in contents])
    return "s1"


def stored_rows(store: ChatStore, session_id: str) -> dict[str, dict[str, Any]]:
    """Every row of the session's partition as stored, by sort key (all pages; ``store``: one
    without faults)."""
    client: Any = store.client
    request: dict[str, Any] = {
        "TableName": store.table_name,
        "KeyConditionExpression": "pk = :pk",
        "ExpressionAttributeValues": {":pk": {"S": keys.partition_key(USER, session_id)}},
        "ConsistentRead": True,
    }
    found: dict[str, dict[str, Any]] = {}
    while True:
        page = client.query(**request)
        found.update((row["sk"]["S"], row) for row in page["Items"])
        if "LastEvaluatedKey" not in page:
            return found
        request["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def strays(store: ChatStore, session_id: str) -> list[str]:
    """The rows of a live session beyond its header and its visible messages (with their chunks):
    rows staged and never committed, or removed from the window and not deleted."""
    _, messages = store.read_newest(USER, session_id, None)
    visible = {message.seq for message in messages}
    return [
        sk
        for sk in stored_rows(store, session_id)
        if sk != keys.SESSION_SK
        and not (
            sk.startswith((keys.MESSAGE_PREFIX, keys.CHUNK_PREFIX))
            and int(sk.split("#")[1]) in visible
        )
    ]


def reservation(store: ChatStore, session_id: str) -> dict[str, Any]:
    """The staging attributes on the session's header (a staged batch's reservation), if any."""
    header = stored_rows(store, session_id).get(keys.SESSION_SK, {})
    return {name: value for name, value in header.items() if name.startswith("staging_")}


def nothing_left(store: ChatStore, session_id: str) -> None:
    assert strays(store, session_id) == []
    assert reservation(store, session_id) == {}


# ------------------------------------------------------------------------ the injector itself


def single_attempt_client(server: DynamoDBLocal) -> Any:
    """No retries: each call is exactly one send."""
    return boto3.client(
        "dynamodb",
        endpoint_url=server.endpoint_url,
        region_name="us-east-1",
        aws_access_key_id="local",
        aws_secret_access_key="local",
        config=Config(retries={"mode": "standard", "total_max_attempts": 1}),
    )


def put(client: Any, table: str, sk: str) -> None:
    client.put_item(TableName=table, Item={"pk": {"S": "probe"}, "sk": {"S": sk}})


def stored(client: Any, table: str, sk: str) -> dict[str, Any] | None:
    key = {"pk": {"S": "probe"}, "sk": {"S": sk}}
    item: dict[str, Any] | None = client.get_item(
        TableName=table, Key=key, ConsistentRead=True
    ).get("Item")
    return item


@pytest.mark.parametrize("kind", KINDS)
def test_only_lost_answers_are_applied(
    kind: Kind, dynamodb_local: DynamoDBLocal, new_client: Callable[[], Any], table_name: str
) -> None:
    client = single_attempt_client(dynamodb_local)
    injector = FaultInjector(client)
    injector.script("PutItem", kind)

    expected = ReadTimeoutError if kind == "lost_timeout" else ClientError
    with pytest.raises(expected) as raised:
        put(client, table_name, "x")

    applied = kind in ("lost", "lost_timeout")
    assert (stored(new_client(), table_name, "x") is not None) == applied
    if isinstance(raised.value, ClientError):
        code = raised.value.response["Error"]["Code"]
        wanted = {
            "throttle": {"ProvisionedThroughputExceededException", "ThrottlingException"},
            "server_error": {"InternalServerError"},
            "conflict": {"TransactionConflictException"},
            "lost": {"InternalServerError"},
        }[kind]
        assert code in wanted
    assert injector.log == [("PutItem", kind)]
    assert injector.injected == Counter({("PutItem", kind): 1})


@pytest.mark.parametrize("kind", KINDS)
def test_transaction_faults(
    kind: Kind, dynamodb_local: DynamoDBLocal, new_client: Callable[[], Any], table_name: str
) -> None:
    client = single_attempt_client(dynamodb_local)
    injector = FaultInjector(client, seed=3)
    injector.script("TransactWriteItems", kind)
    actions = [
        {"Put": {"TableName": table_name, "Item": {"pk": {"S": "probe"}, "sk": {"S": sk}}}}
        for sk in ("a", "b", "c")
    ]

    with pytest.raises(ReadTimeoutError if kind == "lost_timeout" else ClientError) as raised:
        client.transact_write_items(TransactItems=actions)

    applied = kind in ("lost", "lost_timeout")
    reader = new_client()
    assert [stored(reader, table_name, sk) is not None for sk in "abc"] == [applied] * 3
    if kind == "conflict":
        assert isinstance(raised.value, ClientError)
        reasons = raised.value.response["CancellationReasons"]
        assert sorted(reason["Code"] for reason in reasons) == [
            "None",
            "None",
            "TransactionConflict",
        ]


def test_a_read_never_gets_a_conflict(new_client: Callable[[], Any], table_name: str) -> None:
    client = new_client()
    injector = FaultInjector(client, rates={"*": {"conflict": 1.0}})
    for _ in range(5):
        stored(client, table_name, "x")
    assert injector.passed["GetItem"] == 5
    assert not injector.injected
    with pytest.raises(ValueError, match="cannot get a conflict"):
        injector.script("Query", "conflict")


def test_scripts_fire_in_order_across_retries_and_calls(
    new_client: Callable[[], Any], table_name: str
) -> None:
    client = new_client()  # botocore retries: 3 attempts
    injector = FaultInjector(client)
    injector.script("PutItem", "throttle", "lost_timeout", None, "lost")
    injector.script("GetItem", "server_error", at=2)

    put(client, table_name, "a")  # throttle, lost_timeout, then through
    put(client, table_name, "b")  # lost, then botocore's retry goes through
    assert stored(client, table_name, "a") is not None  # first GetItem: through
    assert stored(client, table_name, "b") is not None  # second: server_error, then through

    assert injector.log == [
        ("PutItem", "throttle"),
        ("PutItem", "lost_timeout"),
        ("PutItem", None),
        ("PutItem", "lost"),
        ("PutItem", None),
        ("GetItem", None),
        ("GetItem", "server_error"),
        ("GetItem", None),
    ]
    assert injector.unfired() == []
    assert injector.sends == Counter({"PutItem": 5, "GetItem": 3})
    assert injector.passed == Counter({"PutItem": 2, "GetItem": 2})
    assert injector.total("server_error") == 1
    assert sum(injector.injected.values()) + sum(injector.passed.values()) == 8


def test_write_scripts_follow_whichever_write_comes_next(
    new_client: Callable[[], Any], table_name: str
) -> None:
    client = new_client()
    injector = FaultInjector(client)
    injector.script(WRITE, "throttle", None, "conflict", "lost")
    action = {"Put": {"TableName": table_name, "Item": {"pk": {"S": "probe"}, "sk": {"S": "t"}}}}

    put(client, table_name, "a")  # throttle, then through
    stored(client, table_name, "a")  # a read: not a write
    with pytest.raises(ClientError, match="TransactionCanceledException"):
        client.transact_write_items(TransactItems=[action])  # conflict: botocore does not retry
    client.delete_item(TableName=table_name, Key={"pk": {"S": "probe"}, "sk": {"S": "a"}})

    assert injector.log == [
        ("PutItem", "throttle"),
        ("PutItem", None),
        ("GetItem", None),
        ("TransactWriteItems", "conflict"),
        ("DeleteItem", "lost"),
        ("DeleteItem", None),
    ]
    assert injector.unfired() == []


def test_the_cap_on_consecutive_faults_decides_whether_retries_get_through(
    new_client: Callable[[], Any], table_name: str
) -> None:
    capped = new_client()
    FaultInjector(capped, rates={"GetItem": {"throttle": 1.0}}, max_consecutive=2)
    assert stored(capped, table_name, "x") is None  # botocore's 3rd attempt got through

    uncapped = new_client()
    FaultInjector(uncapped, rates={"GetItem": {"throttle": 1.0}}, max_consecutive=3)
    with pytest.raises(ClientError):  # all 3 attempts throttled
        stored(uncapped, table_name, "x")


def test_random_faults_are_seeded_and_counted(
    new_client: Callable[[], Any], table_name: str
) -> None:
    logs = []
    retried: tuple[Kind, ...] = ("throttle", "server_error", "lost", "lost_timeout")
    for _ in range(2):
        client = new_client()
        rates = everywhere(0.5, retried)  # a conflict is not retried by botocore
        injector = FaultInjector(client, seed=11, rates=rates, max_consecutive=2)
        for index in range(30):
            put(client, table_name, f"k{index}")  # never more than 2 faults in a row: all pass
        logs.append(injector.log)
        assert sum(injector.injected.values()) + injector.passed["PutItem"] == len(injector.log)
        assert injector.passed["PutItem"] == 30
        assert {kind for (_, kind) in injector.injected} == set(retried)
    assert logs[0] == logs[1]


def test_botocores_retry_of_a_lost_transaction_is_applied_once_but_not_a_lost_update(
    new_client: Callable[[], Any], table_name: str
) -> None:
    """Why a lost TransactWriteItems answer is harmless while botocore retries it, and a lost
    single-item answer is not."""
    client = new_client()
    injector = FaultInjector(client)
    key = {"pk": {"S": "probe"}, "sk": {"S": "n"}}
    add = {
        "Key": key,
        "UpdateExpression": "ADD n :one",
        "ExpressionAttributeValues": {":one": {"N": "1"}},
    }

    injector.script("TransactWriteItems", "lost", "throttle")
    client.transact_write_items(TransactItems=[{"Update": {"TableName": table_name, **add}}])
    assert stored(new_client(), table_name, "n") == {**key, "n": {"N": "1"}}

    injector.script("UpdateItem", "lost")
    client.update_item(TableName=table_name, **add)
    assert stored(new_client(), table_name, "n") == {**key, "n": {"N": "3"}}  # applied twice


# ------------------------------------------------- answer lost, then the retry refused: one outcome

lost_then_refused = pytest.mark.parametrize(
    ("lost", "refused"),
    [(lost, refused) for lost in LOST for refused in REFUSED],
    ids=[f"{lost}-{'-'.join(refused)}" for lost in LOST for refused in REFUSED],
)


@lost_then_refused
def test_append(lost: Kind, refused: tuple[Kind, ...], faulty: Faulty, clean: ChatStore) -> None:
    session = with_session(clean, "old")
    store, injector = faulty()
    injector.script(WRITE, lost, *refused)

    result = store.append_items(USER, session, [msg("a"), msg("b")])

    assert injector.unfired() == []
    assert result.appended == 2
    assert tags(clean, session) == ["old", "a", "b"]
    assert clean.get_session(USER, session).message_count == 3


@lost_then_refused
def test_pop(lost: Kind, refused: tuple[Kind, ...], faulty: Faulty, clean: ChatStore) -> None:
    session = with_session(clean, "a", "b", "c")
    store, injector = faulty()
    injector.script(WRITE, lost, *refused)

    popped = store.pop_item(USER, session)

    assert injector.unfired() == []
    assert popped is not None
    assert popped.item == msg("c")
    assert tags(clean, session) == ["a", "b"]
    assert clean.get_session(USER, session).message_count == 2


@lost_then_refused
def test_clear(lost: Kind, refused: tuple[Kind, ...], faulty: Faulty, clean: ChatStore) -> None:
    session = with_session(clean, "a", "b")
    store, injector = faulty()
    injector.script(WRITE, lost, *refused)

    store.clear_items(USER, session)

    assert injector.unfired() == []
    assert tags(clean, session) == []
    assert clean.get_session(USER, session).message_count == 0


@lost_then_refused
def test_begin_turn(
    lost: Kind, refused: tuple[Kind, ...], faulty: Faulty, clean: ChatStore
) -> None:
    session = with_session(clean)
    store, injector = faulty()
    injector.script(WRITE, lost, *refused)

    store.begin_turn(USER, session, "turn-1", lease_seconds=60)  # the lease is ours: no 409
    assert injector.unfired() == []
    store.end_turn(USER, session, "turn-1")

    clean.begin_turn(USER, session, "turn-2", lease_seconds=60)  # end_turn freed it


@lost_then_refused
def test_end_turn(lost: Kind, refused: tuple[Kind, ...], faulty: Faulty, clean: ChatStore) -> None:
    session = with_session(clean)
    clean.begin_turn(USER, session, "turn-1", lease_seconds=60)
    store, injector = faulty()
    injector.script(WRITE, lost, *refused)

    store.end_turn(USER, session, "turn-1")

    assert injector.unfired() == []
    clean.begin_turn(USER, session, "turn-2", lease_seconds=60)


@lost_then_refused
def test_turn_commit(
    lost: Kind, refused: tuple[Kind, ...], faulty: Faulty, clean: ChatStore
) -> None:
    session = with_session(clean, "old")
    clean.begin_turn(USER, session, "turn-1", lease_seconds=60)
    store, injector = faulty()
    injector.script(WRITE, lost, *refused)

    result = store.append_items(
        USER, session, [msg("q"), msg("a")], turn=TurnCommit("turn-1", 3, 4)
    )

    assert injector.unfired() == []
    assert result.appended == 2
    assert tags(clean, session) == ["old", "q", "a"]
    stored_session = clean.get_session(USER, session)
    assert stored_session.message_count == 3
    assert stored_session.usage.total_tokens == 7
    clean.begin_turn(USER, session, "turn-2", lease_seconds=60)  # the commit released the lease


@lost_then_refused
def test_create(lost: Kind, refused: tuple[Kind, ...], faulty: Faulty, clean: ChatStore) -> None:
    store, injector = faulty()
    injector.script(WRITE, lost, *refused)

    session, created = store.create_session(USER, "new", title="T")

    assert injector.unfired() == []
    assert created is True
    assert session.title == "T"
    assert clean.get_session(USER, "new").title == "T"


@lost_then_refused
def test_update(lost: Kind, refused: tuple[Kind, ...], faulty: Faulty, clean: ChatStore) -> None:
    session = with_session(clean)
    store, injector = faulty()
    injector.script(WRITE, lost, *refused)

    updated = store.update_session(USER, session, title="New", metadata={"k": "v"})

    assert injector.unfired() == []
    assert (updated.title, updated.metadata) == ("New", {"k": "v"})
    assert clean.get_session(USER, session).title == "New"


@lost_then_refused
def test_generated_title(
    lost: Kind, refused: tuple[Kind, ...], faulty: Faulty, clean: ChatStore
) -> None:
    session = with_session(clean)
    store, injector = faulty()
    injector.script(WRITE, lost, *refused)

    updated = store.set_generated_title(USER, session, "Generated")

    assert injector.unfired() == []
    assert updated.title == "Generated"
    assert clean.get_session(USER, session).title == "Generated"


@lost_then_refused
def test_delete(lost: Kind, refused: tuple[Kind, ...], faulty: Faulty, clean: ChatStore) -> None:
    session = with_session(clean, "a")
    store, injector = faulty()
    injector.script(WRITE, lost, *refused)

    deleted = store.delete_session(USER, session)

    assert injector.unfired() == []
    assert deleted is True  # a live session was deleted, by this call
    assert clean.list_sessions(USER).sessions == []


@lost_then_refused
def test_request_deletion(
    lost: Kind, refused: tuple[Kind, ...], faulty: Faulty, clean: ChatStore
) -> None:
    store, injector = faulty()
    injector.script(WRITE, lost, *refused)

    deletion = store.request_deletion(USER, deletion_id="0" * 32)

    assert injector.unfired() == []
    assert deletion.deletion_id == "0" * 32
    assert deletion.status == "pending"
    assert clean.get_deletion(USER, "0" * 32).status == "pending"


@pytest.mark.parametrize(
    "write", ["TransactWriteItems", "UpdateItem"], ids=["page-and-progress", "done"]
)
@lost_then_refused
def test_run_deletion(
    write: str, lost: Kind, refused: tuple[Kind, ...], faulty: Faulty, clean: ChatStore
) -> None:
    """The page's deletes with the progress (one transaction), or the final write: exact."""
    sessions = [f"s{number}" for number in range(5)]
    for session in sessions:
        clean.create_session(USER, session)
    deletion = clean.request_deletion(USER)
    store, injector = faulty()
    injector.script(write, lost, *refused)

    deleted = store.run_deletion(
        keys.user_partition_key(USER), keys.deletion_sk(deletion.deletion_id)
    )

    assert injector.unfired() == []
    assert deleted == len(sessions)
    done = clean.get_deletion(USER, deletion.deletion_id)
    assert (done.status, done.sessions_deleted) == ("done", len(sessions))
    assert [session for session in sessions if keys.SESSION_SK in stored_rows(clean, session)] == []


@lost_then_refused
def test_clear_ends_an_idempotency_keys_history(
    lost: Kind, refused: tuple[Kind, ...], faulty: Faulty, clean: ChatStore
) -> None:
    """A key recorded before a clear (whose answer was lost) is not replayed after it."""
    session = with_session(clean)
    record = IdempotencyRecord("k", "h", '{"appended": 1}', 201)
    clean.append_items(USER, session, [msg("before")], idempotency=record)
    store, injector = faulty()
    injector.script(WRITE, lost, *refused)

    store.clear_items(USER, session)
    assert injector.unfired() == []
    again = store.append_items(USER, session, [msg("after")], idempotency=record)

    assert again.replay is None
    assert again.appended == 1
    assert tags(clean, session) == ["after"]
    assert clean.get_session(USER, session).message_count == 1
    resent = store.append_items(USER, session, [msg("after")], idempotency=record)
    assert resent.replay is not None  # the key now belongs to the new history: it replays that
    assert (resent.first_seq, resent.last_seq) == (again.first_seq, again.last_seq)
    assert tags(clean, session) == ["after"]


# ------------------------------------------------------------------------------ staged appends

# ------------------------------------------------------------------------ the same, on branches


def with_branch(store: ChatStore, *contents: str) -> tuple[str, str]:
    """A session of "a", "b" and an active branch sharing "a", holding ``contents``."""
    session = with_session(store, "a", "b")
    _, messages = store.read_newest(USER, session, None)
    branch = store.fork_branch(USER, session, at_seq=messages[0].seq).branch_id
    if contents:
        store.append_items(USER, session, [msg(tag) for tag in contents])
    return session, branch


@lost_then_refused
def test_fork(lost: Kind, refused: tuple[Kind, ...], faulty: Faulty, clean: ChatStore) -> None:
    session = with_session(clean, "a", "b")
    store, injector = faulty()
    injector.script(WRITE, lost, *refused)

    branch = store.fork_branch(USER, session)

    assert injector.unfired() == []
    assert [b.branch_id for b in clean.list_branches(USER, session).branches] == [
        "main",
        branch.branch_id,
    ]
    assert tags(clean, session) == ["a", "b"]
    assert clean.get_session(USER, session).message_count == 2


@lost_then_refused
def test_branch_append(
    lost: Kind, refused: tuple[Kind, ...], faulty: Faulty, clean: ChatStore
) -> None:
    session, branch = with_branch(clean, "c")
    store, injector = faulty()
    injector.script(WRITE, lost, *refused)

    result = store.append_items(USER, session, [msg("d"), msg("e")], branch=branch)

    assert injector.unfired() == []
    assert result.appended == 2
    assert tags(clean, session) == ["a", "c", "d", "e"]
    assert clean.get_session(USER, session).message_count == 4
    assert clean.get_branch(USER, session, branch).message_count == 4


@lost_then_refused
def test_branch_pop(
    lost: Kind, refused: tuple[Kind, ...], faulty: Faulty, clean: ChatStore
) -> None:
    session, branch = with_branch(clean, "c")
    store, injector = faulty()
    injector.script(WRITE, lost, *refused)

    popped = [store.pop_item(USER, session), store.pop_item(USER, session)]

    assert injector.unfired() == []
    assert [m.item for m in popped if m is not None] == [msg("c"), msg("a")]
    assert tags(clean, session) == []
    assert clean.get_session(USER, session).message_count == 0
    assert clean.get_branch(USER, session, branch).message_count == 0
    assert clean.read_newest(USER, session, None, branch="main")[1][0].item == msg("a")


@lost_then_refused
def test_branch_clear(
    lost: Kind, refused: tuple[Kind, ...], faulty: Faulty, clean: ChatStore
) -> None:
    session, branch = with_branch(clean, "c")
    store, injector = faulty()
    injector.script(WRITE, lost, *refused)

    store.clear_items(USER, session)

    assert injector.unfired() == []
    assert tags(clean, session) == []
    assert clean.get_branch(USER, session, branch).message_count == 0
    assert clean.get_session(USER, session).message_count == 0


@lost_then_refused
def test_switch(lost: Kind, refused: tuple[Kind, ...], faulty: Faulty, clean: ChatStore) -> None:
    session, _ = with_branch(clean, "c")
    store, injector = faulty()
    injector.script(WRITE, lost, *refused)

    store.activate_branch(USER, session, "main")

    assert injector.unfired() == []
    assert clean.get_session(USER, session).active_branch == "main"
    assert clean.get_session(USER, session).message_count == 2


@lost_then_refused
def test_delete_branch(
    lost: Kind, refused: tuple[Kind, ...], faulty: Faulty, clean: ChatStore
) -> None:
    session, branch = with_branch(clean, "c")
    store, injector = faulty()
    injector.script(WRITE, lost, *refused)

    assert store.delete_branch(USER, session, branch) is True

    assert injector.unfired() == []
    assert [b.branch_id for b in clean.list_branches(USER, session).branches] == ["main"]
    assert clean.get_session(USER, session).active_branch == "main"
    markers = [sk for sk in stored_rows(clean, session) if sk.startswith("TRIM#")]
    assert len(markers) == 1


STAGED = 250
"""Items of a staged append: more than one transaction holds, so reserve, stage, commit."""
GROUPS = math.ceil(STAGED / staging.STAGED_ROWS)
"""Its staging transactions (one row per small item); the commit is transaction GROUPS + 1."""
STAGED_STEPS = {
    "reserve": ("UpdateItem", 1),
    "middle-group": ("TransactWriteItems", GROUPS // 2 + 1),
    "commit": ("TransactWriteItems", GROUPS + 1),
}


def staged_batch() -> list[str]:
    return [f"m{index:03d}" for index in range(STAGED)]


@pytest.mark.parametrize("step", STAGED_STEPS)
@lost_then_refused
def test_staged_append(
    step: str, lost: Kind, refused: tuple[Kind, ...], faulty: Faulty, clean: ChatStore
) -> None:
    session = with_session(clean, "old")
    store, injector = faulty()
    operation, at = STAGED_STEPS[step]
    injector.script(operation, lost, *refused, at=at)

    result = store.append_items(USER, session, [msg(tag) for tag in staged_batch()])

    assert injector.unfired() == []
    # One reserve and every transaction got through once (the lost one: applied, unanswered).
    assert (injector.passed["UpdateItem"], injector.passed["TransactWriteItems"]) == (1, GROUPS + 1)
    assert result.appended == STAGED
    assert tags(clean, session) == ["old", *staged_batch()]
    assert clean.get_session(USER, session).message_count == 1 + STAGED
    nothing_left(clean, session)


def failing_for_good(faulty: Faulty, case: str) -> tuple[ChatStore, FaultInjector]:
    """A store whose reserve and first staging transaction get through, then every send named by
    ``case`` answers 500 (botocore's 3 attempts, resent by the store 3 times: UnavailableError)."""
    failing = "*" if case == "everything-after-a-group" else "TransactWriteItems"
    store, injector = faulty(rates={failing: {"server_error": 1.0}}, max_consecutive=99)
    store.table.budget_seconds = 0.0  # the store's minimum of resends
    injector.script("UpdateItem", None)  # the reserve
    injector.script("TransactWriteItems", None)  # the first group is staged
    return store, injector


# Right after the failed call, before the lease lapses: (a reservation is held, rows staged).
LEFT_BEHIND = {
    # The second group fails, and so does the writer's own clean-up (its first send, the read in
    # staging.revoke): the reservation and the first group's rows stay until the lease lapses,
    # unseen (above last_seq), and the next writer after that revokes it and deletes them.
    "everything-after-a-group": (True, staging.STAGED_ROWS),
    # The second group fails; the clean-up (GetItem, UpdateItem, Query, BatchWriteItem) gets
    # through: it revokes the reservation and deletes the staged rows before the call raises.
    "transactions-after-a-group": (False, 0),
}


@pytest.mark.parametrize("case", LEFT_BEHIND)
def test_a_failed_staged_append_leaves_nothing_once_its_lease_lapses(
    case: str, faulty: Faulty, clean: ChatStore, clock: FakeClock
) -> None:
    session = with_session(clean, "old")
    store, injector = failing_for_good(faulty, case)

    with pytest.raises(UnavailableError):
        store.append_items(USER, session, [msg(tag) for tag in staged_batch()])

    assert injector.unfired() == []
    assert tags(clean, session) == ["old"]
    assert clean.get_session(USER, session).message_count == 1
    reserved, staged = LEFT_BEHIND[case]
    assert (bool(reservation(clean, session)), len(strays(clean, session))) == (reserved, staged)

    clock.advance(staging.LEASE_SECONDS + 1)
    clean.append_items(USER, session, [msg("after")])

    assert tags(clean, session) == ["old", "after"]
    assert clean.get_session(USER, session).message_count == 2
    nothing_left(clean, session)


def test_a_reserve_applied_but_never_answered_is_not_left_holding_the_session(
    faulty: Faulty, clean: ChatStore
) -> None:
    """The reserve is applied, then every answer is lost until the store gives up. The writer
    knows its own token, as it does after a failed staging transaction: its reservation must not
    stay and hold every append to the session until it lapses (LEASE_SECONDS)."""
    session = with_session(clean, "old")
    store, injector = faulty()
    store.table.budget_seconds = 0.0  # the store's minimum of resends: 3 x botocore's 3
    unanswered: list[Kind] = ["lost"] * 9
    injector.script("UpdateItem", *unanswered)

    with pytest.raises(UnavailableError):
        store.append_items(USER, session, [msg(tag) for tag in staged_batch()])

    assert injector.unfired() == []
    assert tags(clean, session) == ["old"]
    assert reservation(clean, session) == {}


# ------------------------------------------------------------------------------- randomized soak

WRITERS = 4
APPENDS = 25
POP_EVERY = 5
SEEDED = 10
"""Messages in each writer's own pop session, before it pops APPENDS // POP_EVERY of them."""
SMALL = (1, 3)
LARGE = (120, 150)
"""Items per batch (at random, inclusive); a large batch is staged: reserve, 2 groups, commit."""


@dataclass
class Outcomes:
    acked: list[list[str]] = field(default_factory=list)
    """Batches whose append returned."""
    unacked: list[list[str]] = field(default_factory=list)
    """Batches whose append raised a ChatSessionsError: all or nothing of each is stored."""
    popped: list[str] = field(default_factory=list)
    unacked_pops: int = 0
    """Pops that raised a ChatSessionsError: each removed one message or none."""
    unexpected: list[str] = field(default_factory=list)
    """Exceptions that are not domain errors (a bug by themselves)."""


def writer(
    store: ChatStore, number: int, start: threading.Barrier, sizes: tuple[int, int]
) -> Outcomes:
    """Appends batches of ``sizes`` items to the shared session ``soak``, pops from its own
    ``pops-<number>``."""
    rng = random.Random(number)
    out = Outcomes()
    start.wait()
    for index in range(APPENDS):
        batch = [f"w{number}-{index}-{part}" for part in range(rng.randint(*sizes))]
        try:
            store.append_items(USER, "soak", [msg(tag) for tag in batch])
            out.acked.append(batch)
        except ChatSessionsError:
            out.unacked.append(batch)
        except Exception as exc:
            out.unacked.append(batch)
            out.unexpected.append(f"append: {exc!r}")
        if index % POP_EVERY == POP_EVERY - 1:
            try:
                popped = store.pop_item(USER, f"pops-{number}")
                out.popped.append("none" if popped is None else str(popped.item["content"]))
            except ChatSessionsError:
                out.unacked_pops += 1
            except Exception as exc:
                out.unacked_pops += 1
                out.unexpected.append(f"pop: {exc!r}")
    return out


def test_soak(new_client: Callable[[], Any], make_store: Callable[..., ChatStore]) -> None:
    """4 writers, each with its own client and injector (30 % faults of every kind on every
    operation, fixed seeds), append concurrently to one session and pop from their own."""
    soak(new_client, make_store, [SMALL] * WRITERS)


def test_soak_with_staged_batches(
    new_client: Callable[[], Any], make_store: Callable[..., ChatStore]
) -> None:
    """The same, with writer 0's batches staged (LARGE): the others wait for its reservations."""
    soak(new_client, make_store, [LARGE] + [SMALL] * (WRITERS - 1))


def soak(
    new_client: Callable[[], Any],
    make_store: Callable[..., ChatStore],
    sizes: Sequence[tuple[int, int]],
) -> None:
    """Runs the writers (writer ``n``'s batches: ``sizes[n]`` items) and checks what is stored:
    no acknowledged batch lost, none duplicated, none partly stored, no pop too many, the counts
    right, and nothing left behind (a reservation, rows outside the windows)."""
    clean = make_store()
    clean.create_session(USER, "soak")
    for number in range(WRITERS):
        clean.create_session(USER, f"pops-{number}")
        clean.append_items(USER, f"pops-{number}", [msg(f"p{number}-{k}") for k in range(SEEDED)])
    start = threading.Barrier(WRITERS)
    injectors: list[FaultInjector] = []
    results: list[Outcomes] = [Outcomes() for _ in range(WRITERS)]

    def run(number: int) -> None:
        client = new_client()
        rates = everywhere(0.3)
        injectors.append(FaultInjector(client, seed=1000 + number, rates=rates))
        results[number] = writer(make_store(client=client), number, start, sizes[number])

    threads = [threading.Thread(target=run, args=(n,)) for n in range(WRITERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    # The shared session: every acknowledged batch whole, once; the others whole or absent.
    header, messages = clean.read_newest(USER, "soak", None)
    visible = Counter(str(message.item["content"]) for message in messages)
    acked = [batch for out in results for batch in out.acked]
    unacked = [batch for out in results for batch in out.unacked]

    def found(batch: list[str]) -> int:
        return sum(1 for tag in batch if visible[tag])

    duplicated = sorted(tag for tag, count in visible.items() if count > 1)
    lost = [batch for batch in acked if found(batch) == 0]
    partial = [batch for batch in acked + unacked if 0 < found(batch) < len(batch)]
    # The pop sessions: each acknowledged pop removed the newest message, only that one.
    over_popped = 0
    bad_pops: list[str] = []
    counts_off: list[str] = []
    for number, out in enumerate(results):
        pop_header, left = clean.read_newest(USER, f"pops-{number}", None)
        remaining = [str(message.item["content"]) for message in left]
        removed = [f"p{number}-{k}" for k in range(len(remaining), SEEDED)]
        if remaining != [f"p{number}-{k}" for k in range(len(remaining))]:
            bad_pops.append(f"pops-{number} left {remaining}")
        if not set(out.popped) <= set(removed) or len(set(out.popped)) < len(out.popped):
            bad_pops.append(f"pops-{number} returned {out.popped}, removed {removed}")
        over_popped += max(0, len(removed) - len(out.popped) - out.unacked_pops)
        if pop_header.message_count != len(left):
            counts_off.append(f"pops-{number}: {pop_header.message_count} != {len(left)}")
    if header.message_count != len(messages):
        counts_off.append(f"soak: {header.message_count} != {len(messages)}")
    sessions = ["soak", *(f"pops-{number}" for number in range(WRITERS))]
    left_behind = {session: len(rows) for session in sessions if (rows := strays(clean, session))}
    reserved = {session: held for session in sessions if (held := reservation(clean, session))}
    faults = Counter[str]()
    for injector in injectors:
        for (_, kind), count in injector.injected.items():
            faults[kind] += count
    report = {
        "acked": len(acked),
        "unacked": len(unacked),
        "unacked_present": sum(1 for b in unacked if found(b) == len(b)),
        "unacked_absent": sum(1 for b in unacked if found(b) == 0),
        "lost": len(lost),
        "partial": len(partial),
        "duplicated": len(duplicated),
        "pops": sum(len(out.popped) for out in results),
        "unacked_pops": sum(out.unacked_pops for out in results),
        "over_popped": over_popped,
        "bad_pops": bad_pops,
        "counts_off": counts_off,
        "left_behind": left_behind,
        "reserved": reserved,
        "sends": sum(sum(injector.sends.values()) for injector in injectors),
        "faults": dict(faults),
        "unexpected": [error for out in results for error in out.unexpected],
    }
    print(report)

    assert sum(faults.values()) > 0, "no fault was injected"
    assert all(out.acked for out in results), "a writer got no batch through"
    failures = {
        name: report[name]
        for name in ("lost", "partial", "duplicated", "over_popped")
        if report[name] != 0
    }
    failures.update(
        {
            name: report[name]
            for name in ("bad_pops", "counts_off", "left_behind", "reserved", "unexpected")
            if report[name]
        }
    )
    assert failures == {}, (failures, duplicated[:5], report)
