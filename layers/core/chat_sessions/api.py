"""The edge (``chat_sessions.edge``) for the per-route functions, on Powertools' resolver.

A function is a few lines: ``app = http_app()``, one typed route calling one ``service`` function,
``handler = lambda_handler(app)``. The handler runs the edge's checks before the resolver sees the
event; statuses come from the one table in ``chat_sessions.http``.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable
from typing import Annotated, Any, cast
from urllib.parse import unquote

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

from .edge import json_body
from .edge.events import for_the_framework
from .edge.identity import caller_of_event
from .edge.request import screen, validation_error
from .edge.routes import methods_for
from .errors import (
    ChatSessionsError,
    MalformedJsonError,
    MethodNotAllowedError,
    RouteNotFoundError,
)
from .http import error_body, error_headers, status_of
from .idempotency import KEY_HEADER, KEY_HEADER_DESCRIPTION, REPLAYED_HEADER
from .models import check_metadata
from .observability import logger, metrics, tracer

Limit = Annotated[int, Query(ge=1, le=100)]
Cursor = Annotated[str | None, Query(max_length=2048)]
IdempotencyKey = Annotated[
    str | None, Header(alias=KEY_HEADER.lower(), description=KEY_HEADER_DESCRIPTION)
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
    return error_response(validation_error(list(exc.errors())))


def _internal_error(exc: Exception) -> Response[str]:
    return error_response(ChatSessionsError("internal error"))  # logs the traceback


def http_app() -> APIGatewayHttpResolver:
    """A resolver validating input with pydantic and answering errors in the API's format."""
    # A response that breaks its own schema is our bug (500), never the client's (422).
    app = _Resolver(
        enable_validation=True,
        response_validation_error_http_code=500,
        json_body_deserializer=_screened.loads,
    )
    app.exception_handler(RequestValidationError)(_validation_failed)
    app.exception_handler(ResponseValidationError)(_internal_error)
    app.exception_handler(ChatSessionsError)(error_response)
    app.exception_handler(Exception)(_internal_error)

    @app.not_found
    def route_not_found(exc: Exception) -> Response[str]:
        # The $default route's path comes decoded from API Gateway, and is not re-encoded.
        method, allowed = app.current_event.http_method, methods_for(app.current_event.path)
        if allowed and method not in allowed:
            return error_response(
                MethodNotAllowedError(f"{method} is not allowed here", allowed=allowed)
            )
        return error_response(RouteNotFoundError("no such route"))

    return app


def caller(app: APIGatewayHttpResolver) -> str:
    """The verified user (``edge.identity``; ``lambda_handler`` refused the call without one)."""
    return caller_of_event(app.current_event.raw_event).user_id


def trusted(app: APIGatewayHttpResolver) -> bool:
    """Whether the caller holds the deployment's trusted-writer scope."""
    return caller_of_event(app.current_event.raw_event).trusted


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


class _Resolver(APIGatewayHttpResolver):
    """Path parameters arrive percent-encoded (``lambda_handler`` re-encodes what API Gateway
    decoded), so each is decoded exactly once, here."""

    def _convert_matches_into_route_keys(self, match: re.Match[str]) -> dict[str, str]:
        return {name: unquote(value) for name, value in match.groupdict().items()}


class _ScreenedBody:
    """The body ``lambda_handler`` parsed, handed to the resolver instead of parsing it again
    (one tuple: the local server runs handlers in threads, so text and value change together)."""

    last: tuple[str | None, Any] = (None, None)

    def loads(self, text: str) -> Any:
        last_text, value = self.last
        return value if text == last_text else json_body.loads(text)


_screened = _ScreenedBody()


def _screened_event(event: dict[str, Any]) -> dict[str, Any]:
    """The edge's checks (``edge.request.screen``) on an API Gateway event; the event as the
    resolver should see it (``edge.events.for_the_framework``)."""
    method, _, template = (event.get("routeKey") or "").partition(" ")
    body = _body_bytes(event)
    headers = {k.lower(): v for k, v in (event.get("headers") or {}).items()}
    checked = screen(
        (method, template) if template else None,
        lambda: caller_of_event(event),
        body,
        headers.get("content-type"),
        event.get("rawQueryString") or "",
    )
    _screened.last = (body.decode() if body else None), checked.body
    return for_the_framework(event)


def _body_bytes(event: dict[str, Any]) -> bytes:
    raw = event.get("body") or ""
    if not isinstance(raw, str):
        raise MalformedJsonError("the request body is not valid JSON")
    if not event.get("isBase64Encoded"):
        return raw.encode()
    try:
        return base64.b64decode(raw, validate=True)
    except binascii.Error:
        raise MalformedJsonError("the request body is not valid base64") from None


def lambda_handler(
    app: APIGatewayHttpResolver,
) -> Callable[[dict[str, Any], LambdaContext], dict[str, Any]]:
    """The Lambda entry point for ``app``: logging, tracing, metrics and the edge's checks,
    applied once here so functions stay a few lines."""

    @logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
    @tracer.capture_lambda_handler(capture_response=False)
    @metrics.log_metrics
    def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
        response: dict[str, Any]
        try:
            screened = _screened_event(event)
        except ChatSessionsError as error:
            response = _refused(error)
        else:
            response = app.resolve(screened, context)
            _screened.last = (None, None)  # a 5 MiB body need not outlive its request
        metrics.add_metric(
            name=f"Status{response['statusCode'] // 100}xx", unit=MetricUnit.Count, value=1
        )
        return response

    return cast("Callable[[dict[str, Any], LambdaContext], dict[str, Any]]", handler)


def _refused(error: ChatSessionsError) -> dict[str, Any]:
    logger.info("request rejected", extra={"error_code": error.code})
    return {
        "statusCode": status_of(error),
        "headers": {"Content-Type": "application/json", **error_headers(error)},
        "body": error_body(error),
        "isBase64Encoded": False,
    }
