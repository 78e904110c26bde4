"""Fixtures shared by every suite.

Each store-backed test runs twice: against moto (unit) and against Amazon's DynamoDB Local, a
real server started once per run on a free loopback port (``integration``). Each test gets its own
table, created from template.yaml's ChatTable.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

# Before anything imports boto3 or the Agents SDK: no real credentials, no trace export.
os.environ.update(
    AWS_ACCESS_KEY_ID="testing",
    AWS_SECRET_ACCESS_KEY="testing",
    AWS_SESSION_TOKEN="testing",
    AWS_DEFAULT_REGION="us-east-1",
    OPENAI_AGENTS_DISABLE_TRACING="1",
)
os.environ.pop("CHAT_SESSIONS_ENDPOINT_URL", None)

import boto3
from moto import mock_aws

from chat_sessions import ChatStore, service
from chat_sessions.config import get_settings
from chat_sessions.store.client import RETRY_CONFIG, default_client
from chat_sessions_local.dynamodb_local import DynamoDBLocal
from chat_sessions_local.seed import seed
from chat_sessions_local.tables import create_table
from support import TRUSTED_SCOPE, FakeClock

TTL_SECONDS = 3600
API_TABLE = "chat-api"


@pytest.fixture(autouse=True)
def _fresh_caches() -> Iterator[None]:
    get_settings.cache_clear()
    default_client.cache_clear()
    yield
    get_settings.cache_clear()
    default_client.cache_clear()


@pytest.fixture(scope="session")
def dynamodb_local() -> Iterator[DynamoDBLocal]:
    with DynamoDBLocal() as server:
        yield server


@pytest.fixture(params=["moto", pytest.param("dynamodb_local", marks=pytest.mark.integration)])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def new_client(backend: str, request: pytest.FixtureRequest) -> Iterator[Callable[[], Any]]:
    """Makes independent clients of the backend (one per simulated process)."""
    if backend == "moto":
        with mock_aws():
            yield lambda: boto3.client("dynamodb", region_name="us-east-1", config=RETRY_CONFIG)
    else:
        server: DynamoDBLocal = request.getfixturevalue("dynamodb_local")
        yield server.client


@pytest.fixture
def dynamodb_client(new_client: Callable[[], Any]) -> Any:
    return new_client()


@pytest.fixture
def table_name(dynamodb_client: Any, request: pytest.FixtureRequest) -> Iterator[str]:
    """A new table; with the template's stream only for tests marked ``stream``."""
    name = f"chat-{uuid.uuid4().hex[:12]}"
    create_table(
        dynamodb_client, name, stream=request.node.get_closest_marker("stream") is not None
    )
    yield name
    dynamodb_client.delete_table(TableName=name)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def make_store(
    new_client: Callable[[], Any], table_name: str, clock: FakeClock
) -> Callable[..., ChatStore]:
    """Independent stores (own client) over the test's table; keyword arguments override."""

    def make(**overrides: Any) -> ChatStore:
        options: dict[str, Any] = {
            "client": new_client(),
            "clock": clock,
            "session_ttl_seconds": TTL_SECONDS,
        }
        options.update(overrides)
        return ChatStore(table_name, **options)

    return make


@pytest.fixture
def store(make_store: Callable[..., ChatStore]) -> ChatStore:
    return make_store()


@pytest.fixture
def api_store(monkeypatch: pytest.MonkeyPatch) -> Iterator[ChatStore]:
    """The state the sample events assume: user-123 owns trip-2026 (3 messages) and empty-chat,
    and has asked for a deletion of everything (not carried out here)."""
    monkeypatch.setenv("CHAT_SESSIONS_TABLE_NAME", API_TABLE)
    monkeypatch.setenv("CHAT_SESSIONS_TRUSTED_SCOPE", TRUSTED_SCOPE)
    monkeypatch.setenv("POWERTOOLS_TRACE_DISABLED", "true")
    service.get_store.cache_clear()
    with mock_aws():
        create_table(boto3.client("dynamodb", region_name="us-east-1"), API_TABLE)
        store = ChatStore(API_TABLE)
        seed(store, deletion=True)
        yield store
    service.get_store.cache_clear()


@pytest.fixture
def dev_issuer(tmp_path: Any) -> Any:
    from chat_sessions_local.issuer import DevIssuer

    return DevIssuer.load_or_create("http://127.0.0.1:8000", key_file=tmp_path / "key.pem")


@pytest.fixture
def local_api(
    backend: str,
    table_name: str,
    dev_issuer: Any,
    monkeypatch: pytest.MonkeyPatch,
    request: pytest.FixtureRequest,
) -> Iterator[Any]:
    """The local server's app (JWT verification + the real handlers) over the test's table."""
    from starlette.testclient import TestClient

    from chat_sessions_local.server import create_app

    monkeypatch.setenv("CHAT_SESSIONS_TABLE_NAME", table_name)
    monkeypatch.setenv("POWERTOOLS_TRACE_DISABLED", "true")
    if backend == "dynamodb_local":
        server: DynamoDBLocal = request.getfixturevalue("dynamodb_local")
        monkeypatch.setenv("CHAT_SESSIONS_ENDPOINT_URL", server.endpoint_url)
    service.get_store.cache_clear()
    with TestClient(create_app(dev_issuer), base_url="http://127.0.0.1:8000") as client:
        yield client
    service.get_store.cache_clear()


@pytest.fixture
def cascade(
    backend: str,
    table_name: str,
    monkeypatch: pytest.MonkeyPatch,
    request: pytest.FixtureRequest,
) -> Iterator[Callable[[dict[str, Any]], dict[str, Any]]]:
    """The cascade handler resolved from template.yaml, configured for the test's table."""
    from handlers import LambdaContext, handler_of

    monkeypatch.setenv("CHAT_SESSIONS_TABLE_NAME", table_name)
    monkeypatch.setenv("POWERTOOLS_TRACE_DISABLED", "true")
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "ChatSessions")
    if backend == "dynamodb_local":
        server: DynamoDBLocal = request.getfixturevalue("dynamodb_local")
        monkeypatch.setenv("CHAT_SESSIONS_ENDPOINT_URL", server.endpoint_url)
    for cache in (service.get_store, get_settings, default_client):
        cache.cache_clear()  # read again from the environment set above
    from chat_sessions.observability import metrics

    metrics.clear_metrics()  # what earlier direct calls of cascade() added, unpublished
    handler = handler_of("cascade")
    yield lambda event: handler(event, LambdaContext())
    service.get_store.cache_clear()


@pytest.fixture
def local_cascade(
    new_client: Callable[[], Any], table_name: str, clock: FakeClock, cascade: Any
) -> Any:
    """Stream records through the template's filters into the handler, as the dev server does."""
    from chat_sessions_local.streams import LocalCascade

    return LocalCascade(new_client(), table_name, clock=clock)
