"""The local API server: what API Gateway does in front of the functions, on 127.0.0.1.

For each request it picks the route from template.yaml, verifies the bearer JWT where the route
has the authorizer (against the dev issuer's JWKS: signature, iss, aud, exp), builds the HTTP API
payload-2.0 event with the verified claims, and calls that function's real handler. So no route
logic exists twice, and nothing skips verification. It also serves the dev issuer's discovery
documents and, on this server only, Swagger UI and ``POST /dev/token`` (the chat page's sign-in:
``{"user": "alice"}`` gets a token for that user). The chat page itself (``/``, ``/page/...``) is
the chat app's, as on the function URL (docs/page.md).

It answers only requests addressed to it by a loopback name (``Host`` 127.0.0.1 or localhost,
any port): a web page elsewhere could otherwise point a name of its own at 127.0.0.1 (DNS
rebinding), read this server same-origin and mint itself tokens.
"""

from __future__ import annotations

import base64
import json
import re
import time
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

from aws_lambda_powertools.event_handler.openapi import swagger_ui
from aws_lambda_powertools.event_handler.openapi.swagger_ui.html import generate_swagger_html
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route as StarletteRoute
from starlette.routing import request_response
from starlette.types import ASGIApp, Receive, Scope, Send

from chat_sessions.agent_config import AgentSettings, build_agent
from chat_sessions.chat_app import create_chat_app
from chat_sessions.edge.request import validation_error
from chat_sessions.errors import (
    ChatSessionsError,
    MalformedJsonError,
    MethodNotAllowedError,
    UnauthorizedError,
    UntrustedHostError,
)
from chat_sessions.http import error_body, error_headers, status_of
from chat_sessions.tokens import TokenVerifier

from . import sam
from .issuer import DevIssuer
from .openapi import openapi_document

_SWAGGER_UI = Path(swagger_ui.__file__).parent
_CHAT_PATH = re.compile(
    r"/v1/chat|/v1/sessions/[^/]+/(chat|title)|/v1/sessions/[^/]+/turns/[^/]+/events"
    r"|/|/page/.*"  # the chat page (web.page.PageMiddleware, in the chat app)
)
DEV_MINT_PATH = "/dev/token"
"""Local only: mints a token for a user (the page's "dev" sign-in)."""
LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost"})
"""The names this server answers to (the ``Host`` header, with any port)."""
IN_PROCESS_HOST = "testserver"
"""The bare name in-process ASGI clients send (Starlette's TestClient, schemathesis), accepted
without a port only: a browser sends a port-less Host only to port 80, where this server never
listens (``make dev``: 8000; the tests: free ephemeral ports), so no page reaches it that way."""
_HOST = re.compile(r"(?P<name>[^:\[\]]+|\[[^\]]*\])(:(?P<port>[0-9]{1,5}))?")


def trusted_host(host: str) -> bool:
    """Whether a ``Host`` header names this server: 127.0.0.1 or localhost, any port."""
    match = _HOST.fullmatch(host.strip())
    if match is None:
        return False
    name = match["name"].lower().removesuffix(".")
    return name in LOCAL_HOSTS or (name == IN_PROCESS_HOST and match["port"] is None)


def local_page_config() -> dict[str, Any]:
    """The chat page here: same origin, signing in with ``POST /dev/token``."""
    return {"auth": "dev", "api_url": "", "chat_url": ""}


class DevTokenRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    user: str = Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9._@-]+$")


def create_app(
    issuer: DevIssuer, verifier: TokenVerifier | None = None, *, chat_url: bool = True
) -> ASGIApp:
    """The server's ASGI app; ``verifier`` defaults to the issuer's own keys and audience.

    The chat routes go to the chat app itself (what the chat function URL serves, streaming),
    verifying tokens with the same verifier; everything else goes through API Gateway's routing.
    With ``chat_url=False`` the chat routes go through API Gateway too, to the buffered chat
    function (Mangum), as the deployed HTTP API routes them.
    """
    check = verifier or issuer.verifier()
    chat = create_chat_app(
        agent=build_agent,
        verifier=lambda: check,
        settings=AgentSettings().turn_settings(),
        title_model=lambda: build_agent().model,
        page_config=local_page_config,
    )

    async def gateway(request: Request) -> Response:
        body = await request.body()
        route, parameters = sam.route_for(request.method, request.scope["path"])
        claims = None
        if route.authorized:
            try:
                claims = check.claims(request.headers.get("authorization"))
            except UnauthorizedError as error:
                return _error_response(error)
        event = _event(request, body, route, parameters, claims)
        result = await run_in_threadpool(
            sam.handler_of(route.function), event, sam.LambdaContext(route.function)
        )
        payload = result.get("body") or b""
        if result.get("isBase64Encoded"):
            payload = base64.b64decode(payload)
        return Response(payload, status_code=result["statusCode"], headers=result.get("headers"))

    async def dev_token(request: Request) -> Response:
        """A token for any user: what ``make token USER=...`` prints, for the page's sign-in."""
        try:
            if request.method != "POST":
                raise MethodNotAllowedError("use POST", allowed=["POST"])
            body = DevTokenRequest.model_validate_json(await request.body())
        except ValidationError as error:
            problems = error.errors()
            invalid = any(p["type"] == "json_invalid" for p in problems)
            found = MalformedJsonError("the body is not JSON") if invalid else None
            return _error_response(found or validation_error([dict(p) for p in problems]))
        except ChatSessionsError as error:
            return _error_response(error)
        return JSONResponse({"token": issuer.mint(body.user)})

    async def openid_configuration(request: Request) -> JSONResponse:
        return JSONResponse(issuer.openid_configuration())

    async def jwks(request: Request) -> JSONResponse:
        return JSONResponse(issuer.jwks())

    async def openapi(request: Request) -> JSONResponse:
        return JSONResponse(openapi_document())

    async def swagger(request: Request) -> Response:
        if request.query_params.get("format") == "json":  # the page's own link to the document
            return await openapi(request)
        # Inlines the assets Powertools ships: the page works offline.
        html = generate_swagger_html(
            json.dumps(openapi_document()),
            (_SWAGGER_UI / "swagger-ui-bundle.min.js").read_text(),
            (_SWAGGER_UI / "swagger-ui.min.css").read_text(),
            "",
            None,
            persist_authorization=True,
        )
        return HTMLResponse(html)

    pages = Starlette(
        routes=[
            StarletteRoute("/.well-known/openid-configuration", openid_configuration),
            StarletteRoute("/.well-known/jwks.json", jwks),
            StarletteRoute("/openapi.json", openapi),
            StarletteRoute("/docs", swagger),
        ]
    )
    return _Dispatch(
        pages, chat if chat_url else None, request_response(gateway), request_response(dev_token)
    )


_PAGES = frozenset({"/.well-known/openid-configuration", "/.well-known/jwks.json"})
_PAGES |= {"/openapi.json", "/docs"}


def _error_response(error: ChatSessionsError) -> Response:
    return Response(
        error_body(error),
        status_code=status_of(error),
        media_type="application/json",
        headers=error_headers(error),
    )


class _Dispatch:
    """The server's own pages; the chat paths to the chat app (as the function URL would, unless
    the chat goes through the gateway); every other path, whatever its bytes, to the gateway."""

    def __init__(
        self, pages: ASGIApp, chat: ASGIApp | None, gateway: ASGIApp, mint: ASGIApp
    ) -> None:
        self.pages, self.chat, self.gateway, self.mint = pages, chat, gateway, mint

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] == "http" and not trusted_host(_host_of(scope)):
            error = UntrustedHostError("this server answers to 127.0.0.1 and localhost only")
            body = error_body(error)
            refused = Response(body, status_of(error), media_type="application/json")
            await refused(scope, receive, send)
        elif scope["type"] != "http" or path in _PAGES:  # lifespan events go to Starlette
            await self.pages(scope, receive, send)
        elif path == DEV_MINT_PATH:
            await self.mint(scope, receive, send)
        elif self.chat is not None and _CHAT_PATH.fullmatch(path):
            await self.chat(scope, receive, send)
        else:
            await self.gateway(scope, receive, send)


def _host_of(scope: Scope) -> str:
    hosts = [bytes(v).decode("latin-1") for k, v in scope.get("headers", ()) if k == b"host"]
    return hosts[0] if len(hosts) == 1 else ""  # none, or two: not a name we trust


def _event(
    request: Request,
    body: bytes,
    route: sam.Route,
    parameters: dict[str, str],
    claims: dict[str, Any] | None,
) -> dict[str, Any]:
    """The payload-2.0 event API Gateway's HTTP API sends for this request."""
    now = time.time()
    query: dict[str, str] = {}
    for key, value in parse_qsl(request.url.query, keep_blank_values=True):
        query[key] = f"{query[key]},{value}" if key in query else value  # as API Gateway joins
    context: dict[str, Any] = {
        "accountId": "000000000000",
        "apiId": "local",
        "domainName": request.url.hostname or "127.0.0.1",
        "domainPrefix": "local",
        "http": {
            "method": request.method,
            "path": request.scope["path"],
            "protocol": "HTTP/1.1",
            "sourceIp": request.client.host if request.client else "127.0.0.1",
            "userAgent": request.headers.get("user-agent", ""),
        },
        "requestId": uuid.uuid4().hex,
        "routeKey": route.key,
        "stage": "$default",
        "time": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now)),
        "timeEpoch": int(now * 1000),
    }
    if claims is not None:
        scope = claims.get("scope")  # API Gateway lists the token's scopes
        scopes = scope.split() if isinstance(scope, str) else None
        context["authorizer"] = {"jwt": {"claims": claims, "scopes": scopes}}
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": route.key,
        "rawPath": request.scope["path"],  # decoded, as API Gateway's HTTP API sends it
        "rawQueryString": request.url.query,
        "headers": {k: ",".join(request.headers.getlist(k)) for k in request.headers},  # joined
        "requestContext": context,
        "isBase64Encoded": False,
    }
    if query:
        event["queryStringParameters"] = query
    if parameters:
        event["pathParameters"] = parameters
    if body:
        try:
            event["body"] = body.decode()
        except UnicodeDecodeError:
            event["body"], event["isBase64Encoded"] = base64.b64encode(body).decode(), True
    return event
