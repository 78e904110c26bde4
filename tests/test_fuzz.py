"""Property-based fuzz of the local server, driven by the generated OpenAPI document (schemathesis
strategies run by Hypothesis): no input may cause a 5xx, and every response must match the document
(status, content type, schema). Each operation gets valid input and input that breaks its schema
(schemathesis' negative mode).

Bounded for CI: FUZZ_EXAMPLES per operation (default 25). Run longer with
``FUZZ_EXAMPLES=500 make test``. Derandomized, so a CI failure reproduces locally.
"""

from __future__ import annotations

import os
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode, checks
from schemathesis.core.result import Ok

from chat_sessions.edge.routes import ROUTES
from chat_sessions_local.issuer import DevIssuer
from chat_sessions_local.server import create_app

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "25"))
CHECKS = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_schema_conformance,
]


@pytest.mark.integration
@pytest.mark.parametrize("backend", ["dynamodb_local"])  # a real server, with DynamoDB's own checks
@pytest.mark.parametrize("chat", ["function_url", "api_gateway"])
def test_no_input_breaks_the_server_or_the_contract(
    local_api: Any, dev_issuer: DevIssuer, chat: str
) -> None:
    """Every operation, with the chat routes served by the chat app as on its function URL, or
    through API Gateway by the buffered chat function (Mangum): both edges of the chat app."""
    headers = {"Authorization": f"Bearer {dev_issuer.mint('fuzzer')}"}
    local_api.post("/v1/sessions", json={"session_id": "s1", "title": "fuzz"}, headers=headers)
    app = local_api.app if chat == "function_url" else create_app(dev_issuer, chat_url=False)
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    operations = []
    for result in schema.get_all_operations():
        assert isinstance(result, Ok), f"the document has an invalid operation: {result.err()}"
        operations.append(result.ok())
    calls, no_input = 0, set[tuple[str, str]]()
    cases = [(op, mode) for op in operations for mode in GenerationMode]

    for operation, mode in cases:  # valid input, then input that breaks the schema

        @given(case=operation.as_strategy(mode))
        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            derandomize=True,
            suppress_health_check=list(HealthCheck),
            database=None,
        )
        def fuzz(case: Any) -> None:
            nonlocal calls
            calls += 1
            case.call_and_validate(headers=headers, checks=CHECKS)

        try:
            fuzz()
        except Unsatisfiable:  # nothing to break: an operation without any input
            assert mode is GenerationMode.NEGATIVE
            no_input.add((operation.method.upper(), operation.path))

    assert {(op.method.upper(), op.path) for op in operations} == set(ROUTES)
    assert no_input <= {("GET", "/v1/health")}
    assert calls >= 2 * len(ROUTES) * min(EXAMPLES, 5)  # the fuzz really ran, both ways
    print(f"fuzz ({chat}): {calls} requests over {len(operations)} operations, no 5xx")
