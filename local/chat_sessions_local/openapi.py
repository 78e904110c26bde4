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
    for function in sorted(sam.functions()):
        merge.add_schema(sam.module_of(function).app.get_openapi_schema())
    document: dict[str, Any] = json.loads(merge.get_openapi_json_schema())
    _describe_errors(document)
    for path in ("/v1/health",):  # the routes API Gateway serves without the authorizer
        for operation in document["paths"][path].values():
            operation["security"] = []
    return document


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
