"""docs/performance.md must say what the benchmark measures (capacity and round trips are exact)."""

from __future__ import annotations

import pytest

from bench.run import documented_table, run, table
from chat_sessions_local.dynamodb_local import DynamoDBLocal


@pytest.mark.integration
def test_performance_doc_matches_the_benchmark(dynamodb_local: DynamoDBLocal) -> None:
    measured = table(run(dynamodb_local, table="chat-bench-check"))

    assert measured == documented_table(), "run `make bench` and commit docs/performance.md"
