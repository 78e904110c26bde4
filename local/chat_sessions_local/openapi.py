"""docs/openapi.json, generated from the code: each function's own resolver describes its route,
Powertools' OpenAPIMerge joins them, and ``operations.OPERATIONS`` adds what code cannot say
(tags, summaries, descriptions, examples, the chat stream's events).

    make openapi        # rewrite docs/openapi.json (a test fails when it is stale)
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from http import HTTPStatus
from importlib.metadata import version
from typing import Any

from aws_lambda_powertools.event_handler.openapi.merge import OpenAPIMerge
from aws_lambda_powertools.event_handler.openapi.models import HTTPBearer, Server
from pydantic import TypeAdapter

from chat_sessions.edge.routes import PUBLIC_ROUTES
from chat_sessions.http import STATUS_BY_ERROR
from chat_sessions.schemas import ErrorPublic

from . import sam
from .operations import OPERATIONS, PARAMETER_DESCRIPTIONS, SSE_EVENTS, TAGS, Operation
from .tables import TEMPLATE

DOCUMENT = TEMPLATE.parent / "docs" / "openapi.json"
SCHEMAS = "#/components/schemas/"
"""The prefix of a $ref to a component schema."""
CLIENT_HEADERS = frozenset({"accept", "authorization", "content-type"})
"""Headers every HTTP client sets itself (Swagger UI too): never operation parameters."""


def openapi_document() -> dict[str, Any]:
    merge = OpenAPIMerge(
        title="chat-sessions",
        version=version("chat-sessions"),
        description="Sessions and message history for OpenAI Agents SDK apps (docs/api.md).",
        servers=[Server(url="/")],
        security_schemes={"bearerAuth": HTTPBearer(bearerFormat="JWT")},
        security=[{"bearerAuth": []}],
        on_conflict="error",
    )
    behind_the_api = {route.function for route in sam.routes()}  # not the stream consumer
    for function in sorted(behind_the_api):
        if sam.functions()[function]["Properties"]["Handler"] == "run.sh":
            continue  # the chat function URL: the same app as chat_buffered, not behind the API
        merge.add_schema(_schema_of(function))
    document: dict[str, Any] = json.loads(merge.get_openapi_json_schema())
    _describe_errors(document)
    for method, path in PUBLIC_ROUTES:  # served without the authorizer
        document["paths"][path][method.lower()]["security"] = []
    _describe_operations(document)
    return document


def _schema_of(function: str) -> dict[str, Any]:
    """A function's own description of its routes: the Powertools resolver's, or (the buffered
    chat function) the FastAPI app's behind Mangum."""
    app = sam.module_of(function).app
    if hasattr(app, "get_openapi_json_schema"):
        schema: dict[str, Any] = json.loads(app.get_openapi_json_schema())
        return schema
    fastapi_app = app
    routes = {route.key for route in sam.routes() if route.function == function}
    schema = fastapi_app.openapi()
    schema["paths"] = {  # only what the HTTP API routes to this function (not its health check)
        path: {m: op for m, op in ops.items() if f"{m.upper()} {path}" in routes}
        for path, ops in schema["paths"].items()
        if any(f"{m.upper()} {path}" in routes for m in ops)
    }
    return schema


def _describe_errors(document: dict[str, Any]) -> None:
    """Every operation answers errors in the API's one format, with the statuses of the error
    table (``chat_sessions.api.STATUS_BY_ERROR``); Powertools' own error schemas are replaced.
    A 204 is documented without content."""
    schemas = document["components"]["schemas"]
    for name in ("HTTPValidationError", "ValidationError", "ResponseValidationError"):
        schemas.pop(name, None)
    reference = _reference(_add_schema(schemas, TypeAdapter(ErrorPublic)))
    statuses = sorted({*STATUS_BY_ERROR.values(), 500})
    for operations in document["paths"].values():
        for operation in operations.values():
            responses = operation["responses"]
            if "204" in responses:  # a 204 has no body (RFC 9110); Powertools documents JSON null
                responses["204"] = {"description": "No Content"}
            for status in statuses:
                responses[str(status)] = {
                    "description": HTTPStatus(status).phrase,
                    "content": {"application/json": {"schema": reference}},
                }


def _add_schema(schemas: dict[str, Any], adapter: TypeAdapter[Any]) -> dict[str, Any]:
    """Adds the JSON schema of a type (and those it uses) to the components; returns it."""
    schema: dict[str, Any] = adapter.json_schema(ref_template=SCHEMAS + "{model}")
    schemas.update(schema.pop("$defs", {}))
    schemas[schema["title"]] = schema
    return schema


def _reference(schema: dict[str, Any]) -> dict[str, str]:
    return {"$ref": SCHEMAS + schema["title"]}


def _describe_operations(document: dict[str, Any]) -> None:
    """Each operation as ``OPERATIONS`` describes it, in its order, under the declared tags."""
    documented = {
        f"{m.upper()} {p}" for p, operations in document["paths"].items() for m in operations
    }
    if documented != set(OPERATIONS):
        raise LookupError(f"operations.OPERATIONS must describe exactly {sorted(documented)}")
    ordered: dict[str, dict[str, Any]] = {}
    for key, described in OPERATIONS.items():
        method, path = key.split(" ", 1)
        operation = document["paths"][path][method.lower()]
        _describe(operation, described)
        _describe_parameters(operation, described)
        if described.events:
            _describe_stream(operation["responses"]["200"], described, document)
        ordered.setdefault(path, {})[method.lower()] = operation
    document["paths"] = ordered
    document["tags"] = [{"name": name, "description": text} for name, text in TAGS]


def _describe(operation: dict[str, Any], described: Operation) -> None:
    operation.update(
        tags=[described.tag],
        operationId=described.operation_id,
        summary=described.summary,
        description=described.description,
    )
    if described.request_examples:
        body = operation["requestBody"]["content"]["application/json"]
        body["examples"] = _examples(described.request_examples)
    for status, examples in described.response_examples.items():
        answer = operation["responses"][str(status)]["content"]["application/json"]
        answer["examples"] = _examples(examples)


def _describe_parameters(operation: dict[str, Any], described: Operation) -> None:
    """Drops the headers clients set themselves, describes the parameters the code left bare,
    and adds the query parameters the route reads beyond its signature."""
    parameters = [
        parameter
        for parameter in operation.get("parameters", [])
        if not (parameter["in"] == "header" and parameter["name"].lower() in CLIENT_HEADERS)
    ]
    for parameter in parameters:
        if "description" not in parameter and parameter["name"] in PARAMETER_DESCRIPTIONS:
            parameter["description"] = PARAMETER_DESCRIPTIONS[parameter["name"]]
    parameters.extend(described.query_parameters)
    if parameters:
        operation["parameters"] = parameters
    else:
        operation.pop("parameters", None)


def _describe_stream(
    response: dict[str, Any], described: Operation, document: dict[str, Any]
) -> None:
    """The chat turn's 200: the buffered JSON reply, or Server-Sent Events whose ``data``
    schemas (added to the components) ``x-sse-events`` names."""
    schemas = document["components"]["schemas"]
    events = {name: _add_schema(schemas, SSE_EVENTS[name]) for name in described.events}
    listed = "\n".join(
        f"- `{name}` ({schema['title']}): {schema['description']}"
        for name, schema in events.items()
    )
    response["description"] = (
        "The turn. As `application/json` (the default): the buffered reply. As "
        "`text/event-stream` (with `Accept: text/event-stream`): Server-Sent Events, each "
        "`id: <n>`, `event: <name>` and `data: <JSON>` (its schema per event in "
        "`x-sse-events`):\n\n"
        f"{listed}\n\n"
        "`token`, `tool_call` and `tool_output` come as the agent works; exactly one `done` or "
        "`error` ends the stream. A `: keep-alive` comment comes every 15 s while nothing else "
        "does."
    )
    response["content"]["text/event-stream"] = {
        "schema": {"type": "string"},
        "x-sse-events": {name: _reference(schema) for name, schema in events.items()},
        "examples": _examples(described.stream_examples),
    }


def _examples(bodies: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    return {name: {"value": body} for name, body in bodies.items()}


def render() -> str:
    return json.dumps(openapi_document(), indent=2, sort_keys=True) + "\n"


def main() -> None:
    DOCUMENT.write_text(render())
    print(f"wrote {DOCUMENT.relative_to(TEMPLATE.parent)}")


if __name__ == "__main__":
    main()
