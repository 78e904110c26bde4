"""Invoke the deployed handlers (resolved from template.yaml) with the sample events."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from chat_sessions_local.sam import functions, handler_of
from chat_sessions_local.tables import TEMPLATE

EVENTS = TEMPLATE.parent / "events"

__all__ = [
    "EVENTS",
    "LambdaContext",
    "event_files",
    "function_of",
    "functions",
    "handler_of",
    "http_event_files",
    "invoke",
    "stream_event_files",
]


@dataclass(frozen=True)
class LambdaContext:
    function_name: str = "chat-sessions-test"
    memory_limit_in_mb: int = 512
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:chat-sessions-test"
    aws_request_id: str = "c0ffee00-0000-4000-8000-000000000000"


def event_files() -> list[str]:
    return sorted(p.name for p in EVENTS.glob("*.json") if p.name != "env.json")


def http_event_files() -> list[str]:
    """The API Gateway events (the rest are stream events, for ``cascade``)."""
    return [name for name in event_files() if "routeKey" in json.loads((EVENTS / name).read_text())]


def stream_event_files() -> list[str]:
    return [name for name in event_files() if name not in http_event_files()]


def function_of(event_file: str) -> str:
    return event_file.removesuffix(".json").split("__")[0]


def invoke(event_file: str) -> tuple[int, dict[str, str], Any]:
    """Status, headers and parsed JSON body of the event's function answering it."""
    event = json.loads((EVENTS / event_file).read_text())
    response = handler_of(function_of(event_file))(event, LambdaContext())
    body = response.get("body")
    return response["statusCode"], response.get("headers", {}), json.loads(body) if body else None
