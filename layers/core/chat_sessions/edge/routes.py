"""Every route of the API, with what differs per route: its body limit and whether it is public.
(template.yaml must agree; a test checks.)"""

from __future__ import annotations

import re
from functools import cache

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
    ("GET", "/v1/sessions/{session_id}/branches"),
    ("POST", "/v1/sessions/{session_id}/branches"),
    ("GET", "/v1/sessions/{session_id}/branches/{branch_id}"),
    ("PATCH", "/v1/sessions/{session_id}/branches/{branch_id}"),
    ("DELETE", "/v1/sessions/{session_id}/branches/{branch_id}"),
    ("GET", "/v1/health"),
    ("POST", "/v1/sessions/{session_id}/chat"),
    ("POST", "/v1/chat"),
    ("POST", "/v1/sessions/{session_id}/title"),
)
"""The HTTP API's routes."""
FUNCTION_URL_ROUTES = (*ROUTES, ("GET", "/v1/sessions/{session_id}/turns/{turn_id}/events"))
"""What the chat app serves on the function URL: the same, and a resume, which only a
streaming response can answer (docs/chat.md, "Resumable streams")."""
PUBLIC_ROUTES = frozenset({("GET", "/v1/health")})
"""Served without a token (API Gateway's ``Authorizer: NONE``)."""

MAX_BODY_BYTES = 16 * 1024
BODY_LIMITS: dict[tuple[str, str], int] = {
    ("POST", "/v1/sessions/{session_id}/messages"): 5 * 1024 * 1024,
    # A chat message is up to 32,000 characters, up to 4 bytes each in UTF-8, plus escapes.
    ("POST", "/v1/sessions/{session_id}/chat"): 256 * 1024,
    ("POST", "/v1/chat"): 256 * 1024,
}
"""Largest request body per route in bytes; ``MAX_BODY_BYTES`` for the others."""


def max_body_bytes(route: tuple[str, str] | None) -> int:
    return BODY_LIMITS.get(route, MAX_BODY_BYTES) if route else MAX_BODY_BYTES


@cache
def path_pattern(template: str) -> re.Pattern[str]:
    """The regex of a route template; ``{name}`` becomes a named group matching one segment."""
    return re.compile(re.sub(r"\\\{([a-z_]+)\\\}", r"(?P<\1>[^/]+)", re.escape(template)))


Routes = tuple[tuple[str, str], ...]


def methods_for(path: str, routes: Routes = ROUTES) -> list[str]:
    """The methods the API serves at ``path`` (empty: no such route)."""
    return [method for method, template in routes if path_pattern(template).fullmatch(path)]


def route_of(method: str, path: str, routes: Routes = ROUTES) -> tuple[str, str] | None:
    """The route serving ``method path`` (a decoded path), if any."""
    for route in routes:
        if route[0] == method and path_pattern(route[1]).fullmatch(path):
            return route
    return None
