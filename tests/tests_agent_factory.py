"""An app's agent factory, as CHAT_SESSIONS_AGENT_FACTORY=module:callable names it."""

from agents import Agent

from chat_sessions.agent_config import OfflineModel


def make_agent() -> Agent[None]:
    return Agent(name="travel-agent", instructions="Plan trips.", model=OfflineModel())
