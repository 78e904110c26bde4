"""The functions and HTTP routes of template.yaml, resolved the way SAM resolves them.

The local server and the tests use this, so both run exactly the handlers that deploy.
"""

from __future__ import annotations

import importlib.util
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from chat_sessions.edge.routes import path_pattern

from .tables import TEMPLATE, load_template

Handler = Callable[[dict[str, Any], Any], dict[str, Any]]
DEFAULT_ROUTE = "$default"


@dataclass(frozen=True)
class Route:
    """One HttpApi event of a function: ``GET /v1/sessions/{session_id}``, or ``$default``."""

    function: str
    method: str | None
    path: str | None
    authorized: bool

    @property
    def key(self) -> str:
        return f"{self.method} {self.path}" if self.path else DEFAULT_ROUTE

    def match(self, method: str, path: str) -> dict[str, str] | None:
        """The path parameters if this route serves ``method path``, else None."""
        if self.path is None or self.method not in (method, "ANY"):
            return None
        found = path_pattern(self.path).fullmatch(path)
        return None if found is None else found.groupdict()


@cache
def functions() -> dict[str, dict[str, Any]]:
    """Function folder name -> its template resource."""
    resources = load_template()["Resources"]
    return {
        Path(r["Properties"]["CodeUri"]).name: r
        for r in resources.values()
        if r["Type"] == "AWS::Serverless::Function"
    }


@cache
def routes() -> tuple[Route, ...]:
    """Every HttpApi route; ``$default`` last, as API Gateway tries it last."""
    found = []
    for name, resource in functions().items():
        for source in resource["Properties"].get("Events", {}).values():
            if source["Type"] != "HttpApi":
                continue
            props = source["Properties"]
            authorizer = props.get("Auth", {}).get("Authorizer")
            found.append(Route(name, props.get("Method"), props.get("Path"), authorizer != "NONE"))
    return tuple(sorted(found, key=lambda r: r.path is None))


def route_for(method: str, path: str) -> tuple[Route, dict[str, str]]:
    """The route API Gateway would pick for a request, with its path parameters."""
    for route in routes():
        if route.path is None:
            return route, {}
        parameters = route.match(method, path)
        if parameters is not None:
            return route, parameters
    raise LookupError("template.yaml has no $default route")


@cache
def module_of(function: str) -> Any:
    """The function's module from CodeUri + Handler, loaded as the Lambda runtime would load it."""
    props = functions()[function]["Properties"]
    module_name = props["Handler"].rsplit(".", 1)[0]
    path = TEMPLATE.parent / props["CodeUri"] / f"{module_name.replace('.', '/')}.py"
    spec = importlib.util.spec_from_file_location(f"functions.{function}.{module_name}", path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class LambdaContext:
    """The Lambda context a handler receives."""

    def __init__(self, function: str) -> None:
        self.function_name = function
        self.memory_limit_in_mb = 512
        self.invoked_function_arn = f"arn:aws:lambda:local:000000000000:function:{function}"
        self.aws_request_id = str(uuid.uuid4())


def handler_of(function: str) -> Handler:
    """The function's Lambda handler (``Handler: app.handler`` -> ``app.py``'s ``handler``)."""
    attribute = functions()[function]["Properties"]["Handler"].rsplit(".", 1)[1]
    handler: Handler = getattr(module_of(function), attribute)
    return handler
