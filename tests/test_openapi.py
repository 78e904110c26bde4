"""docs/openapi.json is generated from the code, must not go stale, and must be usable: tagged,
described operations with examples that fit their schemas, the metadata filter, the chat stream's
events, and Swagger UI's link to the document."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode

import pytest
from jsonschema_rs import Draft202012Validator

from chat_sessions.edge.routes import ROUTES
from chat_sessions_local.issuer import DevIssuer
from chat_sessions_local.openapi import DOCUMENT, SCHEMAS, openapi_document, render
from chat_sessions_local.operations import OPERATIONS, SESSION

CLIENT_HEADERS = {"accept", "authorization", "content-type"}
"""Set by every HTTP client (Swagger UI too): never parameters of an operation."""


def test_committed_document_is_current() -> None:
    assert DOCUMENT.read_text() == render(), "run `make openapi` and commit docs/openapi.json"


def test_document_describes_every_route_and_the_error_format() -> None:
    document = json.loads(DOCUMENT.read_text())

    described = {
        (method.upper(), path)
        for path, operations in document["paths"].items()
        for method in operations
    }
    assert document["openapi"].startswith("3.1")
    assert described == set(ROUTES)
    for operations in document["paths"].values():
        for operation in operations.values():
            for status in ("400", "401", "404", "422", "500", "503"):
                schema = operation["responses"][status]["content"]["application/json"]["schema"]
                assert schema == {"$ref": "#/components/schemas/ErrorPublic"}


def test_only_health_is_public() -> None:
    document = openapi_document()
    public = [
        path
        for path, operations in document["paths"].items()
        for operation in operations.values()
        if operation.get("security") == []
    ]
    assert public == ["/v1/health"]
    assert document["security"] == [{"bearerAuth": []}]


def operations_of(document: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            yield f"{method.upper()} {path}", operation


def schema_validator(document: dict[str, Any], schema: dict[str, Any]) -> Draft202012Validator:
    """Validates against ``schema`` with the document's components in reach of its $refs."""
    return Draft202012Validator({**schema, "components": document["components"]})


def parsed_stream(text: str) -> list[tuple[str, Any]]:
    """The (event, data) pairs of a Server-Sent Events body; comments are skipped."""
    events = []
    for block in text.strip().split("\n\n"):
        fields = dict(line.split(": ", 1) for line in block.splitlines() if line[:1] != ":")
        if fields:
            events.append((fields["event"], json.loads(fields["data"])))
    return events


def test_every_route_has_an_entry_in_the_operation_table() -> None:
    assert set(OPERATIONS) == {f"{method} {path}" for method, path in ROUTES}


def test_every_operation_has_one_declared_tag_a_summary_a_description_and_its_own_id() -> None:
    document = json.loads(DOCUMENT.read_text())
    declared = [tag["name"] for tag in document["tags"]]

    assert declared == ["sessions", "messages", "branches", "chat", "deletions", "health"]
    assert all(tag["description"] for tag in document["tags"])
    ids = []
    for key, operation in operations_of(document):
        assert len(operation["tags"]) == 1 and operation["tags"][0] in declared, key
        assert operation["summary"] and operation["summary"] != key.split(" ", 1)[1], key
        assert len(operation["description"]) > len(operation["summary"]), key
        assert re.fullmatch(r"[a-z][A-Za-z]+", operation["operationId"]), key
        ids.append(operation["operationId"])
    assert len(ids) == len(set(ids)) == len(ROUTES)
    used = {operation["tags"][0] for _, operation in operations_of(document)}
    assert used == set(declared)


def test_paths_follow_the_operation_table() -> None:
    paths = list(openapi_document()["paths"])

    assert paths == list(dict.fromkeys(key.split(" ", 1)[1] for key in OPERATIONS))


def test_every_query_parameter_is_described_and_the_metadata_filter_is_documented() -> None:
    document = json.loads(DOCUMENT.read_text())
    for key, operation in operations_of(document):
        for parameter in operation.get("parameters", []):
            assert parameter.get("description"), (key, parameter["name"])

    operation = document["paths"]["/v1/sessions"]["get"]
    (metadata,) = [p for p in operation["parameters"] if p["name"] == "metadata"]
    assert (metadata["in"], metadata["style"], metadata["explode"]) == ("query", "form", True)
    assert metadata["schema"]["propertyNames"]["pattern"] == "^metadata\\."
    assert metadata["schema"]["additionalProperties"] == {"type": "string", "maxLength": 512}
    assert "metadata.<key>=<value>" in operation["description"]


@pytest.mark.parametrize("backend", ["moto"])
def test_the_metadata_filter_as_documented_is_what_the_api_reads(
    local_api: Any, dev_issuer: DevIssuer
) -> None:
    headers = {"Authorization": f"Bearer {dev_issuer.mint('mia')}"}
    for session_id, topic in (("lisbon", "travel"), ("taxes", "money")):
        body = {"session_id": session_id, "metadata": {"topic": topic}}
        assert local_api.post("/v1/sessions", json=body, headers=headers).status_code == 201
    parameters = openapi_document()["paths"]["/v1/sessions"]["get"]["parameters"]
    (metadata,) = [p for p in parameters if p["name"] == "metadata"]
    query = urlencode(metadata["example"])  # style form, explode: one pair per property

    listed = local_api.get(f"/v1/sessions?{query}", headers=headers).json()["sessions"]

    assert query == "metadata.topic=travel"
    assert [session["session_id"] for session in listed] == ["lisbon"]


def test_chat_turns_answer_json_or_the_documented_event_stream() -> None:
    document = json.loads(DOCUMENT.read_text())
    schemas = document["components"]["schemas"]
    streams = {
        "/v1/sessions/{session_id}/chat": [
            "turn",
            "token",
            "tool_call",
            "tool_output",
            "done",
            "error",
        ],
        "/v1/chat": ["session", "turn", "token", "tool_call", "tool_output", "done", "error"],
    }
    for path, names in streams.items():
        answer = document["paths"][path]["post"]["responses"]["200"]
        events = answer["content"]["text/event-stream"]["x-sse-events"]

        assert answer["content"]["application/json"]["schema"] == {"$ref": SCHEMAS + "ChatReply"}
        assert sorted(events) == sorted(names)
        for name in names:
            assert events[name]["$ref"].removeprefix(SCHEMAS) in schemas
            assert f"`{name}`" in answer["description"]
    assert schemas["SseDoneEvent"]["required"] == ["message_count", "usage", "title", "branch"]
    assert schemas["SseErrorEvent"]["required"] == ["code", "message", "retryable"]
    assert "retry_after" in schemas["SseErrorEvent"]["properties"]
    assert schemas["SseToolCallEvent"]["required"] == ["name", "call_id", "arguments"]
    assert schemas["SseTurnEvent"]["required"] == ["turn_id", "message", "branch"]


@pytest.mark.parametrize("backend", ["moto"])
def test_a_real_stream_has_the_documented_events(local_api: Any, dev_issuer: DevIssuer) -> None:
    document = openapi_document()
    content = document["paths"]["/v1/chat"]["post"]["responses"]["200"]["content"]
    events = content["text/event-stream"]["x-sse-events"]
    headers = {
        "Authorization": f"Bearer {dev_issuer.mint('mia')}",
        "Accept": "text/event-stream",
    }

    answer = local_api.post("/v1/chat", json={"message": "Plan a weekend"}, headers=headers)
    streamed = parsed_stream(answer.text)

    assert answer.headers["content-type"].startswith("text/event-stream")
    assert (streamed[0][0], streamed[-1][0]) == ("session", "done")
    for name, data in streamed:
        schema_validator(document, events[name]).validate(data)


def test_no_operation_takes_the_headers_clients_set() -> None:
    document = json.loads(DOCUMENT.read_text())
    keyed = set()
    for key, operation in operations_of(document):
        headers = [p for p in operation.get("parameters", []) if p["in"] == "header"]
        assert not {p["name"].lower() for p in headers} & CLIENT_HEADERS, key
        keyed |= {key for p in headers if p["name"] == "idempotency-key" and p["description"]}

    assert keyed == {
        "POST /v1/sessions/{session_id}/messages",
        "POST /v1/sessions/{session_id}/chat",
        "POST /v1/chat",
    }


@pytest.mark.parametrize("backend", ["moto"])
def test_swagger_ui_and_its_json_link(local_api: Any) -> None:
    page = local_api.get("/docs")
    linked = local_api.get("/docs?format=json")

    assert page.headers["content-type"].startswith("text/html")
    assert '"?format=json"' in page.text
    assert linked.headers["content-type"] == "application/json"
    assert linked.json() == local_api.get("/openapi.json").json() == openapi_document()


def test_examples_match_their_schemas() -> None:
    document = json.loads(DOCUMENT.read_text())
    for key, operation in operations_of(document):
        bodies = [operation["requestBody"]] if "requestBody" in operation else []
        bodies += [
            response
            for status, response in operation["responses"].items()
            if status.startswith("2") and "content" in response  # a 204 has none
        ]
        for body in bodies:
            media = body["content"]["application/json"]
            assert media["examples"], key
            for example in media["examples"].values():
                schema_validator(document, media["schema"]).validate(example["value"])
        for parameter in operation.get("parameters", []):
            if "example" in parameter:
                schema_validator(document, parameter["schema"]).validate(parameter["example"])

    wrong = {**SESSION, "message_count": "4"}  # the check resolves $refs and does reject
    assert not schema_validator(document, {"$ref": SCHEMAS + "SessionPublic"}).is_valid(wrong)


def test_stream_examples_match_the_event_schemas() -> None:
    document = json.loads(DOCUMENT.read_text())
    for path in ("/v1/sessions/{session_id}/chat", "/v1/chat"):
        media = document["paths"][path]["post"]["responses"]["200"]["content"]["text/event-stream"]
        assert media["examples"], path
        for example in media["examples"].values():
            streamed = parsed_stream(example["value"])
            names = [name for name, _ in streamed]

            assert names[-1] in {"done", "error"} and not {"done", "error"} & set(names[:-1])
            assert ("session" in names) == (path == "/v1/chat")
            for name, data in streamed:
                schema_validator(document, media["x-sse-events"][name]).validate(data)
