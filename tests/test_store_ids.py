"""Any session id the Agents SDK can pass is its own session (docs/data-model.md, "Keys")."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from chat_sessions import ChatStore, DynamoDBSession, InvalidInputError

USER = "user-a"
IDS = [
    "alice@example.com",
    "a#b",
    "#",
    "a/b/../c",
    "with space",
    "100%",
    "%23",
    "%~abc",
    "quo\"te and it's",
    "naïve 日本語 🎉",
    "x" * 1024,
    "é" * 512,  # 1,024 bytes as UTF-8
    "é" * 511 + "x",
]


@pytest.mark.parametrize("session_id", IDS, ids=range(len(IDS)))
async def test_any_id_round_trips(make_store: Callable[..., ChatStore], session_id: str) -> None:
    session = DynamoDBSession(session_id, user_id=USER, store=make_store())
    items: list[Any] = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]

    await session.add_items(items)

    assert await DynamoDBSession(session_id, user_id=USER, store=make_store()).get_items() == items
    assert await session.pop_item() == items[1]
    store = make_store()
    assert store.get_session(USER, session_id).session_id == session_id
    assert [s.session_id for s in store.list_sessions(USER).sessions] == [session_id]
    await session.clear_session()
    assert await session.get_items() == []


def test_ids_that_share_a_spelling_are_separate(store: ChatStore) -> None:
    pairs = [  # (user, session) pairs whose naive "user#session" would be the same
        (("u", "x#y"), ("u#x", "y")),
        (("u", "%23"), ("u", "#")),
        (("u", "a" * 1000 + "%1"), ("u", "a" * 1000 + "%2")),  # escaped, over 1,000 B: hashed
        (("u", "abc"), ("u", "abcd")),
    ]
    for first, second in pairs:
        for owner, session_id in (first, second):
            store.append_items(
                owner, session_id, [{"content": f"{owner}/{session_id}"}], create_missing=True
            )
        for owner, session_id in (first, second):
            _, stored = store.read_newest(owner, session_id, None)
            assert [m.item["content"] for m in stored] == [f"{owner}/{session_id}"]


@pytest.mark.parametrize("session_id", ["", "\ud800", "x" * 1025, "é" * 513])
def test_ids_that_cannot_be_stored_are_refused(store: ChatStore, session_id: str) -> None:
    with pytest.raises(InvalidInputError):
        store.create_session(USER, session_id)
    with pytest.raises(InvalidInputError):
        DynamoDBSession(session_id, user_id=USER, store=store)
    assert store.list_sessions(USER).sessions == []


def test_the_longest_user_and_session_ids_fit_a_key(store: ChatStore) -> None:
    user, session_id = "😀" * 256, "#" * 1024  # 1,024 bytes each; the session escapes to 3,072
    store.append_items(user, session_id, [{"content": "deep"}], create_missing=True)

    _, stored = store.read_newest(user, session_id, None)
    assert [m.item for m in stored] == [{"content": "deep"}]
    assert [s.session_id for s in store.list_sessions(user).sessions] == [session_id]
