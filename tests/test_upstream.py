"""A failed agent run, told honestly (docs/api.md, Status codes): the provider's failures by type
from the openai package, the SDK's, and everything else; the error's HTTP face and stream event;
the one log line, which names the function and the cause's class and never any content."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import httpx2
import openai
import pytest
from agents.exceptions import MaxTurnsExceeded, ModelBehaviorError, UserError
from agents.exceptions import ModelTimeoutError as SdkModelTimeoutError

from chat_sessions.errors import (
    ChatSessionsError,
    ThrottledError,
    TurnFailedError,
    TurnInProgressError,
    TurnLostError,
)
from chat_sessions.http import error_body, error_event, error_headers, status_of
from chat_sessions.upstream import (
    DEFAULT_RETRY_AFTER_SECONDS,
    cause_name,
    log_failure,
    retry_after_seconds,
    run_failure,
)
from support import Records

SECRET = "the user's prompt: my card is 4111"
"""Provider messages can quote the request; none of this may reach a log, a body or an event."""


def provider_response(status: int, headers: dict[str, str] | None = None) -> httpx2.Response:
    request = httpx2.Request("POST", "https://api.openai.com/v1/responses")
    return httpx2.Response(status, headers=headers or {}, request=request)


def status_error(
    cls: type[openai.APIStatusError],
    status: int,
    headers: dict[str, str] | None = None,
    code: str | None = None,
) -> openai.APIStatusError:
    body = {"message": SECRET, "code": code} if code else None
    return cls(
        f"Error code: {status} - {SECRET}", response=provider_response(status, headers), body=body
    )


def connection_error() -> openai.APIConnectionError:
    return openai.APIConnectionError(message=SECRET, request=httpx2.Request("POST", "https://x"))


def provider_timeout() -> openai.APITimeoutError:
    return openai.APITimeoutError(request=httpx2.Request("POST", "https://x"))


@dataclass(frozen=True)
class Failure:
    """An exception the agent run raises, and what the client is told about it."""

    name: str
    make: Callable[[], Exception]
    status: int
    code: str
    retryable: bool
    retry_after: int | None


RATE_LIMITED = Failure(
    "rate-limited",
    lambda: status_error(openai.RateLimitError, 429, {"retry-after": "7"}),
    503, "model_rate_limited", True, 7,
)  # fmt: skip
PROVIDER_FAILURES = [
    RATE_LIMITED,
    Failure(
        "rate-limited-no-header",
        lambda: status_error(openai.RateLimitError, 429),
        503, "model_rate_limited", True, DEFAULT_RETRY_AFTER_SECONDS,
    ),
    Failure(
        "quota-exhausted",
        lambda: status_error(openai.RateLimitError, 429, code="insufficient_quota"),
        502, "model_error", False, None,
    ),
    Failure(
        "provider-5xx",
        lambda: status_error(openai.InternalServerError, 503, {"retry-after": "2"}),
        503, "model_unavailable", True, 2,
    ),
    Failure(
        "unreachable",
        connection_error,
        503, "model_unavailable", True, DEFAULT_RETRY_AFTER_SECONDS,
    ),
    Failure("provider-timeout", provider_timeout, 504, "model_timeout", True, None),
    Failure(
        "context-too-long",
        lambda: status_error(openai.BadRequestError, 400, code="context_length_exceeded"),
        502, "model_error", False, None,
    ),
    Failure(
        "bad-key",
        lambda: status_error(openai.AuthenticationError, 401),
        502, "model_error", False, None,
    ),
    Failure(
        "forbidden",
        lambda: status_error(openai.PermissionDeniedError, 403),
        502, "model_error", False, None,
    ),
    Failure(
        "unknown-model",
        lambda: status_error(openai.NotFoundError, 404),
        502, "model_error", False, None,
    ),
]  # fmt: skip
AGENT_FAILURES = [
    Failure(
        "sdk-model-timeout", lambda: SdkModelTimeoutError(30.0), 504, "model_timeout", True, None
    ),
    Failure(
        "max-turns", lambda: MaxTurnsExceeded("Max turns (10) exceeded"),
        502, "agent_failed", False, None,
    ),
    Failure(
        "tool-not-found", lambda: ModelBehaviorError(f"Tool {SECRET} not found"),
        502, "agent_failed", False, None,
    ),
    Failure(
        "tool-failed", lambda: UserError(f"Error running tool: {SECRET}"),
        502, "agent_failed", False, None,
    ),
    Failure("custom-model", lambda: RuntimeError(SECRET), 502, "agent_failed", False, None),
]  # fmt: skip


@pytest.mark.parametrize("failure", PROVIDER_FAILURES + AGENT_FAILURES, ids=lambda f: f.name)
def test_each_failure_of_the_run_has_its_status_code_and_retry(failure: Failure) -> None:
    error = run_failure(failure.make())

    assert isinstance(error, TurnFailedError)
    assert (status_of(error), error.code) == (failure.status, failure.code)
    assert (error.retryable, error.retry_after_seconds) == (failure.retryable, failure.retry_after)
    expected_headers = (
        {} if failure.retry_after is None else {"Retry-After": str(failure.retry_after)}
    )
    assert error_headers(error) == expected_headers
    assert SECRET not in error_body(error)


@pytest.mark.parametrize("failure", PROVIDER_FAILURES + AGENT_FAILURES, ids=lambda f: f.name)
def test_the_stream_event_says_what_the_buffered_answer_says(failure: Failure) -> None:
    error = run_failure(failure.make())

    event = error_event(error)

    expected = {"code": failure.code, "message": error.message, "retryable": failure.retryable}
    if failure.retry_after is not None:
        expected["retry_after"] = failure.retry_after
    assert event == expected
    assert SECRET not in str(event)


@pytest.mark.parametrize(
    ("headers", "seconds"),
    [
        ({"retry-after": "7"}, 7),
        ({"retry-after": "0.2"}, 1),  # rounded up, at least a second
        ({"retry-after": "0"}, 1),
        ({"retry-after": "3600"}, 60),  # bounded: a client should not go away for an hour
        ({"retry-after-ms": "1500", "retry-after": "9"}, 2),  # the precise one wins
        ({"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}, DEFAULT_RETRY_AFTER_SECONDS),
        ({"retry-after": "nan"}, DEFAULT_RETRY_AFTER_SECONDS),
        ({"retry-after": "inf"}, DEFAULT_RETRY_AFTER_SECONDS),
        ({}, DEFAULT_RETRY_AFTER_SECONDS),
    ],
)
def test_retry_after_comes_from_the_provider_bounded(headers: dict[str, str], seconds: int) -> None:
    assert retry_after_seconds(headers) == seconds


def test_our_own_errors_keep_their_retry_advice_in_the_stream() -> None:
    assert error_event(TurnLostError("lost")) == {
        "code": "turn_lost", "message": "lost", "retryable": True,
    }  # fmt: skip
    assert error_event(ThrottledError("slow down"))["retry_after"] == 1
    assert error_event(TurnInProgressError("busy"))["retryable"] is True
    assert error_event(ChatSessionsError("DynamoDB rejected the request (X)")) == {
        "code": "internal_error",
        "message": "DynamoDB rejected the request (X)",
        "retryable": False,
    }


def test_a_bug_is_an_internal_error_that_discloses_nothing() -> None:
    assert error_event(KeyError(SECRET)) == {
        "code": "internal_error", "message": "internal error", "retryable": False,
    }  # fmt: skip


def test_the_cause_is_named_by_its_package_and_class() -> None:
    tool_error = ValueError(SECRET)
    wrapped = UserError(f"Error running tool f: {tool_error}")
    wrapped.__cause__ = tool_error  # as the SDK raises a tool's failure

    assert cause_name(wrapped) == "agents.UserError from ValueError"
    assert cause_name(RATE_LIMITED.make()) == "openai.RateLimitError"
    assert cause_name(TimeoutError()) == "TimeoutError"


@pytest.fixture
def records() -> Iterator[tuple[logging.Logger, Records]]:
    logger = logging.getLogger("chat_sessions.test_upstream")
    handler = Records()
    logger.addHandler(handler)
    yield logger, handler
    logger.removeHandler(handler)


def report(logger: logging.Logger, cause: Exception) -> None:
    log_failure(logger, "agent run failed", cause, run_failure(cause))


def test_the_log_names_the_deployed_function_the_cause_and_our_code_never_the_content(
    records: tuple[logging.Logger, Records], monkeypatch: pytest.MonkeyPatch
) -> None:
    logger, handler = records
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "chat-sessions-ChatBufferedFunction-X1")
    cause = RATE_LIMITED.make()

    report(logger, cause)

    (record,) = handler.records
    assert record.levelno == logging.WARNING
    assert record.getMessage() == (
        "agent run failed in chat-sessions-ChatBufferedFunction-X1: "
        "openai.RateLimitError (model_rate_limited, 503)"
    )
    fields = {k: getattr(record, k) for k in ("function_name", "cause", "status", "error_code")}
    assert fields == {
        "function_name": "chat-sessions-ChatBufferedFunction-X1",
        "cause": "openai.RateLimitError",
        "status": 503,
        "error_code": "model_rate_limited",
    }
    assert record.funcName == "report"  # where the run failed, not the logging helper
    assert SECRET not in str(vars(record))
    assert record.exc_info is None  # no traceback: it would quote the provider's message


def test_outside_lambda_the_log_names_the_module(
    records: tuple[logging.Logger, Records], monkeypatch: pytest.MonkeyPatch
) -> None:
    logger, handler = records
    monkeypatch.delenv("AWS_LAMBDA_FUNCTION_NAME", raising=False)

    log_failure(logger, "agent run failed", RuntimeError(SECRET), run_failure(RuntimeError()))

    assert handler.records[0].__dict__["function_name"] == "chat_sessions.test_upstream"
