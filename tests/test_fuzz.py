"""Property-based fuzz of the local server, driven by the generated OpenAPI document (schemathesis
strategies run by Hypothesis): no input may cause a 5xx, and every response must match the document
(status, content type, schema).

Bounded for CI: FUZZ_EXAMPLES per operation (default 25). Run longer with
``FUZZ_EXAMPLES=500 make test``. Derandomized, so a CI failure reproduces locally.
"""

from __future__ import annotations

import os
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import checks
from schemathesis.core.result import Ok

from chat_sessions.api import ROUTES
from chat_sessions_local.issuer import DevIssuer

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "25"))
CHECKS = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_schema_conformance,
]


@pytest.mark.integration
@pytest.mark.parametrize("backend", ["dynamodb_local"])  # a real server, with DynamoDB's own checks
def test_no_input_breaks_the_server_or_the_contract(local_api: Any, dev_issuer: DevIssuer) -> None:
    headers = {"Authorization": f"Bearer {dev_issuer.mint('fuzzer')}"}
    local_api.post("/v1/sessions", json={"session_id": "s1", "title": "fuzz"}, headers=headers)
    schema = schemathesis.openapi.from_asgi("/openapi.json", local_api.app)
    operations = []
    for result in schema.get_all_operations():
        assert isinstance(result, Ok), f"the document has an invalid operation: {result.err()}"
        operations.append(result.ok())
    calls = 0

    for operation in operations:

        @given(case=operation.as_strategy())
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

        fuzz()

    assert {(op.method.upper(), op.path) for op in operations} == set(ROUTES)
    assert calls >= len(ROUTES) * min(EXAMPLES, 5)  # the fuzz really ran
    print(f"fuzz: {calls} requests over {len(operations)} operations")
