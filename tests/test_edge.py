"""One edge: the same hostile request gets the same status and error body on every edge, and
nothing stored changes (docs/api.md, "The edge").

The edges:
- ``functions``: API Gateway (the local gateway) in front of the per-route functions.
- ``function_url``: the chat app alone, as its function URL serves it (every path reaches it).
- ``api_chat``: API Gateway in front of the buffered chat function (FastAPI under Mangum).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from starlette.testclient import TestClient

from chat_sessions import service
from chat_sessions.agent_config import build_agent
from chat_sessions.chat_app import MAX_MESSAGE_CHARS, create_chat_app
from chat_sessions.edge.json_body import MAX_BODY_NESTING
from chat_sessions_local.issuer import DevIssuer
from chat_sessions_local.server import create_app
from chat_sessions_local.serving import serve

USER = "erin"
JSON = "application/json"
EDGES = ("functions", "function_url", "api_chat")
BODY_ROUTE = {
    "functions": "/v1/sessions/s1/messages",
    "function_url": "/v1/sessions/s1/chat",
    "api_chat": "/v1/sessions/s1/chat",
}


@pytest.fixture
def clients(local_api: Any, dev_issuer: DevIssuer) -> Iterator[dict[str, TestClient]]:
    """A client per edge, all over the test's table (``local_api`` configured it)."""
    url = "http://127.0.0.1:8000"
    chat = create_chat_app(agent=build_agent, verifier=dev_issuer.verifier)
    with (
        TestClient(chat, base_url=url) as function_url,
        TestClient(create_app(dev_issuer, chat_url=False), base_url=url) as api_chat,
    ):
        yield {"functions": local_api, "function_url": function_url, "api_chat": api_chat}


@pytest.fixture
def token(dev_issuer: DevIssuer) -> str:
    return dev_issuer.mint(USER)


@pytest.fixture
def stored(local_api: Any, token: str) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {token}"}
    local_api.post("/v1/sessions", json={"session_id": "s1", "title": "T"}, headers=headers)
    items = {"items": [{"role": "user", "content": "keep me"}]}
    local_api.post("/v1/sessions/s1/messages", json=items, headers=headers)
    return snapshot()


def snapshot() -> dict[str, Any]:
    store = service.get_store()
    sessions = store.list_sessions(USER).sessions
    return {
        "sessions": [s.model_dump() for s in sessions],
        "messages": [m.item for m in store.list_messages(USER, "s1").messages],
    }


def nested(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


def objects(depth: int) -> bytes:
    return b'{"a":' * depth + b"1" + b"}" * depth


BODIES: dict[str, tuple[bytes, str | None, int, str]] = {
    # name: (raw body, content type, status, code): refused before any route looks at it
    "arrays 10,000 deep": (b'{"x": ' + nested(10_000) + b"}", JSON, 400, "malformed_json"),
    "objects 10,000 deep": (b'{"x": ' + objects(10_000) + b"}", JSON, 400, "malformed_json"),
    "body 100,000 deep": (nested(100_000), JSON, 400, "malformed_json"),
    "just past the nesting limit": (nested(MAX_BODY_NESTING + 1), JSON, 400, "malformed_json"),
    "5,000-digit number": (b'{"x": ' + b"9" * 5000 + b"}", JSON, 400, "malformed_json"),
    "float beyond a double": (b'{"x": 1e400}', JSON, 400, "malformed_json"),
    "NaN": (b'{"x": NaN}', JSON, 400, "malformed_json"),
    "Infinity": (b'{"x": -Infinity}', JSON, 400, "malformed_json"),
    "lone surrogate": (b'{"x": "\\ud800"}', JSON, 400, "malformed_json"),
    "lone surrogate in a key": (b'{"\\udfff": 1}', JSON, 400, "malformed_json"),
    "duplicate keys": (b'{"message": "a", "message": "b"}', JSON, 400, "malformed_json"),
    "not UTF-8": (b'{"x": "\xff"}', JSON, 400, "malformed_json"),
    "truncated": (b'{"message": ', JSON, 400, "malformed_json"),
    "a form posing as JSON": (b"message=hi", JSON, 400, "malformed_json"),
    "no content type": (b'{"message": "hi"}', None, 415, "unsupported_media_type"),
    "text/plain": (b'{"message": "hi"}', "text/plain", 415, "unsupported_media_type"),
    "a form": (b"message=hi", "application/x-www-form-urlencoded", 415, "unsupported_media_type"),
    "JSON in Latin-1": (b"{}", "application/json; charset=latin-1", 415, "unsupported_media_type"),
    "JSON twice": (b"{}", "application/json, application/json", 415, "unsupported_media_type"),
    "6 MiB": (b'{"x": "' + b"a" * (6 * 1024 * 1024) + b'"}', JSON, 413, "body_too_large"),
}


def assert_refused(response: Any, status: int, code: str) -> None:
    assert response.status_code == status, response.text[:300]
    assert response.headers["content-type"].startswith(JSON)
    error = response.json()["error"]
    assert error["code"] == code
    assert isinstance(error["message"], str) and error["message"]
    assert "a" * 100 not in response.text  # never echoes the input


@pytest.mark.parametrize("edge", EDGES)
@pytest.mark.parametrize("case", sorted(BODIES))
def test_a_hostile_body_is_the_same_4xx_on_every_edge(
    clients: dict[str, TestClient], token: str, stored: dict[str, Any], edge: str, case: str
) -> None:
    body, content_type, status, code = BODIES[case]
    headers = {"Authorization": f"Bearer {token}"}
    if content_type is not None:
        headers["Content-Type"] = content_type

    response = clients[edge].post(BODY_ROUTE[edge], content=body, headers=headers)

    assert_refused(response, status, code)
    assert snapshot() == stored


SUBJECTS: dict[str, Any] = {
    "empty sub": "",
    "sub with a newline": "erin\nadmin",
    "sub of 300 characters": "e" * 300,
}


@pytest.mark.parametrize("edge", EDGES)
@pytest.mark.parametrize("case", sorted([*SUBJECTS, "no token", "not a bearer token"]))
def test_an_odd_identity_is_a_401_on_every_edge(
    clients: dict[str, TestClient],
    dev_issuer: DevIssuer,
    stored: dict[str, Any],
    edge: str,
    case: str,
) -> None:
    headers = {"Content-Type": JSON}
    if case in SUBJECTS:
        headers["Authorization"] = f"Bearer {dev_issuer.mint(SUBJECTS[case])}"
    elif case == "not a bearer token":
        headers["Authorization"] = "Basic ZXJpbjpwdw=="
    body = (
        {"items": [{"role": "user", "content": "x"}]} if edge == "functions" else {"message": "x"}
    )

    response = clients[edge].post(BODY_ROUTE[edge], json=body, headers=headers)

    assert_refused(response, 401, "unauthorized")
    assert snapshot() == stored


REQUESTS: dict[str, tuple[str, str, int, str]] = {
    # name: (method, path under /v1/sessions/, status, code), on a chat path and a CRUD path
    "repeated query parameter": ("POST", "s1/chat?x=1&x=2", 422, "validation_failed"),
    "control character in the id": ("POST", "a%0Ab/chat", 422, "validation_failed"),
    "dot-dot id": ("POST", "%2E%2E/chat", 422, "validation_failed"),
    "id over 1,024 bytes": ("POST", "%C3%A9" * 513 + "/chat", 422, "validation_failed"),
    "an encoded slash": ("POST", "a%2Fb/chat", 404, "route_not_found"),
    "wrong method": ("PUT", "s1/chat", 405, "method_not_allowed"),
    "trailing slash": ("POST", "s1/chat/", 404, "route_not_found"),
    "unknown session": ("POST", "nope/chat", 404, "session_not_found"),
}


@pytest.mark.parametrize("edge", EDGES)
@pytest.mark.parametrize("case", sorted(REQUESTS))
def test_an_odd_request_is_the_same_4xx_on_every_edge(
    clients: dict[str, TestClient], token: str, stored: dict[str, Any], edge: str, case: str
) -> None:
    method, path, status, code = REQUESTS[case]
    headers = {"Authorization": f"Bearer {token}"}
    body: dict[str, Any]
    if edge == "functions":  # the same fault on the messages route of the functions
        path, body = (
            path.replace("/chat", "/messages"),
            {"items": [{"role": "user", "content": "x"}]},
        )
    else:
        body = {"message": "x"}

    response = clients[edge].request(method, f"/v1/sessions/{path}", json=body, headers=headers)

    assert_refused(response, status, code)
    if code == "method_not_allowed":
        allowed = "GET, POST, DELETE" if edge == "functions" else "POST"
        assert response.headers["allow"] == allowed
    assert snapshot() == stored


@pytest.fixture
def servers(local_api: Any, dev_issuer: DevIssuer) -> Iterator[dict[str, str]]:
    """Each edge on a real socket: test clients decode paths themselves (Starlette's twice)."""
    chat = create_chat_app(agent=build_agent, verifier=dev_issuer.verifier)
    with (
        serve(local_api.app) as functions,
        serve(chat) as function_url,
        serve(create_app(dev_issuer, chat_url=False)) as api_chat,
    ):
        yield {"functions": functions, "function_url": function_url, "api_chat": api_chat}


def encoded(session_id: str) -> str:
    return quote(session_id, safe="")


@pytest.mark.parametrize("edge", EDGES)
def test_a_percent_encoded_id_is_decoded_exactly_once_on_every_edge(
    servers: dict[str, str], token: str, edge: str
) -> None:
    odd, decoy = '100%41 #1 "é" ~[a]{b}', '100A #1 "é" ~[a]{b}'  # decoded twice: the decoy
    headers = {"Authorization": f"Bearer {token}"}
    for session_id in (odd, decoy):
        created = httpx.post(
            f"{servers['functions']}/v1/sessions", json={"session_id": session_id}, headers=headers
        )
        assert created.status_code == 201
    route = "messages" if edge == "functions" else "chat"
    body: dict[str, Any] = {"message": "hello"}
    if edge == "functions":
        body = {"items": [{"role": "user", "content": "hello"}]}

    response = httpx.post(
        f"{servers[edge]}/v1/sessions/{encoded(odd)}/{route}", json=body, headers=headers
    )

    assert response.status_code in (200, 201), response.text[:300]
    store = service.get_store()
    assert [m.item["content"] for m in store.list_messages(USER, odd).messages][:1] == ["hello"]
    assert store.list_messages(USER, decoy).messages == []
    got = httpx.get(f"{servers['functions']}/v1/sessions/{encoded(odd)}", headers=headers)
    assert got.json()["session_id"] == odd


@pytest.mark.parametrize("edge", ["function_url", "api_chat"])
def test_a_chat_body_over_its_limit_is_a_413_and_the_longest_message_a_turn(
    clients: dict[str, TestClient], token: str, stored: dict[str, Any], edge: str
) -> None:
    headers = {"Authorization": f"Bearer {token}", "Content-Type": JSON}
    too_big = json.dumps({"message": "é" * 140_000}, ensure_ascii=False).encode()  # 280 KB
    longest = {"message": "\u20ac" * MAX_MESSAGE_CHARS}  # 96 KB of UTF-8: within the limit

    refused = clients[edge].post("/v1/sessions/s1/chat", content=too_big, headers=headers)
    assert_refused(refused, 413, "body_too_large")
    assert snapshot() == stored
    answered = clients[edge].post("/v1/sessions/s1/chat", json=longest, headers=headers)
    assert answered.status_code == 200, answered.text[:300]


@pytest.mark.parametrize("edge", EDGES)
@pytest.mark.parametrize(
    "content_type", ["application/vnd.api+json", "Application/JSON; charset=UTF-8"]
)
def test_json_however_declared_is_accepted_on_every_edge(
    clients: dict[str, TestClient], token: str, stored: dict[str, Any], edge: str, content_type: str
) -> None:
    headers = {"Authorization": f"Bearer {token}", "Content-Type": content_type}
    body = (
        {"items": [{"role": "user", "content": "x"}]} if edge == "functions" else {"message": "x"}
    )

    response = clients[edge].post(BODY_ROUTE[edge], content=json.dumps(body), headers=headers)

    assert response.status_code in (200, 201), response.text[:300]


@pytest.mark.parametrize("edge", EDGES)
def test_an_empty_body_of_any_type_is_a_missing_body_on_every_edge(
    clients: dict[str, TestClient], token: str, stored: dict[str, Any], edge: str
) -> None:
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "text/plain"}

    response = clients[edge].post(BODY_ROUTE[edge], content=b"", headers=headers)

    assert_refused(response, 422, "validation_failed")
    assert snapshot() == stored
