"""docs/performance.md must say what the benchmark measures (capacity and round trips are exact)."""

from __future__ import annotations

import pytest

from bench.branches import branch_costs, branch_table
from bench.chat import turn_costs, turn_table
from bench.idempotency import idempotency_costs
from bench.resume import start_costs
from bench.run import BRANCHES, CHAT, IDEMPOTENCY, RESUME, documented_table, run, table
from chat_sessions_local.dynamodb_local import DynamoDBLocal


@pytest.mark.integration
def test_performance_doc_matches_the_benchmark(dynamodb_local: DynamoDBLocal) -> None:
    measured = table(run(dynamodb_local, table="chat-bench-check"))

    assert measured == documented_table(), "run `make bench` and commit docs/performance.md"


@pytest.mark.integration
def test_performance_doc_matches_the_turn_benchmark(dynamodb_local: DynamoDBLocal) -> None:
    measured = turn_table(turn_costs(dynamodb_local, table="chat-bench-turns-check"))

    assert measured == documented_table(CHAT), "run `make bench` and commit docs/performance.md"


@pytest.mark.integration
def test_performance_doc_matches_the_idempotency_benchmark(dynamodb_local: DynamoDBLocal) -> None:
    measured = turn_table(idempotency_costs(dynamodb_local, table="chat-bench-idempotency-check"))

    assert measured == documented_table(IDEMPOTENCY), "run `make bench` and commit the doc"


@pytest.mark.integration
def test_performance_doc_matches_the_branch_benchmark(dynamodb_local: DynamoDBLocal) -> None:
    measured = branch_table(branch_costs(dynamodb_local, table="chat-bench-branches-check"))

    assert measured == documented_table(BRANCHES), "run `make bench` and commit the doc"


@pytest.mark.integration
def test_performance_doc_matches_the_turn_start_benchmark(dynamodb_local: DynamoDBLocal) -> None:
    measured = turn_table(start_costs(dynamodb_local, table="chat-bench-start-check"))

    assert measured == documented_table(RESUME), "run `make bench` and commit the doc"
