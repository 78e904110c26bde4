"""The HTTP edge's error rules, through real handlers: one table, one body shape, no leaks."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from handlers import EVENTS, LambdaContext, handler_of

from chat_sessions import ChatStore, ThrottledError, service
from chat_sessions.api import http_app, lambda_handler
from chat_sessions.schemas import MAX_API_ITEM_BYTES, MAX_ITEMS_PER_APPEND, SessionPublic


def sample(name: str) -> dict[str, Any]:
    return dict(json.loads((EVENTS / name).read_text()))


def call(function: str, event: dict[str, Any]) -> tuple[int, dict[str, str], Any]:
    response = handler_of(function)(event, LambdaContext())
    body = response.get("body")
    return response["statusCode"], response.get("headers", {}), json.loads(body) if body else None


def with_body(name: str, body: Any) -> dict[str, Any]:
    event = copy.deepcopy(sample(name))
    event["body"] = json.dumps(body)
    return event


def test_unhandled_errors_are_generic_500s(caplog: pytest.LogCaptureFixture) -> None:
    app = http_app()

    @app.get("/v1/boom")
    def boom() -> SessionPublic:
        raise RuntimeError("secret-internal-detail")

    @app.get("/v1/broken")
    def broken() -> SessionPublic:
        return {"not": "a session"}  # type: ignore[return-value]

    handler = lambda_handler(app)
    for path in ("/v1/boom", "/v1/broken"):
        event = copy.deepcopy(sample("health.json"))
        event["rawPath"] = event["requestContext"]["http"]["path"] = path
        context: Any = LambdaContext()
        response = handler(event, context)
        body = json.loads(response["body"])
        assert response["statusCode"] == 500
        assert body == {"error": {"code": "internal_error", "message": "internal error"}}
        assert "secret" not in response["body"]


def test_throttling_is_503_with_retry_after(
    api_store: ChatStore,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def throttled(*args: Any, **kwargs: Any) -> Any:
        raise ThrottledError("DynamoDB is throttling requests; retry later")

    monkeypatch.setattr(service.get_store(), "get_session", throttled)
    status, headers, body = call("get_session", sample("get_session.json"))

    assert (status, headers["Retry-After"], body["error"]["code"]) == (503, "1", "throttled")


def test_body_over_the_limit_is_413_and_writes_nothing(api_store: ChatStore) -> None:
    status, _, body = call(
        "update_session", with_body("update_session.json", {"title": "x" * 17_000})
    )
    assert (status, body["error"]["code"]) == (413, "body_too_large")

    huge = [{"role": "user", "content": "x" * 1_000_000} for _ in range(6)]
    status, _, body = call("append_messages", with_body("append_messages.json", {"items": huge}))
    assert (status, body["error"]["code"]) == (413, "body_too_large")
    assert api_store.get_session("user-123", "trip-2026").message_count == 3


def test_item_over_the_maximum_is_413_and_writes_nothing(api_store: ChatStore) -> None:
    items = [
        {"role": "user", "content": "fine"},
        {"role": "user", "content": "x" * MAX_API_ITEM_BYTES},
    ]
    status, _, body = call("append_messages", with_body("append_messages.json", {"items": items}))

    assert (status, body["error"]["code"]) == (413, "item_too_large")
    assert api_store.get_session("user-123", "trip-2026").message_count == 3


def test_too_many_items_is_a_validation_error(api_store: ChatStore) -> None:
    items = [{"role": "user", "content": str(i)} for i in range(MAX_ITEMS_PER_APPEND + 1)]
    status, _, body = call("append_messages", with_body("append_messages.json", {"items": items}))

    assert (status, body["error"]["code"]) == (422, "validation_failed")
    assert body["error"]["details"][0]["loc"] == ["body", "items"]


def test_validation_details_never_echo_the_input(api_store: ChatStore) -> None:
    status, _, body = call(
        "create_session", with_body("create_session.json", {"title": 42, "secret": "hunter2"})
    )
    assert status == 422
    assert {tuple(d["loc"]) for d in body["error"]["details"]} == {
        ("body", "title"),
        ("body", "secret"),
    }
    assert "hunter2" not in json.dumps(body)
