"""docs/openapi.json is generated from the code and must not go stale."""

from __future__ import annotations

import json

from chat_sessions.api import ROUTES
from chat_sessions_local.openapi import DOCUMENT, openapi_document, render


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
