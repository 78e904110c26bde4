"""The chat page's runtime config: how it signs in and where the API and the chat are.

``/page/config.json`` serves it (``web.page``) and the Content-Security-Policy is built from it,
so it is validated before either: an origin in it goes into a header.

    {"auth": "dev" | "cognito" | "token", "api_url": "", "chat_url": "",
     "cognito": {"region": "eu-west-1", "client_id": "..."}}      # cognito only

Empty URLs mean the page's own origin. ``make dev`` serves ``{"auth": "dev", ...}`` (the local
server mints tokens at ``POST /dev/token``). Deployed, ``deployed_page_config`` reads the JSON
from the SSM String parameter named by ``CHAT_SESSIONS_PAGE_CONFIG_PARAMETER``, once per process;
without that setting the page asks for a pasted bearer token. A deployed config never says
``"dev"``: no deployed function mints tokens, so that page could not sign anyone in.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from functools import lru_cache
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from chat_sessions.errors import ChatSessionsError

PARAMETER_ENV = "CHAT_SESSIONS_PAGE_CONFIG_PARAMETER"
TOKEN_MODE: dict[str, Any] = {"auth": "token", "api_url": "", "chat_url": ""}
"""The config with no parameter: same origin, a pasted token."""
_URL = r"^(https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?(/[A-Za-z0-9._~%!$&*+=:@/-]*)?)?$"
"""Empty, or an http(s) URL whose host, port and path cannot smuggle anything into a header."""


class PageConfigError(ChatSessionsError):
    """The deployment's page config is missing or invalid (a 500: the operator must fix it)."""

    code = "configuration_error"


class CognitoConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    region: str = Field(pattern=r"^[a-z]{2}(-[a-z]+)+-[0-9]{1,2}$")
    client_id: str = Field(pattern=r"^[A-Za-z0-9+]{1,128}$")

    def endpoint(self) -> str:
        """Cognito's public user-pool API in the region (InitiateAuth, RespondToAuthChallenge)."""
        return f"https://cognito-idp.{self.region}.amazonaws.com"


class PageConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    auth: Literal["dev", "cognito", "token"]
    api_url: str = Field(default="", pattern=_URL)
    chat_url: str = Field(default="", pattern=_URL)
    cognito: CognitoConfig | None = None

    @model_validator(mode="after")
    def _cognito_names_its_pool_client(self) -> PageConfig:
        if (self.auth == "cognito") != (self.cognito is not None):
            raise ValueError('"cognito" {region, client_id} is given exactly when auth is cognito')
        return self

    def connect_origins(self) -> list[str]:
        """The origins besides its own the page connects to (its CSP's ``connect-src``)."""
        origins = [_origin(url) for url in (self.api_url, self.chat_url) if url]
        if self.cognito is not None:
            origins.append(self.cognito.endpoint())
        return origins

    def public(self) -> dict[str, Any]:
        """What ``/page/config.json`` says (no secrets exist in it: a public client id)."""
        return self.model_dump(mode="json", exclude_none=True)


def page_config_of(raw: Mapping[str, Any]) -> PageConfig:
    try:
        return PageConfig.model_validate(dict(raw))
    except ValidationError as error:
        problems = [
            {"loc": list(e["loc"]), "type": e["type"], "msg": e["msg"]} for e in error.errors()
        ]
        raise PageConfigError(
            f"the page config (the SSM parameter named by {PARAMETER_ENV}) is invalid",
            details=problems,
        ) from None


def deployed_page_config() -> dict[str, Any]:
    """The deployed page's config: from SSM when ``CHAT_SESSIONS_PAGE_CONFIG_PARAMETER`` names a
    parameter (read once per process), else the pasted-token mode."""
    return dict(load_deployed_config())


@lru_cache(maxsize=1)
def load_deployed_config() -> Mapping[str, Any]:
    name = os.environ.get(PARAMETER_ENV)
    if not name:
        return TOKEN_MODE
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    client: Any = boto3.client("ssm")
    try:
        value = client.get_parameter(Name=name)["Parameter"]["Value"]
        raw = json.loads(value)
    except (BotoCoreError, ClientError, ValueError) as error:
        raise PageConfigError(f"the SSM parameter {PARAMETER_ENV} names is unreadable") from error
    if not isinstance(raw, dict):
        raise PageConfigError(f"the SSM parameter {PARAMETER_ENV} names is not a JSON object")
    config = page_config_of(raw)
    if config.auth == "dev":
        raise PageConfigError(
            f'the SSM parameter {PARAMETER_ENV} names says auth "dev", which is local only: '
            'a deployed page signs in with "cognito" or "token"'
        )
    return config.public()


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"
