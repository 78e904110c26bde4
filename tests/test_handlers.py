"""Every function, resolved from template.yaml, answers each of its sample events (moto)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

import pytest
from handlers import (
    EVENTS,
    LambdaContext,
    event_files,
    function_of,
    functions,
    handler_of,
    http_event_files,
    invoke,
)

from chat_sessions import ChatStore, service
from chat_sessions.config import get_settings
from chat_sessions.edge.routes import ROUTES
from chat_sessions.idempotency import derived_session_id
from chat_sessions_local.seed import ENCODED_ID, SAMPLE_DELETION_ID

OWNER = "user-123"
ABSENT_BRANCH = "b_kx4mfa5oct3kncjfjnvb"
"""A well-formed branch id the sample events name and the seeded sessions do not have."""


pytestmark = pytest.mark.usefixtures("api_store")


def session_unchanged(store: ChatStore) -> None:
    session, messages = store.read_newest(OWNER, "trip-2026", None)
    assert (session.title, session.message_count, len(messages)) == ("Lisbon trip", 3, 3)


def error(code: str) -> Callable[[Any, ChatStore], None]:
    def check(body: Any, store: ChatStore) -> None:
        assert set(body) == {"error"}
        assert body["error"]["code"] == code
        assert body["error"]["message"]
        session_unchanged(store)

    return check


def created_weekend(body: Any, store: ChatStore) -> None:
    assert body["session_id"] == "weekend-plans"
    assert (body["title"], body["metadata"], body["message_count"]) == (
        "Weekend plans",
        {"topic": "travel"},
        0,
    )
    assert body["created_at"].endswith("Z")
    assert store.get_session(OWNER, "weekend-plans").title == "Weekend plans"


def created_short_lived(body: Any, store: ChatStore) -> None:
    assert (body["session_id"], body["ttl_seconds"]) == ("support-chat", 1800)
    session = store.get_session(OWNER, "support-chat")
    assert (session.expires_at - session.updated_at).total_seconds() == pytest.approx(1800, abs=1)


def existing_unchanged(body: Any, store: ChatStore) -> None:
    assert (body["session_id"], body["title"], body["message_count"]) == (
        "trip-2026",
        "Lisbon trip",
        3,
    )
    session_unchanged(store)


def listed(body: Any, store: ChatStore) -> None:
    assert [s["session_id"] for s in body["sessions"]] == [ENCODED_ID, "empty-chat", "trip-2026"]
    assert body["next_cursor"] is None


def filtered(body: Any, store: ChatStore) -> None:
    assert [s["session_id"] for s in body["sessions"]] == ["trip-2026"]


def got(body: Any, store: ChatStore) -> None:
    assert set(body) == {
        "session_id",
        "title",
        "metadata",
        "message_count",
        "created_at",
        "updated_at",
        "expires_at",
        "ttl_seconds",
        "usage",
        "active_branch",
        "turn_in_progress",
    }
    assert (body["title"], body["message_count"], body["active_branch"]) == (
        "Lisbon trip",
        3,
        "main",
    )
    assert body["turn_in_progress"] is None  # no chat turn holds the lease


def got_encoded(body: Any, store: ChatStore) -> None:
    assert body["session_id"] == ENCODED_ID


def updated(body: Any, store: ChatStore) -> None:
    assert (body["title"], body["metadata"]) == (
        "Lisbon in May",
        {"topic": "travel", "city": "Lisbon"},
    )
    assert store.get_session(OWNER, "trip-2026").title == "Lisbon in May"


def deleted(body: Any, store: ChatStore) -> None:
    assert body is None
    assert [s.session_id for s in store.list_sessions(OWNER).sessions] == [ENCODED_ID, "empty-chat"]


def nothing_deleted(body: Any, store: ChatStore) -> None:
    assert body is None
    session_unchanged(store)


def messages_desc(body: Any, store: ChatStore) -> None:
    first, second = body["messages"]
    assert (first["role"], first["type"], first["text"]) == ("user", "message", "Which is quieter?")
    assert (second["role"], second["text"]) == ("assistant", "Alfama or Chiado.")
    assert second["item"]["content"][0]["annotations"] == []
    assert first["seq"] > second["seq"]
    assert body["next_cursor"] is not None


def appended(body: Any, store: ChatStore) -> None:
    assert body["appended"] == 4 and body["last_seq"] - body["first_seq"] == 3
    session, messages = store.read_newest(OWNER, "trip-2026", 4)
    assert session.message_count == 7
    assert [m.seq for m in messages] == list(range(body["first_seq"], body["last_seq"] + 1))
    assert [m.item.get("type", "message") for m in messages] == [
        "message",
        "function_call",
        "function_call_output",
        "message",
    ]


def cleared(body: Any, store: ChatStore) -> None:
    assert body is None
    session, messages = store.read_newest(OWNER, "trip-2026", None)
    assert (session.title, session.message_count, messages) == ("Lisbon trip", 0, [])


def popped(body: Any, store: ChatStore) -> None:
    assert body["message"]["text"] == "Which is quieter?"
    assert store.get_session(OWNER, "trip-2026").message_count == 2


BRANCH_FIELDS = {
    "branch_id",
    "name",
    "parent_branch",
    "fork_seq",
    "message_count",
    "created_at",
    "updated_at",
    "active",
}


def is_main(branch: Any) -> None:
    assert set(branch) == BRANCH_FIELDS
    assert (branch["branch_id"], branch["name"], branch["parent_branch"], branch["fork_seq"]) == (
        "main",
        None,
        None,
        None,
    )
    assert (branch["message_count"], branch["active"]) == (3, True)
    assert branch["created_at"].endswith("Z")


def listed_branches(body: Any, store: ChatStore) -> None:
    (main,) = body["branches"]
    is_main(main)
    assert body["next_cursor"] is None


def got_main(body: Any, store: ChatStore) -> None:
    is_main(body)
    session_unchanged(store)


def activated_main(body: Any, store: ChatStore) -> None:
    is_main(body)
    assert store.get_session(OWNER, "trip-2026").active_branch == "main"


def forked(body: Any, store: ChatStore) -> None:
    _, main = store.read_newest(OWNER, "trip-2026", None, branch="main")
    assert set(body) == BRANCH_FIELDS
    assert (body["name"], body["parent_branch"], body["fork_seq"]) == (
        "Quieter areas",
        "main",
        main[-1].seq,
    )
    assert (body["message_count"], body["active"]) == (3, True)
    assert store.get_session(OWNER, "trip-2026").active_branch == body["branch_id"]
    assert len(main) == 3  # main is as it was


def forked_empty(body: Any, store: ChatStore) -> None:
    assert (body["name"], body["fork_seq"], body["message_count"], body["active"]) == (
        "Start over",
        0,
        0,
        False,
    )
    assert store.get_branch(OWNER, "trip-2026", body["branch_id"]).message_count == 0
    session_unchanged(store)  # main, still active


def no_branch_deleted(body: Any, store: ChatStore) -> None:
    assert body is None
    assert [b.branch_id for b in store.list_branches(OWNER, "trip-2026").branches] == ["main"]
    session_unchanged(store)


def healthy(body: Any, store: ChatStore) -> None:
    assert body == {"status": "ok"}


def generated(body: Any, store: ChatStore) -> None:
    assert len(body["session_id"]) == 32
    assert body["title"] == "Untitled chat"


def chatted(body: Any, store: ChatStore) -> None:
    assert body["session_id"] == "trip-2026"
    assert body["output"].startswith("(offline model)")
    _, messages = store.read_newest(OWNER, "trip-2026", 2)
    question, answer = (m.item for m in messages)
    assert question == {"role": "user", "content": "Which of these has better reviews?"}
    assert body["new_items"] == [answer]


def chatted_new(body: Any, store: ChatStore) -> None:
    session, messages = store.read_newest(OWNER, body["session_id"], None)
    assert (session.message_count, messages[0].item["content"]) == (2, "Plan a weekend in Porto")


def chatted_keyed(body: Any, store: ChatStore) -> None:
    # The new session's id comes from the key, so a retry finds the first call's record there.
    assert body["session_id"] == derived_session_id("b7e2d4a0-5c3f-4e19-8a6b-2d9c1f0e7a43")
    chatted_new(body, store)


def deletion_requested(body: Any, store: ChatStore) -> None:
    assert (body["status"], body["sessions_deleted"], body["completed_at"]) == ("pending", 0, None)
    assert store.get_deletion(OWNER, body["deletion_id"]).status == "pending"
    session_unchanged(store)  # the stream consumer deletes, later


def deletion_reported(body: Any, store: ChatStore) -> None:
    assert (body["deletion_id"], body["status"]) == (SAMPLE_DELETION_ID, "pending")
    assert body["requested_at"].endswith("Z")


def not_allowed(body: Any, store: ChatStore) -> None:
    error("method_not_allowed")(body, store)


EXPECTED: dict[str, tuple[int, Callable[[Any, ChatStore], None]]] = {
    "create_session.json": (201, created_weekend),
    "create_session__generated_id.json": (201, generated),
    "create_session__existing.json": (200, existing_unchanged),
    "create_session__short_ttl.json": (201, created_short_lived),
    "create_session__ttl_out_of_range.json": (422, error("invalid_input")),
    "create_session__unknown_field.json": (422, error("validation_failed")),
    "create_session__malformed_json.json": (400, error("malformed_json")),
    "create_session__bad_metadata.json": (422, error("validation_failed")),
    "create_session__no_identity.json": (401, error("unauthorized")),
    "list_sessions.json": (200, listed),
    "list_sessions__metadata_filter.json": (200, filtered),
    "list_sessions__bad_cursor.json": (400, error("invalid_cursor")),
    "list_sessions__limit_out_of_range.json": (422, error("validation_failed")),
    "get_session.json": (200, got),
    "get_session__other_user.json": (404, error("session_not_found")),
    "get_session__missing.json": (404, error("session_not_found")),
    "get_session__bad_id.json": (422, error("validation_failed")),
    "get_session__encoded_id.json": (200, got_encoded),
    "update_session.json": (200, updated),
    "update_session__wrong_type.json": (422, error("validation_failed")),
    "delete_session.json": (204, deleted),
    "delete_session__absent.json": (204, nothing_deleted),
    "delete_all_sessions.json": (202, deletion_requested),
    "delete_all_sessions__unconfirmed.json": (422, error("confirmation_required")),
    "get_deletion.json": (200, deletion_reported),
    "get_deletion__missing.json": (404, error("deletion_not_found")),
    "list_messages.json": (200, messages_desc),
    "list_messages__bad_order.json": (422, error("validation_failed")),
    "append_messages.json": (201, appended),
    "append_messages__idempotency_key.json": (201, appended),
    "append_messages__empty_items.json": (422, error("validation_failed")),
    "append_messages__other_user.json": (404, error("session_not_found")),
    "append_messages__tool_call_untrusted.json": (403, error("item_not_allowed")),
    "clear_messages.json": (204, cleared),
    "pop_message.json": (200, popped),
    "pop_message__empty.json": (404, error("message_not_found")),
    "list_messages__branch.json": (200, messages_desc),
    "list_messages__unknown_branch.json": (404, error("branch_not_found")),
    "append_messages__bad_branch.json": (422, error("validation_failed")),
    "clear_messages__unknown_branch.json": (404, error("branch_not_found")),
    "pop_message__unknown_branch.json": (404, error("branch_not_found")),
    "list_branches.json": (200, listed_branches),
    "list_branches__missing_session.json": (404, error("session_not_found")),
    "create_branch.json": (201, forked),
    "create_branch__from_the_start.json": (201, forked_empty),
    "create_branch__unknown_message.json": (404, error("message_not_found")),
    "create_branch__unknown_field.json": (422, error("validation_failed")),
    "get_branch.json": (200, got_main),
    "get_branch__unknown.json": (404, error("branch_not_found")),
    "get_branch__bad_id.json": (422, error("validation_failed")),
    "update_branch.json": (200, activated_main),
    "update_branch__name_main.json": (409, error("main_branch")),
    "update_branch__nothing.json": (422, error("validation_failed")),
    "update_branch__unknown.json": (404, error("branch_not_found")),
    "delete_branch.json": (204, no_branch_deleted),
    "delete_branch__main.json": (409, error("main_branch")),
    "delete_branch__missing_session.json": (404, error("session_not_found")),
    "health.json": (200, healthy),
    "route_not_found.json": (404, error("route_not_found")),
    "route_not_found__wrong_method.json": (405, not_allowed),
    "chat_buffered.json": (200, chatted),
    "chat_buffered__new_session.json": (200, chatted_new),
    "chat_buffered__idempotency_key.json": (200, chatted_keyed),
    "chat_buffered__empty_message.json": (422, error("validation_failed")),
    "chat_buffered__other_user.json": (404, error("session_not_found")),
    "chat_buffered__title_set_by_user.json": (409, error("title_set_by_user")),
}


@pytest.mark.parametrize("event_file", http_event_files())
def test_function_answers_its_event(event_file: str, api_store: ChatStore) -> None:
    status, headers, body = invoke(event_file)

    expected_status, check = EXPECTED[event_file]
    assert status == expected_status, body
    check(body, api_store)
    if body is not None:
        content_type = {k.lower(): v for k, v in headers.items()}["content-type"]
        assert content_type == "application/json"


def test_every_event_is_expected_and_every_function_has_one() -> None:
    files = event_files()
    event_driven = {n for n, f in functions().items() if f["Properties"]["Handler"] != "run.sh"}
    assert set(http_event_files()) == set(EXPECTED)
    assert {function_of(f) for f in files} == event_driven  # run.sh: HTTP via the Web Adapter


def test_a_deletion_request_says_where_to_follow_it() -> None:
    status, headers, body = invoke("delete_all_sessions.json")
    assert (status, headers["Location"]) == (202, f"/v1/deletions/{body['deletion_id']}")


def test_wrong_method_lists_the_allowed_ones() -> None:
    status, headers, _ = invoke("route_not_found__wrong_method.json")
    assert (status, headers["Allow"]) == (405, "GET, PATCH, DELETE")


def test_events_use_their_functions_route() -> None:
    """Each event's routeKey is the route its function is wired to in template.yaml."""
    for event_file in http_event_files():
        event = json.loads((EVENTS / event_file).read_text())
        wiring = functions()[function_of(event_file)]["Properties"]["Events"]
        routes = {
            f"{p['Method']} {p['Path']}" if "Path" in p else "$default"
            for p in (source["Properties"] for source in wiring.values())
        }
        assert event["routeKey"] in routes, event_file


def test_template_routes_are_the_api_routes() -> None:
    wired = {
        (e["Properties"]["Method"], e["Properties"]["Path"])
        for f in functions().values()
        for e in f["Properties"].get("Events", {}).values()
        if "Path" in e["Properties"]
    }
    assert wired == set(ROUTES)


# -------------------------------------------------------------------------------- least privilege

# A staged write (a turn or batch too large for one transaction) checks its reservation in each
# staging transaction (ConditionCheckItem) and may revoke a dead writer's, deleting its rows.
STAGING_ACTIONS = {"dynamodb:ConditionCheckItem", "dynamodb:BatchWriteItem"}
CHAT_ACTIONS = {
    "dynamodb:UpdateItem",
    "dynamodb:Query",
    "dynamodb:GetItem",
    "dynamodb:PutItem",
    "dynamodb:BatchGetItem",
    "ssm:GetParameter",
    *STAGING_ACTIONS,
}
# What each function may do; reviewed by hand. The test below checks the template grants exactly
# this, and that answering the sample events never needs more.
ACTIONS: dict[str, set[str]] = {
    "create_session": {"dynamodb:PutItem", "dynamodb:GetItem"},
    "list_sessions": {"dynamodb:Query"},
    "get_session": {"dynamodb:GetItem"},
    "update_session": {"dynamodb:UpdateItem"},
    "delete_session": {"dynamodb:DeleteItem"},
    "list_messages": {"dynamodb:GetItem", "dynamodb:Query", "dynamodb:BatchGetItem"},
    # Query: a retention trim reads the oldest rows.
    "append_messages": {
        "dynamodb:UpdateItem",
        "dynamodb:PutItem",
        "dynamodb:GetItem",
        "dynamodb:Query",
        *STAGING_ACTIONS,
    },
    # On a branch other than main, a clear and a pop read the header (GetItem) and the branch
    # (BatchGetItem), and rewrite or delete the base it shares (PutItem, DeleteItem).
    "clear_messages": {
        "dynamodb:UpdateItem",
        "dynamodb:PutItem",
        "dynamodb:GetItem",
        "dynamodb:BatchGetItem",
        "dynamodb:DeleteItem",
    },
    "pop_message": {
        "dynamodb:Query",
        "dynamodb:BatchGetItem",
        "dynamodb:DeleteItem",
        "dynamodb:UpdateItem",
        "dynamodb:GetItem",
        "dynamodb:PutItem",
    },
    # Branches: the header (GetItem), then the branch's record and base (BatchGetItem).
    "list_branches": {"dynamodb:GetItem", "dynamodb:Query"},
    "create_branch": {
        "dynamodb:GetItem",
        "dynamodb:BatchGetItem",
        "dynamodb:Query",
        "dynamodb:PutItem",
        "dynamodb:UpdateItem",
        "dynamodb:ConditionCheckItem",
    },
    "get_branch": {"dynamodb:GetItem", "dynamodb:BatchGetItem"},
    "update_branch": {
        "dynamodb:GetItem",
        "dynamodb:BatchGetItem",
        "dynamodb:UpdateItem",
        "dynamodb:ConditionCheckItem",
    },
    "delete_branch": {
        "dynamodb:GetItem",
        "dynamodb:BatchGetItem",
        "dynamodb:DeleteItem",
        "dynamodb:PutItem",
        "dynamodb:UpdateItem",
    },
    # The stream consumer: purges (Query + BatchWriteItem), trim markers (GetItem + DeleteItem),
    # delete-all requests (index Query + BatchWriteItem, progress by UpdateItem).
    "cascade": {
        "dynamodb:Query",
        "dynamodb:GetItem",
        "dynamodb:DeleteItem",
        "dynamodb:BatchWriteItem",
        "dynamodb:UpdateItem",
    },
    "delete_all_sessions": {"dynamodb:PutItem"},
    "get_deletion": {"dynamodb:GetItem"},
    "health": set(),
    "route_not_found": set(),
    # A turn: lease + window + commit; SSM for the model key.
    "chat": CHAT_ACTIONS,
    "chat_buffered": CHAT_ACTIONS,
}
_TRANSACTION_ACTIONS = {
    "Put": "PutItem",
    "Update": "UpdateItem",
    "Delete": "DeleteItem",
    "ConditionCheck": "ConditionCheckItem",
}


def record_actions() -> set[str]:
    """The IAM actions the process-wide store's calls need, from now on."""
    used: set[str] = set()

    def record(params: dict[str, Any], model: Any, **_: Any) -> None:
        if model.name == "TransactWriteItems":
            for action in params["TransactItems"]:
                used.update(f"dynamodb:{_TRANSACTION_ACTIONS[kind]}" for kind in action)
        else:
            used.add(f"dynamodb:{model.name}")

    service.get_store().client.meta.events.register("before-parameter-build.dynamodb", record)
    return used


def granted(function: str) -> set[str]:
    policies = functions()[function]["Properties"].get("Policies", [])
    return {
        action
        for policy in policies
        for statement in policy["Statement"]
        for action in statement["Action"]
    }


def test_only_the_chat_functions_read_the_model_key() -> None:
    readers = {name for name in functions() if any(a.startswith("ssm:") for a in granted(name))}
    assert readers == {"chat", "chat_buffered"}


def test_template_grants_exactly_the_reviewed_actions() -> None:
    assert {name: granted(name) for name in functions()} == ACTIONS


@pytest.mark.parametrize("event_file", http_event_files())
def test_answering_an_event_needs_no_more_than_granted(event_file: str) -> None:
    used = record_actions()
    status, _, _ = invoke(event_file)

    assert used <= granted(function_of(event_file))
    if status < 400 and granted(function_of(event_file)):
        assert used, "the recorder saw no DynamoDB call"


def test_an_append_that_trims_to_the_retention_cap_needs_no_more_than_granted(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CHAT_SESSIONS_MAX_STORED_ITEMS", "5")  # 3 stored + 4 appended
    get_settings.cache_clear()
    service.get_store.cache_clear()
    calls: list[str] = []
    service.get_store().client.meta.events.register(
        "before-call.dynamodb", lambda model, **_: calls.append(model.name)
    )
    used = record_actions()

    status, _, body = invoke("append_messages.json")

    assert (status, body["appended"]) == (201, 4)
    assert calls == ["TransactWriteItems", "Query", "TransactWriteItems"]  # no read-back
    count = service.get_store().get_session(OWNER, "trip-2026").message_count
    assert count == 5  # the first turn (2 of 3 rows) went
    assert used <= granted("append_messages")


def test_a_staged_append_after_a_dead_writer_needs_no_more_than_granted(
    api_store: ChatStore,
) -> None:
    pk = {"S": "user-123#trip-2026"}
    orphan = 10**15  # above last_seq: what a writer that died mid-batch left
    api_store.client.update_item(
        TableName=api_store.table_name,
        Key={"pk": pk, "sk": {"S": "SESSION"}},
        UpdateExpression="SET staging_id = :dead, staging_first = :seq, staging_last = :seq, "
        "reserved_seq = :seq, staging_until = :lapsed",
        ExpressionAttributeValues={
            ":dead": {"S": "dead"},
            ":seq": {"N": str(orphan)},
            ":lapsed": {"N": "1"},
        },
    )
    api_store.client.put_item(
        TableName=api_store.table_name,
        Item={"pk": pk, "sk": {"S": f"MSG#{orphan:020d}"}, "item": {"S": "{}"}},
    )
    event = json.loads((EVENTS / "append_messages.json").read_text())
    items = [{"role": "user", "content": f"m{i}"} for i in range(150)]
    event["body"] = json.dumps({"items": items})
    used = record_actions()

    response = handler_of("append_messages")(event, LambdaContext())

    assert response["statusCode"] == 201, response["body"]
    session, stored = api_store.read_newest(OWNER, "trip-2026", None)
    assert (session.message_count, len(stored)) == (153, 153)  # the orphan is gone, unseen
    assert used >= STAGING_ACTIONS  # the revoke and the staging both ran
    assert used <= granted("append_messages")


def test_list_sessions_may_only_query_the_index() -> None:
    (policy,) = functions()["list_sessions"]["Properties"]["Policies"]
    (statement,) = policy["Statement"]
    assert statement["Resource"] == [{"Sub": "${ChatTable.Arn}/index/sessions_by_activity"}]


# --------------------------------------------------------------------------- a branch of one's own


def on_branch(event_file: str, branch_id: str, body: Any = None) -> dict[str, Any]:
    """The sample event for ``branch_id``: in the path of a branch route, else as ``?branch=``."""
    event: dict[str, Any] = json.loads((EVENTS / event_file).read_text())
    if "branch_id" in event["pathParameters"]:
        path = event["rawPath"].rsplit("/", 1)[0] + f"/{branch_id}"
        event["rawPath"] = event["requestContext"]["http"]["path"] = path
        event["pathParameters"]["branch_id"] = branch_id
    else:
        query = {**(event.get("queryStringParameters") or {}), "branch": branch_id}
        event["queryStringParameters"], event["rawQueryString"] = query, urlencode(query)
    if body is not None:
        event["body"] = json.dumps(body)
    return event


def answer(event_file: str, event: dict[str, Any]) -> tuple[int, Any]:
    """Status and body of the event's function answering ``event``, which needs no more than
    the function is granted."""
    used = record_actions()
    response = handler_of(function_of(event_file))(event, LambdaContext())
    assert used <= granted(function_of(event_file)), event_file
    body = response.get("body")
    return response["statusCode"], json.loads(body) if body else None


def test_a_branch_is_read_renamed_activated_listed_and_deleted(api_store: ChatStore) -> None:
    branch = api_store.fork_branch(OWNER, "trip-2026", activate=False).branch_id

    status, got = answer("get_branch__unknown.json", on_branch("get_branch__unknown.json", branch))
    assert (status, got["branch_id"], got["parent_branch"], got["active"]) == (
        200,
        branch,
        "main",
        False,
    )
    event = on_branch("update_branch__unknown.json", branch)
    assert answer("update_branch__unknown.json", event)[1]["name"] == "Draft"
    event = on_branch("update_branch.json", branch, {"name": "Quieter", "active": True})
    status, both = answer("update_branch.json", event)
    assert (status, both["name"], both["active"]) == (200, "Quieter", True)
    event = on_branch("update_branch.json", branch, {"name": None})
    assert answer("update_branch.json", event)[1]["name"] is None
    status, listed = answer(
        "list_branches.json", json.loads((EVENTS / "list_branches.json").read_text())
    )
    assert [(b["branch_id"], b["active"]) for b in listed["branches"]] == [
        ("main", False),
        (branch, True),
    ]
    assert api_store.get_session(OWNER, "trip-2026").active_branch == branch

    for _ in range(2):  # idempotent
        assert answer("delete_branch.json", on_branch("delete_branch.json", branch)) == (204, None)
    assert (
        answer("get_branch__unknown.json", on_branch("get_branch__unknown.json", branch))[0] == 404
    )
    session_unchanged(api_store)  # main, active again


def test_the_message_routes_read_and_write_the_branch_they_name(api_store: ChatStore) -> None:
    _, main = api_store.read_newest(OWNER, "trip-2026", None)
    fork = api_store.fork_branch(OWNER, "trip-2026", at_seq=main[0].seq, activate=False)
    branch = fork.branch_id

    status, listed = answer("list_messages.json", on_branch("list_messages.json", branch))
    assert (status, [m["text"] for m in listed["messages"]]) == (200, ["Find hotels in Lisbon"])
    status, appended = answer("append_messages.json", on_branch("append_messages.json", branch))
    assert (status, appended["appended"]) == (201, 4)
    assert api_store.get_branch(OWNER, "trip-2026", branch).message_count == 5
    status, popped = answer("pop_message.json", on_branch("pop_message.json", branch))
    assert (status, popped["message"]["role"]) == (200, "assistant")
    assert answer("clear_messages.json", on_branch("clear_messages.json", branch)) == (204, None)
    _, stored = api_store.read_newest(OWNER, "trip-2026", None, branch=branch)
    assert stored == []
    session_unchanged(api_store)  # main: the same 3 messages


def test_an_idempotency_key_names_the_branch_it_was_sent_with(api_store: ChatStore) -> None:
    branch = api_store.fork_branch(OWNER, "trip-2026", activate=False).branch_id
    keyed = "append_messages__idempotency_key.json"

    first = handler_of("append_messages")(on_branch(keyed, branch), LambdaContext())
    again = handler_of("append_messages")(on_branch(keyed, branch), LambdaContext())
    elsewhere = invoke(keyed)  # the same key and body, on the active branch (main)

    assert (first["statusCode"], again["statusCode"]) == (201, 201)
    assert again["headers"]["Idempotent-Replayed"] == "true"
    assert (elsewhere[0], elsewhere[2]["error"]["code"]) == (422, "idempotency_key_reused")
    assert api_store.get_branch(OWNER, "trip-2026", branch).message_count == 7
    session_unchanged(api_store)


def test_a_pop_of_a_message_a_branch_shares_keeps_it_for_that_branch(
    api_store: ChatStore,
) -> None:
    branch = api_store.fork_branch(OWNER, "trip-2026", activate=False)  # shares all 3

    status, _, body = invoke("pop_message.json")

    assert status == 200
    _, main = api_store.read_newest(OWNER, "trip-2026", None, branch="main")
    _, shared = api_store.read_newest(OWNER, "trip-2026", None, branch=branch.branch_id)
    assert body["message"]["seq"] == shared[-1].seq
    assert (len(main), len(shared)) == (2, 3)
