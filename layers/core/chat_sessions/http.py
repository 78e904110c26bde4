"""The HTTP face of domain errors: one status table and one body shape, for every edge (the
per-route functions, the chat app, the local server). Never decided by message text."""

from __future__ import annotations

from typing import Any

from .errors import (
    ChatSessionsError,
    ConflictError,
    IdempotencyKeyReusedError,
    InvalidCursorError,
    InvalidIdempotencyKeyError,
    InvalidInputError,
    ItemNotAllowedError,
    MalformedJsonError,
    MethodNotAllowedError,
    ModelUnavailableError,
    NotFoundError,
    StreamIncompleteError,
    ThrottledError,
    TooLargeError,
    TurnFailedError,
    TurnTimeoutError,
    UnauthorizedError,
    UnavailableError,
    UnsupportedMediaTypeError,
    UntrustedHostError,
)
from .schemas import ErrorDetail, ErrorPublic

# Most specific first: the first class in an error's MRO found here decides.
STATUS_BY_ERROR: dict[type[ChatSessionsError], int] = {
    MalformedJsonError: 400,
    InvalidCursorError: 400,
    InvalidIdempotencyKeyError: 400,
    UntrustedHostError: 400,
    UnauthorizedError: 401,
    ItemNotAllowedError: 403,
    NotFoundError: 404,
    MethodNotAllowedError: 405,
    ConflictError: 409,
    TooLargeError: 413,
    UnsupportedMediaTypeError: 415,
    IdempotencyKeyReusedError: 422,
    InvalidInputError: 422,
    TurnFailedError: 502,
    StreamIncompleteError: 502,
    ThrottledError: 503,
    UnavailableError: 503,
    ModelUnavailableError: 503,
    TurnTimeoutError: 504,
}


def status_of(error: ChatSessionsError) -> int:
    for cls in type(error).__mro__:
        if cls in STATUS_BY_ERROR:
            return STATUS_BY_ERROR[cls]
    return 500


def error_body(error: ChatSessionsError) -> str:
    detail = ErrorDetail(code=error.code, message=error.message, details=error.details or None)
    return ErrorPublic(error=detail).model_dump_json(exclude_none=True)


def error_headers(error: ChatSessionsError) -> dict[str, str]:
    if isinstance(error, MethodNotAllowedError):
        return {"Allow": ", ".join(error.allowed)}
    retry_after = retry_after_of(error)
    if retry_after is not None:
        return {"Retry-After": str(retry_after)}
    if isinstance(error, UnauthorizedError):
        return {"WWW-Authenticate": "Bearer"}
    return {}


def retry_after_of(error: ChatSessionsError) -> int | None:
    """Seconds to wait before trying again (the ``Retry-After`` header), when we know them."""
    if isinstance(error, TurnFailedError):
        return error.retry_after_seconds
    if isinstance(error, ThrottledError | UnavailableError):
        return 1  # DynamoDB, after the client's own retries
    return None


def is_retryable(error: ChatSessionsError) -> bool:
    """Whether the same request can succeed later, as it is (each error class says)."""
    return error.retryable


def error_event(error: BaseException) -> dict[str, Any]:
    """The data of a stream's terminal ``error`` event: the code and message the buffered answer
    would carry, ``retryable``, and ``retry_after`` (seconds) when it would send Retry-After.
    Anything that is not one of our errors is a bug: ``internal_error``, with nothing of it
    disclosed."""
    if not isinstance(error, ChatSessionsError):
        error = ChatSessionsError("internal error")
    data: dict[str, Any] = {
        "code": error.code,
        "message": error.message,
        "retryable": is_retryable(error),
    }
    retry_after = retry_after_of(error)
    if retry_after is not None:
        data["retry_after"] = retry_after
    return data
