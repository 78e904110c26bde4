"""docs/openapi.json, generated from the code: each function's own resolver describes its route,
and Powertools' OpenAPIMerge joins them.

    make openapi        # rewrite docs/openapi.json (a test fails when it is stale)
"""

from __future__ import annotations

import json
from http import HTTPStatus
from importlib.metadata import version
from typing import Any

from aws_lambda_powertools.event_handler.openapi.merge import OpenAPIMerge
from aws_lambda_powertools.event_handler.openapi.models import HTTPBearer, Server

from chat_sessions.http import STATUS_BY_ERROR
from chat_sessions.schemas import ErrorPublic

from . import sam
from .tables import TEMPLATE

DOCUMENT = TEMPLATE.parent / "docs" / "openapi.json"


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
    for path in ("/v1/health",):  # the routes API Gateway serves without the authorizer
        for operation in document["paths"][path].values():
            operation["security"] = []
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
    error_schema = ErrorPublic.model_json_schema(ref_template="#/components/schemas/{model}")
    schemas.update(error_schema.pop("$defs", {}))
    schemas["ErrorPublic"] = error_schema
    reference = {"$ref": "#/components/schemas/ErrorPublic"}
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


def render() -> str:
    return json.dumps(openapi_document(), indent=2, sort_keys=True) + "\n"


def main() -> None:
    DOCUMENT.write_text(render())
    print(f"wrote {DOCUMENT.relative_to(TEMPLATE.parent)}")


if __name__ == "__main__":
    main()
