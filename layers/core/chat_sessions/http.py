"""The HTTP face of domain errors: one status table and one body shape, for every edge (the
per-route functions, the chat app, the local server). Never decided by message text."""

from __future__ import annotations

from .errors import (
    ChatSessionsError,
    ConflictError,
    IdempotencyKeyReusedError,
    InvalidCursorError,
    InvalidIdempotencyKeyError,
    InvalidInputError,
    MalformedJsonError,
    MethodNotAllowedError,
    NotFoundError,
    ThrottledError,
    TooLargeError,
    UnauthorizedError,
    UnavailableError,
)
from .schemas import ErrorDetail, ErrorPublic

# Most specific first: the first class in an error's MRO found here decides.
STATUS_BY_ERROR: dict[type[ChatSessionsError], int] = {
    MalformedJsonError: 400,
    InvalidCursorError: 400,
    InvalidIdempotencyKeyError: 400,
    UnauthorizedError: 401,
    NotFoundError: 404,
    MethodNotAllowedError: 405,
    ConflictError: 409,
    TooLargeError: 413,
    IdempotencyKeyReusedError: 422,
    InvalidInputError: 422,
    ThrottledError: 503,
    UnavailableError: 503,
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
    if isinstance(error, ThrottledError | UnavailableError):
        return {"Retry-After": "1"}
    if isinstance(error, UnauthorizedError):
        return {"WWW-Authenticate": "Bearer"}
    return {}
