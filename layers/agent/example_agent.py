"""An example of your own agent, deployed: set the template parameter
``AgentFactory=example_agent:build_agent`` (``CHAT_SESSIONS_AGENT_FACTORY`` locally).

Everything in this folder is the AgentLayer, on the chat functions' import path (``/opt/python``
in Lambda; ``make dev`` adds the folder too). Its dependencies go in ``requirements.txt`` here.
"""

from __future__ import annotations

from datetime import UTC, datetime

from agents import Agent, function_tool

from chat_sessions.agent_config import AgentSettings, build_model


@function_tool
def current_time() -> str:
    """The current date and time, in UTC."""
    return datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")


def build_agent() -> Agent[None]:
    """The deployment's model (``CHAT_SESSIONS_MODEL``, its key from SSM) with one tool."""
    settings = AgentSettings()
    return Agent(
        name="assistant",
        instructions="You are a helpful assistant. Use current_time when asked about dates.",
        model=build_model(settings),
        tools=[current_time],
    )
