"""What every edge checks of a request before routing it to the service, in this order:
identity (``identity``), body size (413), content type (415), the JSON itself (400,
``json_body``), then repeated query parameters (422). Each check refuses with the API's error;
none changes anything stored."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple
from urllib.parse import parse_qsl

from chat_sessions.errors import (
    BodyTooLargeError,
    ChatSessionsError,
    MalformedJsonError,
    UnsupportedMediaTypeError,
    ValidationFailedError,
)

from . import json_body
from .identity import Caller
from .routes import PUBLIC_ROUTES, max_body_bytes


class Screened(NamedTuple):
    caller: Caller | None
    """None on public and unknown routes."""
    body: Any
    """The parsed JSON body; None when empty."""


def screen(
    route: tuple[str, str] | None,
    identify: Callable[[], Caller],
    body: bytes,
    content_type: str | None,
    raw_query: str,
) -> Screened:
    """Every check, in the edge's order (the module's docstring)."""
    caller = identify() if route is not None and route not in PUBLIC_ROUTES else None
    value = screen_body(body, content_type, max_body_bytes(route))
    check_query(raw_query)
    return Screened(caller, value)


def screen_body(body: bytes, content_type: str | None, max_bytes: int) -> Any:
    """The parsed JSON body (None when empty), or the first rule it breaks."""
    if len(body) > max_bytes:
        raise BodyTooLargeError(f"the request body exceeds {max_bytes} bytes")
    if not body:
        return None
    check_content_type(content_type)
    return json_body.loads(body)


def check_content_type(content_type: str | None) -> None:
    """A body must be declared JSON: ``application/json`` or ``application/<x>+json``, with no
    charset but UTF-8."""
    media_type, *parameters = (content_type or "").split(";")
    kind = media_type.strip().lower()
    json_type = kind == "application/json" or (
        kind.startswith("application/") and kind.endswith("+json")
    )
    charsets = [
        value.strip().strip('"').lower()
        for name, _, value in (p.partition("=") for p in parameters)
        if name.strip().lower() == "charset"
    ]
    if not json_type or any(charset not in ("utf-8", "utf8") for charset in charsets):
        raise UnsupportedMediaTypeError("the request body must be JSON (application/json, UTF-8)")


def check_query(raw_query: str) -> None:
    """Each query parameter at most once: a repeated one would be joined or dropped by some
    layer between the client and us, so it is refused rather than guessed."""
    seen: set[str] = set()
    repeated: list[str] = []
    for name, _ in parse_qsl(raw_query, keep_blank_values=True):
        if name in seen and name not in repeated:
            repeated.append(name)
        seen.add(name)
    if repeated:
        details = [
            {"loc": ["query", name], "type": "repeated", "msg": "given more than once"}
            for name in repeated
        ]
        raise ValidationFailedError("a query parameter is repeated", details=details)


def validation_error(problems: list[Any]) -> ChatSessionsError:
    """A framework's pydantic problems with a request as the API's error. The body was screened
    as JSON already, so a ``json_invalid`` here is the framework's view of the same fault."""
    if any(p.get("type") == "json_invalid" for p in problems):
        return MalformedJsonError("the request body is not valid JSON")
    details = [
        {"loc": list(p.get("loc", ())), "type": p.get("type"), "msg": p.get("msg")}
        for p in problems
    ]
    return ValidationFailedError("the request is invalid", details=details)
