"""Sessions: create (idempotent), get, list by activity, update, delete, expiry, isolation."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from chat_sessions import (
    ChatStore,
    InvalidCursorError,
    InvalidInputError,
    SessionNotFoundError,
)
from chat_sessions.config import StoreSettings
from chat_sessions.keys import partition_key
from chat_sessions.store import TurnCommit
from support import FakeClock, rows_of

USER = "user-a"
OTHER = "user-b"


def user_message(text: str) -> dict[str, Any]:
    return {"role": "user", "content": text}


def test_create_with_generated_id(store: ChatStore) -> None:
    session, created = store.create_session(USER, title="Trip", metadata={"lang": "en"})

    assert created is True
    assert len(session.session_id) == 32
    assert session.title == "Trip"
    assert session.metadata == {"lang": "en"}
    assert session.message_count == 0
    assert session.created_at == session.updated_at
    assert session.expires_at > session.updated_at
    assert store.get_session(USER, session.session_id) == session


def test_create_existing_id_returns_it_unchanged(store: ChatStore) -> None:
    first, created = store.create_session(USER, "s1", title="Original", metadata={"k": "v"})
    store.append_items(USER, "s1", [user_message("hi")])

    again, created_again = store.create_session(USER, "s1", title="Other", metadata={})

    assert (created, created_again) == (True, False)
    assert again.title == "Original"
    assert again.metadata == {"k": "v"}
    assert again.message_count == 1
    assert again.created_at == first.created_at


def test_get_unknown_session(store: ChatStore) -> None:
    with pytest.raises(SessionNotFoundError):
        store.get_session(USER, "missing")


def test_list_orders_by_last_activity(store: ChatStore) -> None:
    for name in ("a", "b", "c"):
        store.create_session(USER, name)
    store.append_items(USER, "a", [user_message("bump")])
    store.update_session(USER, "b", title="renamed")

    page = store.list_sessions(USER)

    assert [s.session_id for s in page.sessions] == ["b", "a", "c"]
    assert page.next_cursor is None


def test_list_pages_with_cursors(store: ChatStore) -> None:
    created = [store.create_session(USER, f"s{i:02d}")[0].session_id for i in range(45)]
    store.create_session(OTHER, "foreign")

    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        page = store.list_sessions(USER, limit=20, cursor=cursor)
        pages += 1
        seen += [s.session_id for s in page.sessions]
        cursor = page.next_cursor
        if cursor is None:
            break

    assert seen == list(reversed(created))
    assert pages == 3


@pytest.mark.parametrize("cursor", ["not-base64!", "e30", "eyJ2IjoxLCJrIjoibWVzc2FnZXMiLCJzIjoxfQ"])
def test_list_rejects_foreign_cursor(store: ChatStore, cursor: str) -> None:
    with pytest.raises(InvalidCursorError):
        store.list_sessions(USER, cursor=cursor)


def test_update_title_and_metadata(store: ChatStore) -> None:
    store.create_session(USER, "s1", title="Old", metadata={"a": "1", "b": "2"})

    updated = store.update_session(USER, "s1", title="New", metadata={"c": "3"})
    assert (updated.title, updated.metadata) == ("New", {"c": "3"})
    assert store.get_session(USER, "s1") == updated

    untitled = store.update_session(USER, "s1", title=None)
    assert untitled.title is None
    assert untitled.metadata == {"c": "3"}


@pytest.mark.parametrize(
    "metadata",
    [
        {f"k{i}": "v" for i in range(17)},
        {"k" * 65: "v"},
        {"k": "v" * 513},
        {f"k{i}": "v" * 200 for i in range(12)},  # within per-field bounds, over 2 KiB in all
        {"k": 1},
        {"": "v"},
    ],
)
def test_metadata_bounds(store: ChatStore, metadata: dict[str, Any]) -> None:
    store.create_session(USER, "s1", metadata={"keep": "me"})

    with pytest.raises(InvalidInputError):
        store.update_session(USER, "s1", metadata=metadata)
    with pytest.raises(InvalidInputError):
        store.create_session(USER, "s2", metadata=metadata)

    assert store.get_session(USER, "s1").metadata == {"keep": "me"}
    assert store.list_sessions(USER).sessions[0].session_id == "s1"


@pytest.mark.parametrize("session_id", ["", "\ud800", "x" * 1025, "é" * 513])
def test_invalid_session_ids(store: ChatStore, session_id: str) -> None:
    with pytest.raises(InvalidInputError):
        store.create_session(USER, session_id)
    with pytest.raises(InvalidInputError):
        store.append_items(USER, session_id, [user_message("x")], create_missing=True)


def test_delete_removes_session_and_messages(
    store: ChatStore, dynamodb_client: Any, table_name: str
) -> None:
    store.create_session(USER, "s1")
    last_seq = store.append_items(USER, "s1", [user_message(f"m{i}") for i in range(30)]).last_seq

    assert store.delete_session(USER, "s1") is True

    with pytest.raises(SessionNotFoundError):
        store.get_session(USER, "s1")
    assert store.delete_session(USER, "s1") is False  # idempotent
    # What the stream consumer does with the header's REMOVE record (test_cascade.py).
    assert store.purge_session(partition_key(USER, "s1"), up_to_seq=last_seq) == 30
    assert rows_of(dynamodb_client, table_name, partition_key(USER, "s1")) == []


def test_recreated_session_is_empty_and_survives_late_purge(
    store: ChatStore, dynamodb_client: Any, table_name: str
) -> None:
    store.create_session(USER, "s1")
    old_last = store.append_items(USER, "s1", [user_message("old")]).last_seq
    store.delete_session(USER, "s1")

    store.create_session(USER, "s1")
    store.append_items(USER, "s1", [user_message("new")])
    store.purge(partition_key(USER, "s1"), up_to_seq=old_last)  # a late cascade of the old one

    _, messages = store.read_newest(USER, "s1", None)
    assert [m.item["content"] for m in messages] == ["new"]


def test_users_are_isolated(store: ChatStore) -> None:
    store.create_session(USER, "shared-name", title="A's", metadata={"owner": "a"})
    store.append_items(USER, "shared-name", [user_message("secret")])

    attempts: list[Callable[[], object]] = [
        lambda: store.get_session(OTHER, "shared-name"),
        lambda: store.update_session(OTHER, "shared-name", title="pwned"),
        lambda: store.append_items(OTHER, "shared-name", [user_message("x")]),
        lambda: store.read_newest(OTHER, "shared-name", 10),
        lambda: store.list_messages(OTHER, "shared-name"),
        lambda: store.pop_item(OTHER, "shared-name"),
        lambda: store.clear_items(OTHER, "shared-name"),
    ]
    for attempt in attempts:
        with pytest.raises(SessionNotFoundError):
            attempt()
    assert store.delete_session(OTHER, "shared-name") is False
    assert store.list_sessions(OTHER).sessions == []

    session, messages = store.read_newest(USER, "shared-name", None)
    assert (session.title, session.metadata, session.message_count) == ("A's", {"owner": "a"}, 1)
    assert [m.item for m in messages] == [user_message("secret")]


def test_expired_session_is_invisible_at_once(store: ChatStore, clock: FakeClock) -> None:
    store.create_session(USER, "s1", title="T")
    store.append_items(USER, "s1", [user_message("hello")])

    clock.advance(3600)

    with pytest.raises(SessionNotFoundError):
        store.get_session(USER, "s1")
    assert store.list_sessions(USER).sessions == []
    for attempt in (
        lambda: store.read_newest(USER, "s1", 10),
        lambda: store.list_messages(USER, "s1"),
        lambda: store.append_items(USER, "s1", [user_message("x")]),
        lambda: store.update_session(USER, "s1", title="x"),
        lambda: store.pop_item(USER, "s1"),
        lambda: store.clear_items(USER, "s1"),
    ):
        with pytest.raises(SessionNotFoundError):
            attempt()

    # The id can be used again: a new, empty session; the old messages never show.
    session, created = store.create_session(USER, "s1")
    assert created is True
    assert session.title is None
    assert store.read_newest(USER, "s1", None)[1] == []


def test_activity_slides_expiry(store: ChatStore, clock: FakeClock) -> None:
    store.create_session(USER, "s1")
    clock.advance(3000)
    store.append_items(USER, "s1", [user_message("still here")])
    clock.advance(3000)  # 6000 s after creation, 3000 s after the last activity

    assert store.get_session(USER, "s1").message_count == 1
    clock.advance(601)
    with pytest.raises(SessionNotFoundError):
        store.get_session(USER, "s1")


def test_reads_do_not_extend_expiry(store: ChatStore, clock: FakeClock) -> None:
    store.create_session(USER, "s1")
    clock.advance(3000)
    store.read_newest(USER, "s1", 10)
    store.get_session(USER, "s1")
    clock.advance(601)

    with pytest.raises(SessionNotFoundError):
        store.get_session(USER, "s1")


@pytest.mark.parametrize("ttl", [30 * 60, 7 * 86_400])
def test_seed_ttl_settings(
    make_store: Callable[..., ChatStore], clock: FakeClock, ttl: int
) -> None:
    store = make_store(session_ttl_seconds=ttl)
    session, _ = store.create_session(USER, "s1")
    assert int(session.expires_at.timestamp()) - int(session.created_at.timestamp()) == ttl

    clock.advance(ttl - 5)
    assert store.get_session(USER, "s1").session_id == "s1"
    clock.advance(10)
    with pytest.raises(SessionNotFoundError):
        store.get_session(USER, "s1")


def test_settings_bound_the_ttl(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHAT_SESSIONS_SESSION_TTL_SECONDS", "1800")
    monkeypatch.setenv("CHAT_SESSIONS_TABLE_NAME", "from-env")
    settings = StoreSettings()
    assert (settings.session_ttl_seconds, settings.table_name) == (1800, "from-env")

    monkeypatch.setenv("CHAT_SESSIONS_SESSION_TTL_SECONDS", "30")
    with pytest.raises(ValueError, match="session_ttl_seconds"):
        StoreSettings()
    monkeypatch.setenv("CHAT_SESSIONS_MIN_SESSION_TTL_SECONDS", "10")
    assert StoreSettings().session_ttl_seconds == 30


def test_list_filters_by_metadata(store: ChatStore) -> None:
    store.create_session(USER, "a", metadata={"topic": "travel", "lang": "en"})
    store.create_session(USER, "b", metadata={"topic": "travel", "lang": "fr"})
    store.create_session(USER, "c", metadata={"topic": "food"})
    store.create_session(USER, "d", metadata={"topic.with.dots": "x", "#odd key": "y"})

    def ids(**filters: str) -> list[str]:
        return [s.session_id for s in store.list_sessions(USER, metadata=filters).sessions]

    assert ids(topic="travel") == ["b", "a"]
    assert ids(topic="travel", lang="en") == ["a"]
    assert ids(topic="none") == []
    assert ids(**{"topic.with.dots": "x", "#odd key": "y"}) == ["d"]


def test_list_filter_pages_past_non_matching_sessions(store: ChatStore) -> None:
    for i in range(30):
        store.create_session(USER, f"s{i:02d}", metadata={"keep": "yes" if i % 10 == 0 else "no"})

    page = store.list_sessions(USER, limit=2, metadata={"keep": "yes"})
    rest = store.list_sessions(USER, limit=2, metadata={"keep": "yes"}, cursor=page.next_cursor)

    assert [s.session_id for s in page.sessions] == ["s20", "s10"]
    assert [s.session_id for s in rest.sessions] == ["s00"]


def test_a_turn_keeps_a_short_lived_session_alive_until_it_commits(
    store: ChatStore, clock: FakeClock
) -> None:
    store.create_session(USER, "brief", ttl_seconds=60)
    clock.advance(50)
    store.begin_turn(USER, "brief", "turn-1", lease_seconds=150)
    clock.advance(100)  # a long model run: past the session's own 60 s of idleness

    result = store.append_items(
        USER, "brief", [user_message("q"), user_message("a")], turn=TurnCommit("turn-1")
    )

    assert result.appended == 2
    assert store.get_session(USER, "brief").message_count == 2


def count_queries(store: ChatStore) -> list[int]:
    """How many Query calls each listing made: append 0 before a call, read the last entry."""
    counts = [0]
    store.client.meta.events.register(
        "before-call.dynamodb.Query", lambda **_: counts.__setitem__(-1, counts[-1] + 1)
    )
    return counts


def list_all(store: ChatStore, counts: list[int], **filters: str) -> list[list[str]]:
    pages: list[list[str]] = []
    cursor = None
    while True:
        counts.append(0)
        page = store.list_sessions(USER, limit=1, cursor=cursor, metadata=filters or None)
        pages.append([s.session_id for s in page.sessions])
        cursor = page.next_cursor
        if cursor is None:
            return pages


def test_a_sparse_filter_costs_a_bounded_read_per_page(store: ChatStore) -> None:
    store.create_session(USER, "wanted", metadata={"kind": "rare"})  # the oldest
    for i in range(600):
        store.create_session(USER, f"s{i:03d}", metadata={"kind": "common"})
    counts = count_queries(store)

    pages = list_all(store, counts, kind="rare")

    assert [p for p in pages if p] == [["wanted"]]
    assert max(counts[1:]) <= 4  # LIST_READ_PAGES, whatever lies ahead of the match
    assert len(pages) <= 3  # 1 + 100 * 3 headers a call: the 601 are read in two or three


def test_expired_sessions_ahead_cost_a_bounded_read(store: ChatStore, clock: FakeClock) -> None:
    store.create_session(USER, "live", ttl_seconds=7200)
    for i in range(400):
        store.create_session(USER, f"gone{i:03d}", ttl_seconds=60)
    clock.advance(61)  # expired, not yet removed by TTL, and newer than the live one
    counts = count_queries(store)

    pages = list_all(store, counts)

    assert [p for p in pages if p] == [["live"]]
    assert max(counts[1:]) <= 4


def test_a_cursor_names_no_other_users_partition(store: ChatStore) -> None:
    from chat_sessions.cursor import encode_cursor

    store.create_session(USER, "mine")
    valid = "2099-01-01T00:00:00.000000Z"  # after every session: a descending start
    assert store.list_sessions(USER, cursor=encode_cursor("sessions", u=valid, p="z")).sessions
    for part in ("", "a#b", 7):  # no part, a part naming another partition, not a string
        with pytest.raises(InvalidCursorError):
            store.list_sessions(USER, cursor=encode_cursor("sessions", u=valid, p=part))


def test_deleting_an_expired_session_never_deletes_its_re_creation(
    make_store: Callable[..., ChatStore], clock: FakeClock
) -> None:
    store, other = make_store(), make_store()
    store.create_session(USER, "s1")
    clock.advance(store.session_ttl_seconds + 1)  # expired; TTL has not removed the header yet

    def re_create(**_: Any) -> None:  # between the failed delete and removing the leftover
        other.create_session(USER, "s1")

    store.client.meta.events.register("before-call.dynamodb.DeleteItem", re_create)

    assert store.delete_session(USER, "s1") is False

    assert other.get_session(USER, "s1").session_id == "s1"  # the new session stays
