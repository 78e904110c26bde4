"""The edge in front of the chat app (FastAPI, under the Lambda Web Adapter or Mangum): the same
checks, order and error bodies as ``chat_sessions.api`` gives the route functions.

``EdgeMiddleware`` runs before FastAPI parses anything: identity, then ``request``'s checks. A
request it refuses never reaches the app. ``install_error_handlers`` answers what FastAPI itself
refuses (unknown path, wrong method, schema) in the API's body.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from chat_sessions.errors import (
    ChatSessionsError,
    MethodNotAllowedError,
    RouteNotFoundError,
)
from chat_sessions.http import error_body, error_headers, status_of
from chat_sessions.upstream import log_failure

from .identity import Caller, caller_of, caller_of_event
from .request import screen, validation_error
from .routes import FUNCTION_URL_ROUTES, max_body_bytes, methods_for, route_of

if TYPE_CHECKING:  # jwt and cryptography load only where a token is verified (the function URL)
    from chat_sessions.tokens import TokenVerifier

logger = logging.getLogger(__name__)


def error_response(error: ChatSessionsError) -> Response:
    return Response(
        error_body(error),
        status_code=status_of(error),
        media_type="application/json",
        headers=error_headers(error),
    )


def caller(request: Request) -> Caller:
    """The caller ``EdgeMiddleware`` established for this request."""
    found: Caller = request.scope["state"]["caller"]
    return found


class EdgeMiddleware:
    """Identity (API Gateway's verified claims under Mangum, else the bearer token checked by
    ``verifier``), then body size, content type, JSON and query, before the app sees a byte."""

    def __init__(self, app: ASGIApp, verifier: Callable[[], TokenVerifier]) -> None:
        self.app, self.verifier = app, verifier

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        route = route_of(scope["method"], scope["path"], FUNCTION_URL_ROUTES)
        body = await _read_body(receive, max_body_bytes(route))
        try:
            checked = screen(
                route,
                lambda: self._caller(scope),
                body,
                _joined_headers(scope).get("content-type"),
                scope.get("query_string", b"").decode("latin-1"),
            )
        except ChatSessionsError as error:
            await error_response(error)(scope, receive, send)
            return
        scope = {**scope, "headers": _json_content_type(scope, body)}
        scope.setdefault("state", {})["caller"] = checked.caller
        await self._answer(scope, _replay(body, receive), send)

    async def _answer(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The app's answer; our own bug before it began is the API's generic 500, logged by
        its class only (the message may hold content)."""
        started = False

        async def watched(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, watched)
        except Exception as exc:
            bug = ChatSessionsError("internal error")
            log_failure(logger, "request failed", exc, bug)
            if started:
                raise
            await error_response(bug)(scope, receive, send)

    def _caller(self, scope: Scope) -> Caller:
        event = scope.get("aws.event")
        if isinstance(event, dict):
            return caller_of_event(event)
        headers = dict(scope["headers"])
        authorization = headers.get(b"authorization", b"").decode("latin-1") or None
        return caller_of(self.verifier().claims(authorization))


async def _read_body(receive: Receive, max_bytes: int) -> bytes:
    """The body, read no further once it passes ``max_bytes`` (``screen`` then refuses it)."""
    chunks: list[bytes] = []
    size, more = 0, True
    while more and size <= max_bytes:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunks.append(message.get("body", b""))
        size += len(chunks[-1])
        more = message.get("more_body", False)
    return b"".join(chunks)


def _joined_headers(scope: Scope) -> dict[str, str]:
    """Headers by lower-case name, repeats joined with commas (as API Gateway joins them)."""
    joined: dict[str, str] = {}
    for raw_name, raw_value in scope["headers"]:
        name, value = raw_name.decode("latin-1").lower(), raw_value.decode("latin-1")
        joined[name] = f"{joined[name]},{value}" if name in joined else value
    return joined


def _json_content_type(scope: Scope, body: bytes) -> list[tuple[bytes, bytes]]:
    """The headers with the content type the edge accepted the body as (FastAPI has rules of
    its own for content types; ``events.for_the_framework`` does the same for events)."""
    headers = [(k, v) for k, v in scope["headers"] if k.lower() != b"content-type"]
    return [*headers, (b"content-type", b"application/json")] if body else headers


def _replay(body: bytes, receive: Receive) -> Receive:
    """The body read already, then the client's own messages (a streamed answer waits on them
    to learn of a disconnect)."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if sent:
            return await receive()
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replay


def install_error_handlers(app: FastAPI) -> None:
    """Our errors, FastAPI's validation errors and Starlette's 404/405 in the API's body."""

    @app.exception_handler(ChatSessionsError)
    async def domain_error(request: Request, error: ChatSessionsError) -> Response:
        if status_of(error) >= 500:  # ours or DynamoDB's; the route functions log these too
            log_failure(logger, "request failed", error, error)
        return error_response(error)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, error: RequestValidationError) -> Response:
        return error_response(validation_error(list(error.errors())))

    @app.exception_handler(HTTPException)
    async def framework_error(request: Request, error: HTTPException) -> Response:
        allowed = methods_for(request.scope["path"], FUNCTION_URL_ROUTES)
        if error.status_code == 405 and allowed:
            method = request.method
            return error_response(
                MethodNotAllowedError(f"{method} is not allowed here", allowed=allowed)
            )
        return error_response(RouteNotFoundError("no such route"))
