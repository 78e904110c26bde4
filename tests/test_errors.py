"""DynamoDB failures become named domain errors, by error code; throttling is retried first.

These tests put DynamoDB's wire responses in front of a real botocore client (its ``before-send``
hook), so botocore's own retry logic runs exactly as in production.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import boto3
import pytest
from botocore.awsrequest import AWSResponse
from botocore.exceptions import ClientError
from botocore.retries.standard import ExponentialBackoff
from faults import wire_response

from chat_sessions import (
    ChatSessionsError,
    ChatStore,
    ConflictError,
    SessionNotFoundError,
    ThrottledError,
    UnavailableError,
)
from chat_sessions.store.client import RETRY_CONFIG, translate


def throttle() -> AWSResponse:
    return wire_response(
        400,
        {
            "__type": "com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException",
            "message": "The level of configured provisioned throughput for the table was exceeded.",
        },
    )


@pytest.fixture(autouse=True)
def _no_retry_sleep(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ExponentialBackoff, "delay_amount", lambda self, context: 0)


@pytest.fixture
def scripted_store() -> Callable[[list[AWSResponse]], tuple[ChatStore, list[str]]]:
    """A store whose client receives the given responses in turn; also returns the calls made."""

    def make(responses: list[AWSResponse]) -> tuple[ChatStore, list[str]]:
        client = boto3.client(
            "dynamodb",
            region_name="us-east-1",
            endpoint_url="http://127.0.0.1:9",
            config=RETRY_CONFIG,
        )
        calls: list[str] = []
        queue = list(responses)

        def answer(request: Any, **_: Any) -> Any:
            calls.append(request.headers["X-Amz-Target"].decode().split(".")[-1])
            return queue.pop(0) if len(queue) > 1 else queue[0]

        client.meta.events.register("before-send.dynamodb", answer)
        # The store's own resends: the minimum (three), without waiting.
        store = ChatStore(
            "chat",
            client=client,
            session_ttl_seconds=3600,
            conflict_budget_seconds=0.0,
            sleep=lambda seconds: None,
        )
        return store, calls

    return make


def test_throttling_is_retried_then_succeeds(scripted_store: Any) -> None:
    store, calls = scripted_store([throttle(), throttle(), wire_response(200, {})])

    with pytest.raises(SessionNotFoundError):  # the third answer: no item
        store.get_session("u", "s")

    assert calls == ["GetItem"] * 3


def test_persistent_throttling_becomes_throttled_error(scripted_store: Any) -> None:
    store, calls = scripted_store([throttle()])

    with pytest.raises(ThrottledError) as raised:
        store.append_items("u", "s", [{"role": "user", "content": "x"}])

    assert raised.value.code == "throttled"
    assert calls == ["TransactWriteItems"] * 3 * 3  # botocore's 3 attempts, resent 3 times


def test_server_errors_become_unavailable(scripted_store: Any) -> None:
    store, calls = scripted_store(
        [wire_response(500, {"__type": "com.amazon.coral.service#InternalServerError"})]
    )

    with pytest.raises(UnavailableError):
        store.list_sessions("u")
    assert len(calls) == 3 * 3


def test_unreachable_dynamodb_is_unavailable() -> None:
    client = boto3.client(
        "dynamodb", region_name="us-east-1", endpoint_url="http://127.0.0.1:9", config=RETRY_CONFIG
    )
    with pytest.raises(UnavailableError):
        ChatStore(
            "chat", client=client, session_ttl_seconds=3600, conflict_budget_seconds=0.0
        ).get_session("u", "s")


def test_other_codes_are_generic_errors_not_guesses() -> None:
    validation = ClientError(
        {"Error": {"Code": "ValidationException", "Message": "throttled in the text only"}},
        "Query",
    )
    error = translate(validation)

    assert type(error) is ChatSessionsError  # not ThrottledError, whatever the message says
    assert "ValidationException" in str(error)


def test_endless_transaction_conflicts_become_conflict_error(scripted_store: Any) -> None:
    conflict = wire_response(
        400,
        {
            "__type": "com.amazonaws.dynamodb.v20120810#TransactionCanceledException",
            "message": "Transaction cancelled",
            "CancellationReasons": [{"Code": "TransactionConflict"}, {"Code": "None"}],
        },
    )
    store, calls = scripted_store([conflict])
    store.table.budget_seconds = 0.0  # the minimum: three tries
    slept: list[float] = []
    store.table.sleep = slept.append

    with pytest.raises(ConflictError) as raised:
        store.append_items("u", "s", [{"role": "user", "content": "x"}])

    assert raised.value.code == "conflict"
    assert calls == ["TransactWriteItems"] * 3
    assert len(slept) == 3


def cancelled(reason: str) -> AWSResponse:
    return wire_response(
        400,
        {
            "__type": "com.amazonaws.dynamodb.v20120810#TransactionCanceledException",
            "message": "Transaction cancelled",
            "CancellationReasons": [{"Code": reason}, {"Code": "None"}],
        },
    )


def test_throttled_transactions_are_retried_then_succeed(scripted_store: Any) -> None:
    store, calls = scripted_store([cancelled("ThrottlingError"), wire_response(200, {})])
    store.table.sleep = lambda seconds: None

    result = store.append_items("u", "s", [{"role": "user", "content": "x"}])

    assert result.appended == 1
    assert calls == ["TransactWriteItems"] * 2


def test_persistently_throttled_transactions_become_throttled_error(scripted_store: Any) -> None:
    store, calls = scripted_store([cancelled("ProvisionedThroughputExceeded")])
    store.table.budget_seconds = 0.0
    store.table.sleep = lambda seconds: None

    with pytest.raises(ThrottledError):
        store.append_items("u", "s", [{"role": "user", "content": "x"}])
    assert len(calls) == 3
