"""``PageMiddleware``: the chat page in front of the chat app (docs/page.md).

It answers ``GET``/``HEAD`` of ``/`` (index.html), ``/page/<file>`` (the files of ``static/``,
looked up by name: no path reaches the file system) and ``/page/config.json`` (the page's runtime
config), and passes every other request to the app unchanged. Every answer carries a strict
Content-Security-Policy: scripts, styles and images from this origin only, no inline script,
``connect-src`` limited to this origin, the configured API and chat origins and, for Cognito, its
regional endpoint, and Trusted Types enforced with no policy (no string ever reaches an HTML or
script sink: the page sets text only).

Pure ASGI (no framework import): it runs outermost, before the edge's identity check, because the
page itself needs no token.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from chat_sessions.errors import ChatSessionsError, MethodNotAllowedError, RouteNotFoundError
from chat_sessions.http import error_body, error_headers, status_of

from .config import PageConfig, PageConfigError, page_config_of

if TYPE_CHECKING:
    from starlette.types import ASGIApp, Receive, Scope, Send

logger = logging.getLogger(__name__)

STATIC = Path(__file__).parent / "static"
PREFIX = "/page/"
CONFIG_PATH = "/page/config.json"
INDEX = "index.html"
METHODS = ["GET", "HEAD"]
CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
}
"""What is served, by suffix; any other file in ``static/`` is not."""


@dataclass(frozen=True)
class Asset:
    body: bytes
    content_type: str
    etag: str


@lru_cache(maxsize=1)
def assets() -> dict[str, Asset]:
    """The servable files of ``static/`` by name, read once per process (a few tens of KB)."""
    found: dict[str, Asset] = {}
    for file in sorted(STATIC.iterdir()):
        content_type = CONTENT_TYPES.get(file.suffix)
        if file.is_file() and content_type is not None and not file.name.startswith("."):
            body = file.read_bytes()
            found[file.name] = Asset(body, content_type, _etag(body))
    return found


def content_security_policy(config: PageConfig) -> str:
    """The page's policy: its own files only, and connections to the origins it talks to."""
    connect = ["'self'", *config.connect_origins()]
    return "; ".join(
        [
            "default-src 'self'",
            "script-src 'self'",
            "style-src 'self'",
            "img-src 'self'",
            f"connect-src {' '.join(dict.fromkeys(connect))}",
            "object-src 'none'",
            "base-uri 'none'",
            "form-action 'none'",
            "frame-ancestors 'none'",
            "require-trusted-types-for 'script'",
            "trusted-types 'none'",
        ]
    )


class PageMiddleware:
    """Serves the page; ``config`` returns the page's runtime config (``web.config``)."""

    def __init__(self, app: ASGIApp, config: Callable[[], Mapping[str, Any]]) -> None:
        self.app, self.config = app, config

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "") if scope["type"] == "http" else ""
        if path != "/" and not path.startswith(PREFIX):
            await self.app(scope, receive, send)
            return
        try:
            await self._answer(scope, send)
        except ChatSessionsError as error:
            body = error_body(error).encode()
            headers = {"Content-Type": "application/json", **error_headers(error)}
            await _send(send, status_of(error), body, headers, len(body))

    async def _answer(self, scope: Scope, send: Send) -> None:
        path, method = scope["path"], scope["method"]
        name = INDEX if path == "/" else path.removeprefix(PREFIX)
        asset = assets().get(name)
        config = self._config()
        if asset is None and path == CONFIG_PATH:
            body = json.dumps(config.public(), separators=(",", ":")).encode()
            asset = Asset(body, "application/json", _etag(body))
        if asset is None:
            raise RouteNotFoundError(f"no page at {path}")
        if method not in METHODS:
            raise MethodNotAllowedError(f"{method} is not allowed here", allowed=METHODS)
        headers = {
            "Content-Type": asset.content_type,
            "Cache-Control": "no-cache",  # revalidated every time: a deploy shows at once
            "ETag": asset.etag,
            "Content-Security-Policy": content_security_policy(config),
            "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "no-referrer",
        }
        if asset.etag in _header(scope, b"if-none-match").split(", "):
            await _send(send, 304, b"", headers, None)
            return
        await _send(send, 200, b"" if method == "HEAD" else asset.body, headers, len(asset.body))

    def _config(self) -> PageConfig:
        try:
            return page_config_of(self.config())
        except PageConfigError:
            raise
        except Exception as error:  # a broken deployment: say so, in the API's body
            logger.exception("page config unavailable")
            raise PageConfigError("the page's config could not be read") from error


def _etag(body: bytes) -> str:
    return f'"{hashlib.sha256(body).hexdigest()[:20]}"'


def _header(scope: Scope, name: bytes) -> str:
    for key, value in scope.get("headers", ()):
        if key.lower() == name:
            return bytes(value).decode("latin-1")
    return ""


async def _send(
    send: Send, status: int, body: bytes, headers: Mapping[str, str], length: int | None
) -> None:
    """One whole response; ``length`` is the Content-Length to declare (none for a 304)."""
    raw = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()]
    if length is not None:
        raw.append((b"content-length", str(length).encode()))
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})
