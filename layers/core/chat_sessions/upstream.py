"""What a failed agent run means for the client (docs/api.md, Status codes): the exception the run
raised, mapped once to one of our ``TurnFailedError``s, by its type from the ``openai`` package or
the Agents SDK, never by its message. And the one log line that reports it.

Chat path only: imports ``openai`` and the Agents SDK.
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
from collections.abc import Mapping

import openai
from agents.exceptions import ModelTimeoutError as SdkModelTimeoutError

from .errors import (
    ChatSessionsError,
    ModelError,
    ModelRateLimitedError,
    ModelTimeoutError,
    ModelUnavailableError,
    TurnFailedError,
    TurnTimeoutError,
)
from .http import status_of

DEFAULT_RETRY_AFTER_SECONDS = 5
"""When the provider is down or limiting us and says nothing about when to come back (the
client already retried twice with backoff)."""
MAX_RETRY_AFTER_SECONDS = 60


def run_failure(error: Exception) -> TurnFailedError:
    """Our error for an exception the agent run raised (the model, a tool, a guardrail, the
    SDK's limits). Anything not from the model provider is ``agent_failed``."""
    if isinstance(error, openai.OpenAIError):
        return provider_failure(error)
    if isinstance(error, SdkModelTimeoutError):
        return ModelTimeoutError("the model did not answer in time")
    return TurnFailedError("the agent run failed")


def provider_failure(error: openai.OpenAIError) -> TurnFailedError:
    """The model provider's failure: down, limiting, slow, or refusing the request."""
    if isinstance(error, openai.APITimeoutError):  # before its base, APIConnectionError
        return ModelTimeoutError("the model did not answer in time")
    if isinstance(error, openai.APIConnectionError):
        return ModelUnavailableError(
            "the model provider could not be reached",
            retry_after_seconds=DEFAULT_RETRY_AFTER_SECONDS,
        )
    # An exhausted quota is also a 429, but waiting does not refill it.
    if isinstance(error, openai.RateLimitError) and error.code != "insufficient_quota":
        return ModelRateLimitedError(
            "the model provider is rate limiting requests",
            retry_after_seconds=retry_after_seconds(error.response.headers),
        )
    if isinstance(error, openai.InternalServerError):  # any 5xx
        return ModelUnavailableError(
            "the model provider failed",
            retry_after_seconds=retry_after_seconds(error.response.headers),
        )
    return ModelError("the model provider refused the request")


def turn_timeout(timeout_seconds: float) -> TurnTimeoutError:
    return TurnTimeoutError(f"the agent run took longer than {timeout_seconds:g} seconds")


def retry_after_seconds(headers: Mapping[str, str]) -> int:
    """The provider's ``retry-after-ms`` or ``retry-after`` (seconds), rounded up and bounded to
    1..60; the default when absent or not a number (an HTTP date, which providers rarely send)."""
    try:
        if (millis := headers.get("retry-after-ms")) is not None:
            seconds = float(millis) / 1000
        elif (value := headers.get("retry-after")) is not None:
            seconds = float(value)
        else:
            return DEFAULT_RETRY_AFTER_SECONDS
    except ValueError:
        return DEFAULT_RETRY_AFTER_SECONDS
    if not math.isfinite(seconds):
        return DEFAULT_RETRY_AFTER_SECONDS
    return min(max(math.ceil(seconds), 1), MAX_RETRY_AFTER_SECONDS)


def cause_name(error: BaseException) -> str:
    """The class of ``error`` as its package exports it (``openai.RateLimitError``,
    ``agents.UserError``, ``ValueError``), with the class it was raised from, if any (a tool's
    own exception inside ``agents.UserError``). Never the message: it can quote the prompt."""
    name = _class_name(error)
    # Cancellation is how a timeout arrives (asyncio.timeout), never what failed.
    if error.__cause__ is not None and not isinstance(error.__cause__, asyncio.CancelledError):
        name = f"{name} from {_class_name(error.__cause__)}"
    return name


def function_name(logger: logging.Logger) -> str:
    """The deployed function (ChatFunction and ChatBufferedFunction run the same code), or the
    logger's module outside Lambda."""
    return os.environ.get("AWS_LAMBDA_FUNCTION_NAME") or logger.name


def log_failure(
    logger: logging.Logger, event: str, cause: BaseException, failure: ChatSessionsError
) -> None:
    """One warning: which function failed, of what (the cause's class), meaning what (our code
    and status). In the message too, as plain handlers (the Lambda runtime's, Python's last
    resort) drop ``extra``. Never the cause's message: it can carry the prompt or the output."""
    function = function_name(logger)
    cause_class = cause_name(cause)
    status = status_of(failure)
    logger.warning(
        "%s in %s: %s (%s, %d)",
        event,
        function,
        cause_class,
        failure.code,
        status,
        extra={
            "function_name": function,
            "cause": cause_class,
            "status": status,
            "error_code": failure.code,
        },
        stacklevel=2,  # the caller's function and line, not this helper's
    )


def _class_name(error: BaseException) -> str:
    cls = type(error)
    package = cls.__module__.partition(".")[0]
    return cls.__qualname__ if package == "builtins" else f"{package}.{cls.__qualname__}"
