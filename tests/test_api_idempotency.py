"""Idempotency-Key through the real edges: the Lambda handlers fed with the sample events, and the
local server (the chat app included). A retry returns the first answer and writes nothing."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from handlers import EVENTS, LambdaContext, handler_of

from chat_sessions import ChatStore
from chat_sessions.idempotency import REPLAYED_HEADER, derived_session_id
from chat_sessions.keys import partition_key
from chat_sessions_local.issuer import DevIssuer
from support import rows_of

OWNER = "user-123"
APPEND = "append_messages__idempotency_key.json"
NEW_CHAT = "chat_buffered__idempotency_key.json"


def sample(name: str) -> dict[str, Any]:
    return dict(json.loads((EVENTS / name).read_text()))


def invoke(function: str, event: dict[str, Any]) -> tuple[int, dict[str, str], Any]:
    response = handler_of(function)(copy.deepcopy(event), LambdaContext())
    body = response.get("body")
    headers = {k.lower(): v for k, v in (response.get("headers") or {}).items()}
    return response["statusCode"], headers, json.loads(body) if body else None


def idempotency_rows(store: ChatStore, session_id: str) -> int:
    rows = rows_of(store.client, store.table_name, partition_key(OWNER, session_id))
    return sum(r["sk"]["S"].startswith("IDEMP#") for r in rows)


def history(store: ChatStore, session_id: str = "trip-2026") -> list[dict[str, Any]]:
    return [m.item for m in store.read_newest(OWNER, session_id, None)[1]]


@pytest.fixture
def store(api_store: ChatStore) -> ChatStore:
    return api_store


# ------------------------------------------------------------------------- append (Lambda)


def test_a_retried_append_returns_the_first_answer_and_appends_once(store: ChatStore) -> None:
    event = sample(APPEND)

    first = invoke("append_messages", event)
    retry = invoke("append_messages", event)

    assert first[0] == retry[0] == 201
    assert first[2] == retry[2]  # the same batch, by its seqs
    assert (first[2]["appended"], first[2]["last_seq"] - first[2]["first_seq"]) == (4, 3)
    assert REPLAYED_HEADER.lower() not in first[1]
    assert retry[1][REPLAYED_HEADER.lower()] == "true"
    assert len(history(store)) == 7
    assert idempotency_rows(store, "trip-2026") == 1


def test_the_same_body_spelled_differently_is_the_same_request(store: ChatStore) -> None:
    event = sample(APPEND)
    invoke("append_messages", event)
    respelled = copy.deepcopy(event)
    items = json.loads(event["body"])["items"]
    respelled["body"] = json.dumps(
        {"items": [dict(reversed(list(item.items()))) for item in items]}, indent=2
    )

    status, headers, body = invoke("append_messages", respelled)

    assert (status, body["appended"], headers[REPLAYED_HEADER.lower()]) == (201, 4, "true")
    assert len(history(store)) == 7


def test_the_same_key_with_another_body_is_422_and_writes_nothing(store: ChatStore) -> None:
    event = sample(APPEND)
    invoke("append_messages", event)
    other = copy.deepcopy(event)
    other["body"] = json.dumps({"items": [{"role": "user", "content": "something else"}]})

    status, _, body = invoke("append_messages", other)

    assert (status, body["error"]["code"]) == (422, "idempotency_key_reused")
    assert "something else" not in json.dumps(body)
    assert len(history(store)) == 7


@pytest.mark.parametrize("key", ["", "two words", "k" * 256, "clé", "tab\tkey"])
def test_a_bad_key_is_400_and_writes_nothing(store: ChatStore, key: str) -> None:
    event = sample(APPEND)
    event["headers"]["idempotency-key"] = key

    status, _, body = invoke("append_messages", event)

    assert (status, body["error"]["code"]) == (400, "invalid_idempotency_key")
    assert set(body) == {"error"} and body["error"]["message"]
    assert len(history(store)) == 3


def test_without_a_key_a_retry_appends_again(store: ChatStore) -> None:
    event = sample("append_messages.json")

    invoke("append_messages", event)
    status, headers, body = invoke("append_messages", event)

    assert (status, body["appended"]) == (201, 4)
    assert len(history(store)) == 11
    assert REPLAYED_HEADER.lower() not in headers
    assert idempotency_rows(store, "trip-2026") == 0


# ----------------------------------------------------------------------- chat (Lambda, buffered)


def test_a_retried_new_chat_lands_in_the_same_session_and_runs_once(store: ChatStore) -> None:
    event = sample(NEW_CHAT)

    first = invoke("chat_buffered", event)
    retry = invoke("chat_buffered", event)

    assert first[0] == retry[0] == 200
    assert first[2] == retry[2]
    assert retry[1][REPLAYED_HEADER.lower()] == "true"
    session_id = first[2]["session_id"]
    assert session_id == derived_session_id(event["headers"]["idempotency-key"])
    assert len(history(store, session_id)) == 2  # one user message, one answer: the model ran once
    assert len(store.list_sessions(OWNER).sessions) == 4  # the sample's three and this one


def test_a_retried_chat_turn_in_a_session_runs_once(store: ChatStore) -> None:
    event = sample("chat_buffered.json")
    event["headers"]["idempotency-key"] = "turn-7"

    first = invoke("chat_buffered", event)
    retry = invoke("chat_buffered", event)

    assert first[2] == retry[2] and first[2]["session_id"] == "trip-2026"
    assert REPLAYED_HEADER.lower() not in first[1]
    assert retry[1][REPLAYED_HEADER.lower()] == "true"
    assert len(history(store)) == 5


def test_a_chat_key_reused_for_another_message_is_422(store: ChatStore) -> None:
    event = sample(NEW_CHAT)
    invoke("chat_buffered", event)
    other = copy.deepcopy(event)
    other["body"] = json.dumps({"message": "Plan a weekend in Lisbon instead"})

    status, _, body = invoke("chat_buffered", other)

    assert (status, body["error"]["code"]) == (422, "idempotency_key_reused")
    session_id = derived_session_id(event["headers"]["idempotency-key"])
    assert len(history(store, session_id)) == 2


def test_a_bad_chat_key_is_400_before_anything_runs(store: ChatStore) -> None:
    event = sample(NEW_CHAT)
    event["headers"]["idempotency-key"] = "no spaces allowed"

    status, _, body = invoke("chat_buffered", event)

    assert (status, body["error"]["code"]) == (400, "invalid_idempotency_key")
    assert len(store.list_sessions(OWNER).sessions) == 3  # the sample's: none was created


# ------------------------------------------------------------------------------- local server


def test_the_local_server_honours_keys(local_api: Any, dev_issuer: DevIssuer) -> None:
    auth = {"Authorization": f"Bearer {dev_issuer.mint('dana')}"}
    local_api.post("/v1/sessions", json={"session_id": "trip"}, headers=auth)
    keyed = {**auth, "Idempotency-Key": "local-1"}
    items = {"items": [{"role": "user", "content": "once"}]}

    appends = [
        local_api.post("/v1/sessions/trip/messages", json=items, headers=keyed) for _ in range(2)
    ]
    chats = [
        local_api.post("/v1/chat", json={"message": "hi"}, headers={**auth, "Idempotency-Key": "c"})
        for _ in range(2)
    ]

    assert [r.status_code for r in appends + chats] == [201, 201, 200, 200]
    assert appends[0].json() == appends[1].json()
    assert appends[0].json()["appended"] == 1
    assert chats[0].json() == chats[1].json()
    assert [r.headers.get(REPLAYED_HEADER) for r in appends + chats] == [None, "true"] * 2
    other = {"items": [{"role": "user", "content": "x"}]}
    reused = local_api.post("/v1/sessions/trip/messages", json=other, headers=keyed)
    assert (reused.status_code, reused.json()["error"]["code"]) == (422, "idempotency_key_reused")
