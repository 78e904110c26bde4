"""API Gateway payload-2.0 events as the edge reads them."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import quote


def for_the_framework(event: dict[str, Any]) -> dict[str, Any]:
    """A screened event as the framework behind the edge should see it: path parameters encoded
    once (``with_encoded_path``), and the body's content type the one the edge accepted it as
    (the frameworks' own content-type rules differ from each other and from the edge's)."""
    headers = {k: v for k, v in (event.get("headers") or {}).items() if k.lower() != "content-type"}
    if event.get("body"):
        headers["content-type"] = "application/json"
    return with_encoded_path({**event, "headers": headers})


def with_encoded_path(event: dict[str, Any]) -> dict[str, Any]:
    """The event with its path rebuilt from its route and API Gateway's ``pathParameters``,
    each percent-encoded once. API Gateway hands the path over decoded; the frameworks behind
    it (Powertools, Mangum) then match each id as one segment and decode it exactly once."""
    parameters = event.get("pathParameters") or {}
    _, _, template = (event.get("routeKey") or "").partition(" ")
    if not parameters or not template:
        return event
    path = re.sub(r"\{([a-z_]+)\}", lambda m: quote(parameters.get(m[1], ""), safe=""), template)
    context = event.get("requestContext") or {}
    stage = context.get("stage", "$default")
    path = path if stage == "$default" else f"/{stage}{path}"
    http = {**(context.get("http") or {}), "path": path}
    return {**event, "rawPath": path, "requestContext": {**context, "http": http}}
