"""Security on the local server: tokens are verified like API Gateway does, and no user can reach
another user's data through any route (404, never 403, and nothing changes)."""

from __future__ import annotations

from typing import Any, cast

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from chat_sessions.edge.routes import ROUTES
from chat_sessions_local.issuer import DEV_AUDIENCE, DevIssuer

ALICE, BOB = "alice", "bob"


def auth(issuer: DevIssuer, user: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {issuer.mint(user)}"}


@pytest.fixture
def alice_session(local_api: Any, dev_issuer: DevIssuer) -> dict[str, Any]:
    """Alice's session with two messages and a branch; returns what she sees of it."""
    headers = auth(dev_issuer, ALICE)
    body = {"session_id": "alice-chat", "title": "Private", "metadata": {"k": "v"}}
    assert local_api.post("/v1/sessions", json=body, headers=headers).status_code == 201
    items = [{"role": "user", "content": "my secret"}, {"role": "user", "content": "another"}]
    response = local_api.post(
        "/v1/sessions/alice-chat/messages", json={"items": items}, headers=headers
    )
    assert response.status_code == 201
    fork = {"name": "Mine", "activate": False}
    response = local_api.post("/v1/sessions/alice-chat/branches", json=fork, headers=headers)
    assert response.status_code == 201
    return alice_view(local_api, dev_issuer)


def alice_view(local_api: Any, issuer: DevIssuer) -> dict[str, Any]:
    headers = auth(issuer, ALICE)
    session = local_api.get("/v1/sessions/alice-chat", headers=headers).json()
    messages = local_api.get("/v1/sessions/alice-chat/messages", headers=headers).json()
    branches = local_api.get("/v1/sessions/alice-chat/branches", headers=headers).json()
    return {"session": session, "messages": messages, "branches": branches}


# Every route Bob could aim at Alice's session, with a body that would change it.
BOB_ATTEMPTS: dict[tuple[str, str], dict[str, Any]] = {
    ("GET", "/v1/sessions/{session_id}"): {},
    ("PATCH", "/v1/sessions/{session_id}"): {"json": {"title": "pwned"}},
    ("DELETE", "/v1/sessions/{session_id}"): {},
    ("GET", "/v1/sessions/{session_id}/messages"): {},
    ("POST", "/v1/sessions/{session_id}/messages"): {
        "json": {"items": [{"role": "user", "content": "x"}]}
    },
    ("DELETE", "/v1/sessions/{session_id}/messages"): {},
    ("DELETE", "/v1/sessions/{session_id}/messages/last"): {},
    ("GET", "/v1/sessions/{session_id}/branches"): {},
    ("POST", "/v1/sessions/{session_id}/branches"): {"json": {"from_seq": 0}},
    ("GET", "/v1/sessions/{session_id}/branches/{branch_id}"): {},
    ("PATCH", "/v1/sessions/{session_id}/branches/{branch_id}"): {
        "json": {"name": "pwned", "active": True}
    },
    ("DELETE", "/v1/sessions/{session_id}/branches/{branch_id}"): {},
    ("POST", "/v1/sessions/{session_id}/chat"): {"json": {"message": "tell me her secrets"}},
    ("POST", "/v1/sessions/{session_id}/title"): {},
}


def test_the_matrix_covers_every_session_route() -> None:
    session_routes = {r for r in ROUTES if "{session_id}" in r[1]}
    assert set(BOB_ATTEMPTS) == session_routes


@pytest.mark.parametrize(("method", "path"), sorted(BOB_ATTEMPTS))
def test_another_user_gets_404_and_changes_nothing(
    local_api: Any, dev_issuer: DevIssuer, alice_session: dict[str, Any], method: str, path: str
) -> None:
    _, her_branch = alice_session["branches"]["branches"]  # main, then hers
    url = path.replace("{session_id}", "alice-chat").replace("{branch_id}", her_branch["branch_id"])
    response = local_api.request(
        method, url, headers=auth(dev_issuer, BOB), **BOB_ATTEMPTS[(method, path)]
    )

    if method == "DELETE" and path == "/v1/sessions/{session_id}":
        assert response.status_code == 204  # idempotent delete: Bob's (absent) session
    else:
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "session_not_found"
    assert alice_view(local_api, dev_issuer) == alice_session


def test_lists_and_creates_are_per_user(
    local_api: Any, dev_issuer: DevIssuer, alice_session: dict[str, Any]
) -> None:
    bob = auth(dev_issuer, BOB)
    assert local_api.get("/v1/sessions", headers=bob).json() == {
        "sessions": [],
        "next_cursor": None,
    }

    # The same id creates Bob's own session; Alice's is untouched.
    created = local_api.post("/v1/sessions", json={"session_id": "alice-chat"}, headers=bob)
    assert (created.status_code, created.json()["message_count"]) == (201, 0)
    assert alice_view(local_api, dev_issuer) == alice_session


def test_the_body_cannot_name_a_user(local_api: Any, dev_issuer: DevIssuer) -> None:
    response = local_api.post(
        "/v1/sessions", json={"session_id": "x", "user_id": ALICE}, headers=auth(dev_issuer, BOB)
    )
    assert response.status_code == 422
    assert response.json()["error"]["details"][0]["loc"] == ["body", "user_id"]


def _other_key_token(issuer: DevIssuer, *, kid: str) -> str:
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    claims = {"iss": issuer.url, "aud": DEV_AUDIENCE, "sub": ALICE, "exp": 4102444800}
    return jwt.encode(claims, stranger, algorithm="RS256", headers={"kid": kid})


TOKENS: dict[str, Any] = {
    "missing": lambda issuer: None,
    "not bearer": lambda issuer: f"Basic {issuer.mint(ALICE)}",
    "empty bearer": lambda issuer: "Bearer ",
    "malformed": lambda issuer: "Bearer not.a.jwt",
    "expired": lambda issuer: f"Bearer {issuer.mint(ALICE, ttl_seconds=-120)}",
    "wrong audience": lambda issuer: f"Bearer {issuer.mint(ALICE, audience='someone-else')}",
    "wrong issuer": lambda issuer: f"Bearer {issuer.mint(ALICE, issuer='https://evil.example')}",
    "bad signature": lambda issuer: f"Bearer {_other_key_token(issuer, kid=issuer.key_id)}",
    "unknown key id": lambda issuer: f"Bearer {_other_key_token(issuer, kid='unknown')}",
    "alg none": lambda issuer: (
        "Bearer "
        + jwt.encode(
            {"iss": issuer.url, "aud": DEV_AUDIENCE, "sub": ALICE, "exp": 4102444800},
            cast(Any, None),  # an unsigned token
            algorithm="none",
        )
    ),
    "tampered payload": lambda issuer: "Bearer " + _swap_sub(issuer.mint(ALICE)),
}


def _swap_sub(token: str) -> str:
    header, _, signature = token.split(".")
    claims = jwt.decode(token, options={"verify_signature": False})
    forged = jwt.utils.base64url_encode(
        jwt.api_jws.json.dumps({**claims, "sub": BOB}).encode()  # type: ignore[attr-defined]
    ).decode()
    return f"{header}.{forged}.{signature}"


@pytest.mark.parametrize("backend", ["moto"])  # rejected before any storage is touched
@pytest.mark.parametrize("case", sorted(TOKENS))
@pytest.mark.parametrize(("method", "path"), sorted(r for r in ROUTES if r[1] != "/v1/health"))
def test_bad_tokens_get_401_on_every_route(
    local_api: Any, dev_issuer: DevIssuer, case: str, method: str, path: str
) -> None:
    value = TOKENS[case](dev_issuer)
    headers = {} if value is None else {"Authorization": value}

    response = local_api.request(method, path.replace("{session_id}", "any"), headers=headers)

    assert response.status_code == 401
    assert response.json()["error"]["code"] == "unauthorized"
    assert response.headers["WWW-Authenticate"] == "Bearer"


def test_clock_skew_is_tolerated_within_limits(local_api: Any, dev_issuer: DevIssuer) -> None:
    just_expired = dev_issuer.mint(ALICE, ttl_seconds=-10)  # within the 30 s allowance
    response = local_api.get("/v1/sessions", headers={"Authorization": f"Bearer {just_expired}"})
    assert response.status_code == 200


def test_health_needs_no_token(local_api: Any) -> None:
    assert local_api.get("/v1/health").json() == {"status": "ok"}


def test_issuer_publishes_its_keys(local_api: Any, dev_issuer: DevIssuer) -> None:
    configuration = local_api.get("/.well-known/openid-configuration").json()
    keys = local_api.get("/.well-known/jwks.json").json()["keys"]

    assert configuration["issuer"] == dev_issuer.url
    assert [k["kid"] for k in keys] == [dev_issuer.key_id]
    assert "d" not in keys[0]  # public half only
