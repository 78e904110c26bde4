"""The HTTP edge every per-route function shares: resolver, identity, the error table, the entry.

A function is a few lines: ``app = http_app()``, one typed route calling one ``service`` function,
``handler = lambda_handler(app)``. Status codes for errors are decided here, once, by error type.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable, Mapping
from typing import Annotated, Any, cast

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.event_handler.openapi.exceptions import (
    RequestValidationError,
    ResponseValidationError,
)
from aws_lambda_powertools.event_handler.openapi.params import Header, Query
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel

from .errors import (
    BodyTooLargeError,
    ChatSessionsError,
    MalformedJsonError,
    MethodNotAllowedError,
    RouteNotFoundError,
    UnauthorizedError,
    ValidationFailedError,
)
from .http import error_body, error_headers, status_of
from .idempotency import REPLAYED_HEADER
from .models import check_metadata
from .observability import logger, metrics, tracer

MAX_BODY_BYTES = 16 * 1024
MAX_APPEND_BODY_BYTES = 5 * 1024 * 1024

ROUTES: tuple[tuple[str, str], ...] = (
    ("POST", "/v1/sessions"),
    ("GET", "/v1/sessions"),
    ("GET", "/v1/sessions/{session_id}"),
    ("PATCH", "/v1/sessions/{session_id}"),
    ("DELETE", "/v1/sessions/{session_id}"),
    ("DELETE", "/v1/sessions"),
    ("GET", "/v1/deletions/{deletion_id}"),
    ("GET", "/v1/sessions/{session_id}/messages"),
    ("POST", "/v1/sessions/{session_id}/messages"),
    ("DELETE", "/v1/sessions/{session_id}/messages"),
    ("DELETE", "/v1/sessions/{session_id}/messages/last"),
    ("GET", "/v1/health"),
    ("POST", "/v1/sessions/{session_id}/chat"),
    ("POST", "/v1/chat"),
    ("POST", "/v1/sessions/{session_id}/title"),
)
"""Every route of the API (template.yaml must agree; a test checks)."""

Limit = Annotated[int, Query(ge=1, le=100)]
Cursor = Annotated[str | None, Query(max_length=2048)]
IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="idempotency-key",
        description="1-255 visible ASCII characters. A retry with the same key and body within "
        "24 hours returns the first result and writes nothing; the same key with another body "
        "is a 422 (docs/api.md).",
    ),
]
"""The ``Idempotency-Key`` header; checked by the service (a bad key is a 400)."""


def error_response(error: ChatSessionsError) -> Response[str]:
    status = status_of(error)
    if status >= 500:
        logger.exception("request failed", extra={"error_code": error.code})
    else:
        logger.info("request rejected", extra={"error_code": error.code, "status": status})
    return Response(
        status_code=status,
        content_type="application/json",
        body=error_body(error),
        headers=error_headers(error),
    )


def _validation_failed(exc: RequestValidationError) -> Response[str]:
    errors = list(exc.errors())
    if any(e.get("type") == "json_invalid" for e in errors):
        return error_response(MalformedJsonError("the request body is not valid JSON"))
    details = [
        {"loc": list(e.get("loc", ())), "type": e.get("type"), "msg": e.get("msg")} for e in errors
    ]
    return error_response(ValidationFailedError("the request is invalid", details=details))


def _internal_error(exc: Exception) -> Response[str]:
    return error_response(ChatSessionsError("internal error"))  # logs the traceback


def http_app() -> APIGatewayHttpResolver:
    """A resolver validating input with pydantic and answering errors in the API's format."""
    # A response that breaks its own schema is our bug (500), never the client's (422).
    app = APIGatewayHttpResolver(enable_validation=True, response_validation_error_http_code=500)
    app.exception_handler(RequestValidationError)(_validation_failed)
    app.exception_handler(ResponseValidationError)(_internal_error)
    app.exception_handler(ChatSessionsError)(error_response)
    app.exception_handler(Exception)(_internal_error)

    @app.not_found
    def route_not_found(exc: Exception) -> Response[str]:
        method, allowed = app.current_event.http_method, methods_for(app.current_event.path)
        if allowed and method not in allowed:
            return error_response(
                MethodNotAllowedError(f"{method} is not allowed here", allowed=allowed)
            )
        return error_response(RouteNotFoundError("no such route"))

    return app


def caller(app: APIGatewayHttpResolver) -> str:
    """The verified user: the ``sub`` claim API Gateway's JWT authorizer put in the event."""
    claims = app.current_event.request_context.authorizer.jwt_claim or {}
    subject = claims.get("sub")
    if not isinstance(subject, str) or not subject:
        raise UnauthorizedError("a valid bearer token is required")
    return subject


def metadata_filter(app: APIGatewayHttpResolver) -> dict[str, str]:
    """``?metadata.<key>=<value>`` query parameters as a filter."""
    query = app.current_event.query_string_parameters or {}
    wanted = {k.removeprefix("metadata."): v for k, v in query.items() if k.startswith("metadata.")}
    return check_metadata(wanted)


def json_response(
    model: BaseModel, status: int = 200, headers: dict[str, str] | None = None
) -> Response[Any]:
    return Response(
        status_code=status, content_type="application/json", body=model, headers=headers
    )


def replayed(replay: bool) -> dict[str, str]:
    """The header that marks an answer replayed for an Idempotency-Key (nothing was written)."""
    return {REPLAYED_HEADER: "true"} if replay else {}


def no_content() -> Response[None]:
    return Response(status_code=204, content_type=None, body=None)


def path_pattern(template: str) -> re.Pattern[str]:
    """The regex of a route template; ``{name}`` becomes a named group matching one segment."""
    return re.compile(re.sub(r"\\\{([a-z_]+)\\\}", r"(?P<\1>[^/]+)", re.escape(template)))


def methods_for(path: str) -> list[str]:
    """The methods the API serves at ``path`` (empty: no such route)."""
    return [method for method, template in ROUTES if path_pattern(template).fullmatch(path)]


def _rejection(event: Mapping[str, Any], max_body_bytes: int) -> ChatSessionsError | None:
    """What is wrong with the raw body before any parsing: too large, or not text."""
    body = event.get("body") or ""
    if not isinstance(body, str):
        return MalformedJsonError("the request body is not valid JSON")
    size = len(body.encode())
    if event.get("isBase64Encoded"):
        size = size * 3 // 4
    if size > max_body_bytes:
        return BodyTooLargeError(f"the request body exceeds {max_body_bytes} bytes")
    if event.get("isBase64Encoded"):
        try:
            base64.b64decode(body, validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            return MalformedJsonError("the request body is not valid UTF-8 JSON")
    return None


def lambda_handler(
    app: APIGatewayHttpResolver, *, max_body_bytes: int = MAX_BODY_BYTES
) -> Callable[[dict[str, Any], LambdaContext], dict[str, Any]]:
    """The Lambda entry point for ``app``: logging, tracing, metrics and the body-size limit,
    applied once here so functions stay a few lines."""

    @logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
    @tracer.capture_lambda_handler(capture_response=False)
    @metrics.log_metrics
    def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
        response: dict[str, Any]
        error = _rejection(event, max_body_bytes)
        if error is not None:
            response = {
                "statusCode": status_of(error),
                "headers": {"Content-Type": "application/json", **error_headers(error)},
                "body": error_body(error),
                "isBase64Encoded": False,
            }
        else:
            response = app.resolve(event, context)
        metrics.add_metric(
            name=f"Status{response['statusCode'] // 100}xx", unit=MetricUnit.Count, value=1
        )
        return response

    return cast("Callable[[dict[str, Any], LambdaContext], dict[str, Any]]", handler)
