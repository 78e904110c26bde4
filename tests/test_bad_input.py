"""Bad input on the local server: the right status, the error body, and nothing stored changes."""

from __future__ import annotations

import json
from typing import Any

import pytest

from chat_sessions.schemas import MAX_API_ITEM_BYTES, MAX_ITEMS_PER_APPEND
from chat_sessions_local.issuer import DevIssuer

USER = "carol"
ABSENT_BRANCH = "b_kx4mfa5oct3kncjfjnvb"


@pytest.fixture
def headers(dev_issuer: DevIssuer) -> dict[str, str]:
    return {"Authorization": f"Bearer {dev_issuer.mint(USER)}"}


@pytest.fixture
def stored(local_api: Any, headers: dict[str, str]) -> dict[str, Any]:
    """A session with one message, and a snapshot of it to compare after each bad request."""
    local_api.post("/v1/sessions", json={"session_id": "s1", "title": "T"}, headers=headers)
    items = {"items": [{"role": "user", "content": "keep me"}]}
    local_api.post("/v1/sessions/s1/messages", json=items, headers=headers)
    return snapshot(local_api, headers)


def snapshot(local_api: Any, headers: dict[str, str]) -> dict[str, Any]:
    return {
        "session": local_api.get("/v1/sessions/s1", headers=headers).json(),
        "messages": local_api.get("/v1/sessions/s1/messages", headers=headers).json(),
        "branches": local_api.get("/v1/sessions/s1/branches", headers=headers).json(),
    }


JSON = {"headers": {"content-type": "application/json"}}
BIG_ITEM = {"role": "user", "content": "x" * MAX_API_ITEM_BYTES}
DEEP_ITEM = b'{"items": [{"role": "user", "content": ' + b"[" * 10_000 + b"]" * 10_000 + b"}]}"
DEEP_OBJECT = b'{"items": [' + b'{"a":' * 10_000 + b"1" + b"}" * 10_000 + b"]}"
CASES: dict[str, tuple[str, str, dict[str, Any], int, str]] = {
    "item nested 10,000 deep": (
        "POST",
        "/v1/sessions/s1/messages",
        {"content": DEEP_ITEM, **JSON},
        400,
        "malformed_json",
    ),
    "object item nested 10,000 deep": (
        "POST",
        "/v1/sessions/s1/messages",
        {"content": DEEP_OBJECT, **JSON},
        400,
        "malformed_json",
    ),
    "5,000-digit number in an item": (
        "POST",
        "/v1/sessions/s1/messages",
        {
            "content": b'{"items": [{"role": "user", "content": "x", "n": ' + b"7" * 5000 + b"}]}",
            **JSON,
        },
        400,
        "malformed_json",
    ),
    "5,000-digit ttl_seconds": (
        "POST",
        "/v1/sessions",
        {"content": b'{"ttl_seconds": ' + b"9" * 5000 + b"}", **JSON},
        400,
        "malformed_json",
    ),
    "4,000-digit ttl_seconds": (
        "POST",
        "/v1/sessions",
        {"content": b'{"ttl_seconds": ' + b"9" * 4000 + b"}", **JSON},
        422,
        "invalid_input",
    ),
    "lone surrogate in an item": (
        "POST",
        "/v1/sessions/s1/messages",
        {"content": b'{"items": [{"role": "user", "content": "\\ud83d"}]}', **JSON},
        400,
        "malformed_json",
    ),
    "a role that is a list": (
        "POST",
        "/v1/sessions/s1/messages",
        {"json": {"items": [{"role": ["user"], "content": "x"}]}},
        403,
        "item_not_allowed",
    ),
    "a privileged item with a huge type": (
        "POST",
        "/v1/sessions/s1/messages",
        {"json": {"items": [{"type": "x" * 200_000}]}},
        403,
        "item_not_allowed",
    ),
    "repeated limit": ("GET", "/v1/sessions?limit=1&limit=2", {}, 422, "validation_failed"),
    "repeated metadata filter": (
        "GET",
        "/v1/sessions?metadata.a=1&metadata.a=2",
        {},
        422,
        "validation_failed",
    ),
    # name: (method, path, request options, status, error code)
    "malformed json": (
        "POST",
        "/v1/sessions",
        {"content": b'{"title": ', **JSON},
        400,
        "malformed_json",
    ),
    "json array body": ("PATCH", "/v1/sessions/s1", {"json": ["title"]}, 422, "validation_failed"),
    "not utf-8": (
        "POST",
        "/v1/sessions",
        {"content": b"\xff\xfe\x00", **JSON},
        400,
        "malformed_json",
    ),
    "no content type": ("POST", "/v1/sessions", {"content": b"{}"}, 415, "unsupported_media_type"),
    "missing body": ("POST", "/v1/sessions/s1/messages", {}, 422, "validation_failed"),
    "wrong type": ("PATCH", "/v1/sessions/s1", {"json": {"title": 7}}, 422, "validation_failed"),
    "null items": (
        "POST",
        "/v1/sessions/s1/messages",
        {"json": {"items": None}},
        422,
        "validation_failed",
    ),
    "item not an object": (
        "POST",
        "/v1/sessions/s1/messages",
        {"json": {"items": ["hi"]}},
        422,
        "validation_failed",
    ),
    "unknown field": (
        "PATCH",
        "/v1/sessions/s1",
        {"json": {"titel": "x"}},
        422,
        "validation_failed",
    ),
    "unknown field on create": (
        "POST",
        "/v1/sessions",
        {"json": {"owner": "x"}},
        422,
        "validation_failed",
    ),
    "title too long": (
        "PATCH",
        "/v1/sessions/s1",
        {"json": {"title": "t" * 257}},
        422,
        "validation_failed",
    ),
    "metadata value not a string": (
        "PATCH",
        "/v1/sessions/s1",
        {"json": {"metadata": {"a": 1}}},
        422,
        "validation_failed",
    ),
    "too many metadata keys": (
        "PATCH",
        "/v1/sessions/s1",
        {"json": {"metadata": {str(i): "v" for i in range(17)}}},
        422,
        "validation_failed",
    ),
    "empty items": (
        "POST",
        "/v1/sessions/s1/messages",
        {"json": {"items": []}},
        422,
        "validation_failed",
    ),
    "too many items": (
        "POST",
        "/v1/sessions/s1/messages",
        {"json": {"items": [{"c": 1}] * (MAX_ITEMS_PER_APPEND + 1)}},
        422,
        "validation_failed",
    ),
    "body over 16 KiB": (
        "PATCH",
        "/v1/sessions/s1",
        {"json": {"title": "x" * 20_000}},
        413,
        "body_too_large",
    ),
    "append body over 5 MiB": (
        "POST",
        "/v1/sessions/s1/messages",
        {"json": {"items": [BIG_ITEM] * 6}},
        413,
        "body_too_large",
    ),
    "item over 1 MiB": (
        "POST",
        "/v1/sessions/s1/messages",
        {"json": {"items": [{"role": "user", "content": "ok"}, BIG_ITEM]}},
        413,
        "item_too_large",
    ),
    "cursor garbage": ("GET", "/v1/sessions?cursor=%%%", {}, 400, "invalid_cursor"),
    "cursor from another listing": (
        "GET",
        "/v1/sessions/s1/messages?cursor=eyJ2IjoxLCJrIjoic2Vzc2lvbnMifQ",
        {},
        400,
        "invalid_cursor",
    ),
    "cursor too long": ("GET", "/v1/sessions?cursor=" + "a" * 3000, {}, 422, "validation_failed"),
    "limit zero": ("GET", "/v1/sessions?limit=0", {}, 422, "validation_failed"),
    "limit not a number": (
        "GET",
        "/v1/sessions/s1/messages?limit=ten",
        {},
        422,
        "validation_failed",
    ),
    "bad order": ("GET", "/v1/sessions/s1/messages?order=sideways", {}, 422, "validation_failed"),
    "bad metadata filter": (
        "GET",
        "/v1/sessions?metadata." + "k" * 65 + "=v",
        {},
        422,
        "invalid_input",
    ),
    "id over 1,024 bytes": ("GET", "/v1/sessions/" + "%C3%A9" * 513, {}, 422, "validation_failed"),
    "id with a control character": ("GET", "/v1/sessions/a%0Ab", {}, 422, "validation_failed"),
    "id over 1,024 bytes on create": (
        "POST",
        "/v1/sessions",
        {"json": {"session_id": "a" * 1025}},
        422,
        "validation_failed",
    ),
    "id with a slash on create": (
        "POST",
        "/v1/sessions",
        {"json": {"session_id": "a/b"}},
        422,
        "validation_failed",
    ),
    "dot-dot id on create": (
        "POST",
        "/v1/sessions",
        {"json": {"session_id": ".."}},
        422,
        "validation_failed",
    ),
    "unknown route": ("GET", "/v1/nothing", {}, 404, "route_not_found"),
    "unknown version": ("GET", "/v2/sessions", {}, 404, "route_not_found"),
    "wrong method": ("PUT", "/v1/sessions/s1", {"json": {}}, 405, "method_not_allowed"),
    "bad branch id": ("GET", "/v1/sessions/s1/messages?branch=Main", {}, 422, "validation_failed"),
    "repeated branch": (
        "GET",
        "/v1/sessions/s1/messages?branch=main&branch=main",
        {},
        422,
        "validation_failed",
    ),
    "unknown branch": (
        "DELETE",
        f"/v1/sessions/s1/messages?branch={ABSENT_BRANCH}",
        {},
        404,
        "branch_not_found",
    ),
    "bad branch id in the path": (
        "GET",
        "/v1/sessions/s1/branches/feature",
        {},
        422,
        "validation_failed",
    ),
    "naming main": (
        "PATCH",
        "/v1/sessions/s1/branches/main",
        {"json": {"name": "x", "active": True}},
        409,
        "main_branch",
    ),
    "deleting main": ("DELETE", "/v1/sessions/s1/branches/main", {}, 409, "main_branch"),
    "empty branch update": (
        "PATCH",
        "/v1/sessions/s1/branches/main",
        {"json": {}},
        422,
        "validation_failed",
    ),
    "active false": (
        "PATCH",
        "/v1/sessions/s1/branches/main",
        {"json": {"active": False}},
        422,
        "validation_failed",
    ),
    "active null": (
        "PATCH",
        "/v1/sessions/s1/branches/main",
        {"json": {"active": None}},
        422,
        "validation_failed",
    ),
    "fork at a message not in the branch": (
        "POST",
        "/v1/sessions/s1/branches",
        {"json": {"from_seq": 1}},
        404,
        "message_not_found",
    ),
    "negative fork point": (
        "POST",
        "/v1/sessions/s1/branches",
        {"json": {"from_seq": -1}},
        422,
        "validation_failed",
    ),
    "fork of an unknown branch": (
        "POST",
        "/v1/sessions/s1/branches",
        {"json": {"source": ABSENT_BRANCH}},
        404,
        "branch_not_found",
    ),
    "branch name too long": (
        "POST",
        "/v1/sessions/s1/branches",
        {"json": {"name": "x" * 257}},
        422,
        "validation_failed",
    ),
    "unknown field on fork": (
        "POST",
        "/v1/sessions/s1/branches",
        {"json": {"branch": "main"}},
        422,
        "validation_failed",
    ),
    "pop on empty history": (
        "DELETE",
        "/v1/sessions/empty/messages/last",
        {},
        404,
        "session_not_found",
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_input_is_rejected_and_loses_nothing(
    local_api: Any, headers: dict[str, str], stored: dict[str, Any], case: str
) -> None:
    method, path, options, status, code = CASES[case]
    options = {**options, "headers": {**headers, **options.get("headers", {})}}

    response = local_api.request(method, path, **options)

    assert response.status_code == status, response.text[:500]
    body = response.json()
    assert body["error"]["code"] == code
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    assert "x" * 100 not in response.text  # never echoes the input back
    assert snapshot(local_api, headers) == stored


def test_validation_errors_name_the_fields(local_api: Any, headers: dict[str, str]) -> None:
    response = local_api.post(
        "/v1/sessions", json={"title": 5, "metadata": {"a": 1}, "x": 1}, headers=headers
    )
    locations = {tuple(d["loc"]) for d in response.json()["error"]["details"]}
    assert locations == {("body", "title"), ("body", "metadata", "a"), ("body", "x")}


def test_popping_an_empty_history_is_message_not_found(
    local_api: Any, headers: dict[str, str]
) -> None:
    local_api.post("/v1/sessions", json={"session_id": "empty"}, headers=headers)
    response = local_api.delete("/v1/sessions/empty/messages/last", headers=headers)
    assert (response.status_code, response.json()["error"]["code"]) == (404, "message_not_found")
    assert (
        json.loads(local_api.get("/v1/sessions/empty", headers=headers).text)["message_count"] == 0
    )
