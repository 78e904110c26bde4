"""Lambda handlers resolved from template.yaml the way SAM does (CodeUri + Handler)."""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from chat_sessions_local.tables import TEMPLATE, load_template

ROOT = TEMPLATE.parent
EVENTS = ROOT / "events"


@dataclass(frozen=True)
class LambdaContext:
    function_name: str = "chat-sessions-test"
    memory_limit_in_mb: int = 512
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:chat-sessions-test"
    aws_request_id: str = "c0ffee00-0000-4000-8000-000000000000"


def functions() -> dict[str, dict[str, Any]]:
    """Function folder name -> its template resource, for every function in template.yaml."""
    resources = load_template()["Resources"]
    return {
        Path(r["Properties"]["CodeUri"]).name: r
        for r in resources.values()
        if r["Type"] == "AWS::Serverless::Function"
    }


@cache
def handler_of(function: str) -> Callable[[dict[str, Any], Any], dict[str, Any]]:
    props = functions()[function]["Properties"]
    module_name, attribute = props["Handler"].rsplit(".", 1)
    path = ROOT / props["CodeUri"] / f"{module_name.replace('.', '/')}.py"
    spec = importlib.util.spec_from_file_location(f"functions.{function}.{module_name}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    handler: Callable[[dict[str, Any], Any], dict[str, Any]] = getattr(module, attribute)
    return handler


def event_files() -> list[str]:
    return sorted(p.name for p in EVENTS.glob("*.json") if p.name != "env.json")


def function_of(event_file: str) -> str:
    return event_file.removesuffix(".json").split("__")[0]


def invoke(event_file: str) -> tuple[int, dict[str, str], Any]:
    """Status, headers and parsed JSON body of the event's function answering it."""
    event = json.loads((EVENTS / event_file).read_text())
    response = handler_of(function_of(event_file))(event, LambdaContext())
    body = response.get("body")
    return response["statusCode"], response.get("headers", {}), json.loads(body) if body else None
