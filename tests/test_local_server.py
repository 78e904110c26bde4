"""Every route works on the local server (JWT verification + the real handlers), end to end."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest

from chat_sessions.edge.routes import ROUTES
from chat_sessions.keys import partition_key
from chat_sessions_local.dev import TABLE, banner, library_environment, local_stack
from chat_sessions_local.dynamodb_local import free_port
from chat_sessions_local.issuer import DevIssuer
from support import rows_of

SEEN: set[tuple[str, str]] = set()


def test_a_conversation_through_every_route(local_api: Any, dev_issuer: DevIssuer) -> None:
    headers = {"Authorization": f"Bearer {dev_issuer.mint('dana')}"}

    def call(
        method: str, route: str, status: int, *, path: str | None = None, **options: Any
    ) -> Any:
        url = path or route.replace("{session_id}", "trip")
        response = local_api.request(method, url, headers=headers, **options)
        assert response.status_code == status, response.text
        SEEN.add((method, route.split("?")[0]))
        return response.json() if response.content else None

    assert call("GET", "/v1/health", 200) == {"status": "ok"}
    created = call("POST", "/v1/sessions", 201, json={"session_id": "trip", "metadata": {"k": "v"}})
    assert created["message_count"] == 0
    call("POST", "/v1/sessions", 201, json={"title": "another"})
    items = [{"role": "user", "content": f"m{i}"} for i in range(5)]
    appended = call("POST", "/v1/sessions/{session_id}/messages", 201, json={"items": items})
    assert (appended["appended"], appended["last_seq"] - appended["first_seq"]) == (5, 4)
    listed = call("GET", "/v1/sessions?limit=1&metadata.k=v", 200)
    assert [s["session_id"] for s in listed["sessions"]] == ["trip"]
    titled = call("POST", "/v1/sessions/{session_id}/title", 200)
    assert titled["title"] == "m0"  # from the first user message (offline: the heuristic)
    renamed = call("PATCH", "/v1/sessions/{session_id}", 200, json={"title": "Trip"})
    call("POST", "/v1/sessions/{session_id}/title", 409)  # the user's title stays
    assert (renamed["title"], renamed["metadata"]) == ("Trip", {"k": "v"})
    assert call("GET", "/v1/sessions/{session_id}", 200)["message_count"] == 5

    page = call("GET", "/v1/sessions/{session_id}/messages?limit=3", 200)
    rest = call(
        "GET", f"/v1/sessions/{{session_id}}/messages?limit=3&cursor={page['next_cursor']}", 200
    )
    assert [m["text"] for m in page["messages"] + rest["messages"]] == [f"m{i}" for i in range(5)]
    assert rest["next_cursor"] is None

    # A branch: forked at the second message, written to, renamed, listed, left and deleted.
    fork = {"from_seq": page["messages"][1]["seq"], "name": "edit"}
    forked = call("POST", "/v1/sessions/{session_id}/branches", 201, json=fork)
    branch, one = forked["branch_id"], "/v1/sessions/{session_id}/branches/{branch_id}"
    at = f"/v1/sessions/trip/branches/{branch}"
    assert (forked["message_count"], forked["active"]) == (2, True)
    assert call("GET", "/v1/sessions/{session_id}", 200)["active_branch"] == branch
    edited = {"items": [{"role": "user", "content": "edited"}]}
    call("POST", "/v1/sessions/{session_id}/messages", 201, json=edited)  # to the active branch
    on_it = call("GET", f"/v1/sessions/{{session_id}}/messages?branch={branch}", 200)
    assert [m["text"] for m in on_it["messages"]] == ["m0", "m1", "edited"]
    assert call("PATCH", one, 200, path=at, json={"name": "Edited"})["name"] == "Edited"
    back = call("PATCH", one, 200, path="/v1/sessions/trip/branches/main", json={"active": True})
    assert (back["branch_id"], back["active"], call("GET", one, 200, path=at)["active"]) == (
        "main",
        True,
        False,
    )
    listed = call("GET", "/v1/sessions/{session_id}/branches", 200)
    assert [b["branch_id"] for b in listed["branches"]] == ["main", branch]
    assert call("DELETE", one, 204, path=at) is None
    call("GET", one, 404, path=at)
    assert call("GET", "/v1/sessions/{session_id}", 200)["message_count"] == 5

    reply = call("POST", "/v1/sessions/{session_id}/chat", 200, json={"message": "hello"})
    assert reply["output"].startswith("(offline model)")
    fresh = call("POST", "/v1/chat", 200, json={"message": "new chat"})
    assert fresh["session_id"] != "trip"
    assert call("DELETE", "/v1/sessions/{session_id}/messages", 204) is None
    items = [{"role": "user", "content": f"m{i}"} for i in range(5)]
    call("POST", "/v1/sessions/{session_id}/messages", 201, json={"items": items})
    assert call("DELETE", "/v1/sessions/{session_id}/messages/last", 200)["message"]["text"] == "m4"
    assert call("DELETE", "/v1/sessions/{session_id}/messages", 204) is None
    assert call("GET", "/v1/sessions/{session_id}", 200)["message_count"] == 0
    assert call("DELETE", "/v1/sessions/{session_id}", 204) is None
    call("GET", "/v1/sessions/{session_id}", 404)

    call("DELETE", "/v1/sessions", 422)  # without its confirmation
    asked = call("DELETE", "/v1/sessions?confirm=delete-all-my-sessions", 202)
    status = call(
        "GET", "/v1/deletions/{deletion_id}", 200, path=f"/v1/deletions/{asked['deletion_id']}"
    )
    assert status["deletion_id"] == asked["deletion_id"]

    assert set(ROUTES) <= SEEN


@pytest.mark.integration
def test_the_dev_stack_serves_real_http_with_its_printed_token() -> None:
    with local_stack(free_port()) as (database, issuer, api):
        printed = banner(database, issuer, api)
        headers = {"Authorization": f"Bearer {issuer.mint('dev-user')}"}
        created = httpx.post(f"{api}/v1/sessions", json={"session_id": "hello"}, headers=headers)
        listed = httpx.get(f"{api}/v1/sessions", headers=headers)
        anonymous = httpx.get(f"{api}/v1/sessions")
        docs = httpx.get(f"{api}/docs")
        with httpx.stream(
            "POST",
            f"{api}/v1/sessions/hello/chat",
            json={"message": "Hi! What can you do?"},
            headers={**headers, "Accept": "text/event-stream"},
        ) as chat:
            frames = [line for line in chat.iter_lines() if line.startswith("event: ")]
        messages = httpx.get(f"{api}/v1/sessions/hello/messages", headers=headers).json()
        deleted = httpx.delete(f"{api}/v1/sessions/hello", headers=headers)
        left = rows_left(database.client(), partition_key("dev-user", "hello"))
        httpx.post(f"{api}/v1/sessions", json={"session_id": "second"}, headers=headers)
        asked = httpx.delete(f"{api}/v1/sessions?confirm=delete-all-my-sessions", headers=headers)
        deletion = poll_until_done(f"{api}{asked.headers['location']}", headers)
        after = httpx.get(f"{api}/v1/sessions", headers=headers).json()

    assert created.status_code == 201
    for name, value in library_environment(database.endpoint_url).items():
        assert f"  export {name}={value}\n" in printed  # what the README's example needs
    assert "Model: OFFLINE" in printed
    assert frames.count("event: token") > 5 and frames[-1] == "event: done"
    assert [(m["role"], m["type"]) for m in messages["messages"]] == [
        ("user", "message"),
        ("assistant", "message"),
    ]
    assert messages["messages"][0]["text"] == "Hi! What can you do?"
    assert messages["messages"][1]["text"].startswith("(offline model)")
    assert [s["session_id"] for s in listed.json()["sessions"]] == ["hello"]
    assert anonymous.status_code == 401
    assert (docs.status_code, "swagger-ui" in docs.text) == (200, True)
    assert (deleted.status_code, left) == (204, [])  # the dev stack's cascade removed them
    assert (asked.status_code, deletion["status"], deletion["sessions_deleted"]) == (202, "done", 1)
    assert after["sessions"] == []


def poll_until_done(url: str, headers: dict[str, str], wait_seconds: float = 30) -> Any:
    """The deletion's status once done, or as it is after the wait."""
    deadline = time.monotonic() + wait_seconds
    while True:
        status = httpx.get(url, headers=headers).json()
        if status["status"] == "done" or time.monotonic() > deadline:
            return status
        time.sleep(0.2)


def rows_left(client: Any, pk: str, wait_seconds: float = 30) -> list[dict[str, Any]]:
    """The partition's rows once the cascade has emptied it, or as they are after the wait."""
    deadline = time.monotonic() + wait_seconds
    while True:
        rows = rows_of(client, TABLE, pk)
        if not rows or time.monotonic() > deadline:
            return rows
        time.sleep(0.2)
