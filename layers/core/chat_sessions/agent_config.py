"""The app's agent and its model access (chat path only: imports the Agents SDK).

- ``CHAT_SESSIONS_AGENT_FACTORY=module:callable`` builds the app's own agent; otherwise a plain
  assistant with ``CHAT_SESSIONS_INSTRUCTIONS`` on ``CHAT_SESSIONS_MODEL``.
- The OpenAI key comes from ``OPENAI_API_KEY``, or in Lambda from SSM
  (``CHAT_SESSIONS_OPENAI_KEY_PARAMETER``) or Secrets Manager
  (``CHAT_SESSIONS_OPENAI_KEY_SECRET``) through Powertools parameters (cached).
  ``OPENAI_BASE_URL`` selects any OpenAI-compatible endpoint.
- Locally with no key: ``OfflineModel``, announced at startup, with one tool (``current_time``)
  and an optional pause per word (``CHAT_SESSIONS_OFFLINE_WORD_DELAY``). In Lambda a missing key
  is a configuration error, never a silent fallback.
"""

from __future__ import annotations

import asyncio
import importlib
import os
import re
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from agents import Agent, Model, Tool, function_tool
from agents.testing import ModelStep, ScriptedModel, assistant_message, function_call
from openai.types.responses import ResponseTextDeltaEvent
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from .errors import ChatSessionsError
from .turns import TurnSettings

PARAMETER_CACHE_SECONDS = 300


class ConfigurationError(ChatSessionsError):
    """The deployment is missing a setting it needs (a 500: the operator must fix it)."""

    code = "configuration_error"


class AgentSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CHAT_SESSIONS_", frozen=True)

    agent_factory: str | None = None
    model: str = "gpt-4.1-mini"
    instructions: str = "You are a helpful assistant. Answer clearly and briefly."
    openai_key_parameter: str | None = None
    openai_key_secret: str | None = None
    context_turns: int = 10
    context_token_budget: int | None = None
    compaction: bool = False
    compaction_drops_originals: bool = False
    turn_timeout_seconds: float = 120.0
    offline_word_delay: float = Field(default=0.0, ge=0.0, le=5.0)
    """Seconds the offline model waits before each word (``make dev``: visible streaming)."""

    def turn_settings(self) -> TurnSettings:
        return TurnSettings(
            context_turns=self.context_turns,
            context_token_budget=self.context_token_budget,
            compaction=self.compaction,
            drop_compacted=self.compaction_drops_originals,
            timeout_seconds=self.turn_timeout_seconds,
        )


def in_lambda() -> bool:
    return "AWS_LAMBDA_FUNCTION_NAME" in os.environ


def openai_api_key(settings: AgentSettings) -> str | None:
    key = os.environ.get("OPENAI_API_KEY")
    if key:
        return key
    if settings.openai_key_parameter or settings.openai_key_secret:
        from aws_lambda_powertools.utilities import parameters

        if settings.openai_key_parameter:
            value = parameters.get_parameter(
                settings.openai_key_parameter, decrypt=True, max_age=PARAMETER_CACHE_SECONDS
            )
        else:
            value = parameters.get_secret(
                str(settings.openai_key_secret), max_age=PARAMETER_CACHE_SECONDS
            )
        return str(value) if value else None
    return None


def build_model(settings: AgentSettings) -> Model | str:
    """The model the default agent runs on."""
    key = openai_api_key(settings)
    base_url = os.environ.get("OPENAI_BASE_URL")
    if key or base_url:
        from agents import OpenAIChatCompletionsModel, OpenAIResponsesModel
        from openai import AsyncOpenAI

        client = AsyncOpenAI(api_key=key or "not-needed", base_url=base_url)
        if base_url:  # OpenAI-compatible servers implement Chat Completions, not Responses
            return OpenAIChatCompletionsModel(model=settings.model, openai_client=client)
        return OpenAIResponsesModel(model=settings.model, openai_client=client)
    if in_lambda():
        raise ConfigurationError(
            "no model access: set OPENAI_API_KEY, CHAT_SESSIONS_OPENAI_KEY_PARAMETER, "
            "CHAT_SESSIONS_OPENAI_KEY_SECRET or OPENAI_BASE_URL"
        )
    return OfflineModel(word_delay=settings.offline_word_delay)


@lru_cache(maxsize=1)
def build_agent() -> Agent[Any]:
    """The agent every turn runs (built once per process)."""
    settings = AgentSettings()
    if settings.agent_factory:
        module_name, _, attribute = settings.agent_factory.partition(":")
        if not attribute:
            raise ConfigurationError("CHAT_SESSIONS_AGENT_FACTORY must look like module:callable")
        factory = getattr(importlib.import_module(module_name), attribute)
        agent = factory()
        if not isinstance(agent, Agent):
            raise ConfigurationError(f"{settings.agent_factory} did not return an agents.Agent")
        return agent
    model = build_model(settings)
    # Offline, one tool: "what time is it?" shows a tool call and its output end to end.
    tools: list[Tool] = [current_time] if isinstance(model, OfflineModel) else []
    return Agent(name="assistant", instructions=settings.instructions, model=model, tools=tools)


@function_tool
def current_time() -> str:
    """The current date and time, in UTC."""
    return datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")


def offline_reply(message: str) -> str:
    """What the offline model says: deterministic, so local runs and demos are repeatable."""
    words = len(message.split())
    return (
        f"(offline model) You said {words} word{'s' if words != 1 else ''}: “{message.strip()}”. "
        "Set OPENAI_API_KEY to talk to a real model."
    )


class OfflineModel(ScriptedModel):
    """A model with no network and no key: replies with ``offline_reply`` and streams it word by
    word. ``pause`` is awaited before each word (tests hold the model between tokens with it);
    without it, ``word_delay`` seconds are slept.

    When the agent offers a ``current_time`` tool and the message has the word "time", it first
    calls that tool, then answers with ``offline_reply`` and the tool's output."""

    def __init__(
        self, pause: Callable[[], Awaitable[None]] | None = None, word_delay: float = 0.0
    ) -> None:
        super().__init__()
        self._pause = pause
        self._word_delay = word_delay

    async def get_response(self, *args: Any, **kwargs: Any) -> Any:
        self.enqueue(ModelStep.respond(self._respond))
        return await super().get_response(*args, **kwargs)

    async def stream_response(self, *args: Any, **kwargs: Any) -> AsyncIterator[Any]:
        self.enqueue(ModelStep.respond(self._respond))
        async for event in super().stream_response(*args, **kwargs):
            if isinstance(event, ResponseTextDeltaEvent):
                for word in re.findall(r"\S+\s*", event.delta):
                    if self._pause is not None:
                        await self._pause()
                    else:
                        await asyncio.sleep(self._word_delay)
                    yield event.model_copy(update={"delta": word})
            else:
                yield event

    @staticmethod
    def _respond(call: Any) -> Any:
        items = (
            call.input
            if isinstance(call.input, list)
            else [{"role": "user", "content": call.input}]
        )
        last = next((n for n in range(len(items) - 1, -1, -1) if _role(items[n]) == "user"), None)
        content = items[last].get("content", "") if last is not None else ""
        text = (
            content
            if isinstance(content, str)
            else " ".join(part.get("text", "") for part in content if isinstance(part, dict))
        )
        after = items[last + 1 :] if last is not None else []
        outputs = [i for i in after if _kind(i) == "function_call_output"]
        if outputs:
            said = f"{offline_reply(text)} The current_time tool says: {outputs[-1].get('output')}."
            return [assistant_message(said, item_id="offline-message")]
        offered = any(getattr(tool, "name", None) == "current_time" for tool in call.tools)
        if offered and re.search(r"\btime\b", text, flags=re.IGNORECASE):
            call_id = f"call_{uuid.uuid4().hex[:12]}"
            return [function_call("current_time", {}, call_id=call_id)]
        return [assistant_message(offline_reply(text), item_id="offline-message")]


def _role(item: Any) -> Any:
    return item.get("role") if isinstance(item, dict) else None


def _kind(item: Any) -> Any:
    return item.get("type") if isinstance(item, dict) else None
