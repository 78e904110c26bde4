"""Model access: key sources, OpenAI-compatible endpoints, and no silent fallback in Lambda."""

from __future__ import annotations

import boto3
import pytest
from agents import OpenAIChatCompletionsModel, OpenAIResponsesModel
from moto import mock_aws

from chat_sessions.agent_config import (
    AgentSettings,
    ConfigurationError,
    OfflineModel,
    build_agent,
    build_model,
    openai_api_key,
)
from chat_sessions_local.dev import AGENT_LAYER

MODEL_ENV = ("OPENAI_API_KEY", "OPENAI_BASE_URL", "AWS_LAMBDA_FUNCTION_NAME")


@pytest.fixture(autouse=True)
def _clean_model_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in MODEL_ENV:
        monkeypatch.delenv(name, raising=False)
    build_agent.cache_clear()


def test_locally_without_a_key_the_model_is_offline() -> None:
    assert isinstance(build_model(AgentSettings()), OfflineModel)


def test_in_lambda_a_missing_key_is_a_configuration_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "chat")

    with pytest.raises(ConfigurationError) as error:
        build_model(AgentSettings())
    assert error.value.code == "configuration_error"


def test_the_key_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "test-key-from-env")

    model = build_model(AgentSettings(model="gpt-test"))

    assert isinstance(model, OpenAIResponsesModel)
    assert openai_api_key(AgentSettings()) == "test-key-from-env"


def test_the_key_comes_from_ssm_in_lambda(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "chat")
    with mock_aws():
        boto3.client("ssm", region_name="us-east-1").put_parameter(
            Name="/chat-sessions/openai-api-key", Value="test-key-from-ssm", Type="SecureString"
        )
        settings = AgentSettings(openai_key_parameter="/chat-sessions/openai-api-key")

        assert openai_api_key(settings) == "test-key-from-ssm"
        assert isinstance(build_model(settings), OpenAIResponsesModel)


def test_an_openai_compatible_endpoint_uses_chat_completions(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:11434/v1")

    assert isinstance(build_model(AgentSettings()), OpenAIChatCompletionsModel)


def test_the_app_can_bring_its_own_agent(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHAT_SESSIONS_AGENT_FACTORY", "tests_agent_factory:make_agent")

    agent = build_agent()

    assert agent.name == "travel-agent"
    monkeypatch.setenv("CHAT_SESSIONS_AGENT_FACTORY", "no-colon")
    build_agent.cache_clear()
    with pytest.raises(ConfigurationError):
        build_agent()


def test_the_dev_banner_names_a_configured_agent(monkeypatch: pytest.MonkeyPatch) -> None:
    from chat_sessions_local.dev import model_banner

    monkeypatch.setenv("CHAT_SESSIONS_AGENT_FACTORY", "tests_agent_factory:make_agent")

    assert "tests_agent_factory:make_agent" in model_banner()


def test_the_example_agent_in_the_agent_layer_loads_by_its_factory(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """What ``AgentFactory=example_agent:build_agent`` deploys (layers/agent/README.md)."""
    monkeypatch.syspath_prepend(str(AGENT_LAYER))
    monkeypatch.setenv("CHAT_SESSIONS_AGENT_FACTORY", "example_agent:build_agent")

    agent = build_agent()

    assert [tool.name for tool in agent.tools] == ["current_time"]
    assert isinstance(agent.model, OfflineModel)  # locally, with no key
