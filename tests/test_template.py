"""template.yaml invariants the code relies on (tests build their tables from the same resource)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from chat_sessions import keys
from chat_sessions.store import schema
from chat_sessions_local import sam
from chat_sessions_local.tables import TEMPLATE, load_template


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return load_template()


def test_table_matches_the_data_model(template: dict[str, Any]) -> None:
    table = template["Resources"]["ChatTable"]
    props = table["Properties"]

    assert table["Type"] == "AWS::DynamoDB::Table"
    assert props["BillingMode"] == "PAY_PER_REQUEST"
    assert props["KeySchema"] == [
        {"AttributeName": "pk", "KeyType": "HASH"},
        {"AttributeName": "sk", "KeyType": "RANGE"},
    ]
    (index,) = props["GlobalSecondaryIndexes"]
    assert index["IndexName"] == keys.ACTIVITY_INDEX
    assert [k["AttributeName"] for k in index["KeySchema"]] == ["user_id", "updated_at"]
    assert props["TimeToLiveSpecification"] == {"AttributeName": "expires_at", "Enabled": True}
    assert props["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}


def test_the_library_creates_the_deployed_table(template: dict[str, Any]) -> None:
    """``chat_sessions.store.schema`` (tables without template.yaml) is ChatTable's shape."""
    props = template["Resources"]["ChatTable"]["Properties"]

    assert {key: props[key] for key in schema.TABLE_SHAPE} == schema.TABLE_SHAPE
    assert props["TimeToLiveSpecification"]["AttributeName"] == schema.TTL_ATTRIBUTE
    assert props["StreamSpecification"]["StreamViewType"] == schema.STREAM_VIEW_TYPE


def test_layer_carries_the_domain_package(template: dict[str, Any]) -> None:
    layer = template["Resources"]["CoreLayer"]
    content = TEMPLATE.parent / layer["Properties"]["ContentUri"]

    assert (content / "chat_sessions" / "__init__.py").is_file()
    requirements = (content / "requirements.txt").read_text().split()
    assert any(r.startswith("pydantic==") for r in requirements)
    assert not any(r.startswith(("boto3==", "botocore==")) for r in requirements)  # runtime's own
    assert layer["Metadata"]["BuildMethod"] == template["Globals"]["Function"]["Runtime"]


HEAVY = ("agents", "openai", "fastapi")
PROBE = """
import importlib.util, json, sys
spec = importlib.util.spec_from_file_location("probe", sys.argv[1])
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
print(json.dumps(sorted({m.split(".")[0] for m in sys.modules} & set(sys.argv[2:]))))
"""


def loaded_by(app: Path, *packages: str) -> list[str]:
    """Which of ``packages`` importing ``app`` loads, in a fresh interpreter (as a cold start)."""
    loaded = subprocess.run(
        [sys.executable, "-c", PROBE, str(app), *packages],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "POWERTOOLS_TRACE_DISABLED": "true"},
    ).stdout
    return list(json.loads(loaded))


@pytest.mark.parametrize("function", sorted(set(sam.functions()) - {"chat", "chat_buffered"}))
def test_crud_functions_do_not_load_the_agents_sdk_or_fastapi(function: str) -> None:
    """Their cold start must not pay ~1-3 s for the chat stack (fresh interpreter per function)."""
    props = sam.functions()[function]["Properties"]

    assert loaded_by(TEMPLATE.parent / props["CodeUri"] / "app.py", *HEAVY) == []


def test_the_buffered_chat_does_not_load_what_only_the_function_url_uses() -> None:
    """Behind API Gateway the authorizer verified the token: no jwt. (cryptography still comes,
    with the Agents SDK's MCP support.)"""
    path = TEMPLATE.parent / "functions" / "chat_buffered" / "app.py"

    assert loaded_by(path, "jwt") == []


def test_the_chat_function_streams_from_a_function_url(template: dict[str, Any]) -> None:
    chat = template["Resources"]["ChatFunction"]["Properties"]
    variables = chat["Environment"]["Variables"]

    assert chat["Handler"] == "run.sh"
    assert (TEMPLATE.parent / chat["CodeUri"] / "run.sh").stat().st_mode & 0o111
    assert chat["FunctionUrlConfig"]["InvokeMode"] == "RESPONSE_STREAM"
    assert chat["FunctionUrlConfig"]["AuthType"] == "NONE"  # the app verifies the JWT itself
    assert variables["AWS_LWA_INVOKE_MODE"] == "response_stream"
    assert variables["AWS_LAMBDA_EXEC_WRAPPER"] == "/opt/bootstrap"
    assert chat["Timeout"] > variables["CHAT_SESSIONS_TURN_TIMEOUT_SECONDS"]
    assert "ChatUrl" in template["Outputs"]


def test_the_chat_function_serves_the_page_with_its_config(template: dict[str, Any]) -> None:
    """docs/chat.md, "The page, deployed": the config parameter named (not referenced) by the
    function, readable by it alone, and valid page config JSON in both sign-in modes."""
    from chat_sessions.web.config import page_config_of

    resources = template["Resources"]
    chat = resources["ChatFunction"]["Properties"]
    name = chat["Environment"]["Variables"]["CHAT_SESSIONS_PAGE_CONFIG_PARAMETER"]
    parameter = resources["PageConfig"]["Properties"]
    granted = [r for s in chat["Policies"] for st in s["Statement"] for r in st["Resource"]]
    cognito, token = parameter["Value"]["If"][1:]

    assert parameter["Name"] == name == {"Sub": "/${AWS::StackName}/page-config"}
    assert {"Sub": "arn:${AWS::Partition}:ssm:${AWS::Region}:${AWS::AccountId}:parameter"
            "/${AWS::StackName}/page-config"} in granted  # fmt: skip
    for value, auth in ((cognito, "cognito"), (token, "token")):
        text = value["Sub"].replace("${ChatApi}", "abc123").replace("${AWS::Region}", "eu-west-1")
        text = text.replace("${AWS::URLSuffix}", "amazonaws.com")
        text = text.replace("${UserPoolClient}", "1example23456789")
        assert page_config_of(json.loads(text)).auth == auth
    origins = resources["ChatApi"]["Properties"]["CorsConfiguration"]["AllowOrigins"]
    assert "ChatFunctionUrl.FunctionUrl" in json.dumps(origins)  # the page's own origin
    assert "GET" in chat["FunctionUrlConfig"]["Cors"]["AllowMethods"]  # the resume
    assert "last-event-id" in chat["FunctionUrlConfig"]["Cors"]["AllowHeaders"]
    assert "ChatPageUrl" in template["Outputs"]


def test_the_chat_url_and_the_api_trust_the_same_issuer(template: dict[str, Any]) -> None:
    """Given or created: the function URL verifies exactly what the HTTP API's authorizer does."""
    resources = template["Resources"]
    jwt = resources["ChatApi"]["Properties"]["Auth"]["Authorizers"]["OidcAuth"]
    variables = resources["ChatFunction"]["Properties"]["Environment"]["Variables"]
    issuer, audience = jwt["JwtConfiguration"]["issuer"], jwt["JwtConfiguration"]["audience"]

    assert variables["CHAT_SESSIONS_JWT_ISSUER"] == issuer
    created_pool, given = issuer["If"][1:]
    assert "${UserPool}" in created_pool["Sub"] and given == {"Ref": "JwtIssuer"}
    assert audience == {
        "If": ["CreateUserPool", [{"Ref": "UserPoolClient"}], {"Ref": "JwtAudience"}]
    }
    assert variables["CHAT_SESSIONS_JWT_AUDIENCE"]["If"][1] == {"Ref": "UserPoolClient"}


def test_an_empty_issuer_gets_a_user_pool_nobody_can_sign_up_to(
    template: dict[str, Any],
) -> None:
    resources = template["Resources"]

    assert template["Parameters"]["JwtIssuer"]["Default"] == ""
    assert template["Conditions"]["CreateUserPool"] == {"Equals": [{"Ref": "JwtIssuer"}, ""]}
    pool, client = resources["UserPool"], resources["UserPoolClient"]
    assert pool["Condition"] == client["Condition"] == "CreateUserPool"
    assert pool["Properties"]["AdminCreateUserConfig"] == {"AllowAdminCreateUserOnly": True}
    assert client["Properties"]["GenerateSecret"] is False
    assert "REPLACE" not in (TEMPLATE.parent / "samconfig.toml").read_text()


def test_every_function_gets_the_layer_and_the_target_runtime(template: dict[str, Any]) -> None:
    function_globals = template["Globals"]["Function"]
    functions = [
        r for r in template["Resources"].values() if r["Type"] == "AWS::Serverless::Function"
    ]

    assert function_globals["Layers"] == [{"Ref": "CoreLayer"}]
    assert (function_globals["Runtime"], function_globals["Architectures"]) == (
        "python3.13",
        ["arm64"],
    )
    assert len(functions) == 21
    # SAM appends a function's Layers to the global list: only the chat functions add any, the
    # ChatLayer, the AgentLayer (your agent) and, for the streaming one, the Lambda Web Adapter.
    added = {
        f["Properties"]["CodeUri"]: f["Properties"]["Layers"]
        for f in functions
        if "Layers" in f["Properties"]
    }
    assert set(added) == {"functions/chat/", "functions/chat_buffered/"}
    assert added["functions/chat_buffered/"] == [{"Ref": "ChatLayer"}, {"Ref": "AgentLayer"}]
    assert "LambdaAdapterLayerArm64" in added["functions/chat/"][2]["Sub"]


@pytest.mark.parametrize("function", ["ChatFunction", "ChatBufferedFunction"])
def test_conversation_content_is_not_traced_unless_asked(
    template: dict[str, Any], function: str
) -> None:
    """Tracing follows AgentTracing, whose default exports nothing (docs/chat.md)."""
    variables = template["Resources"][function]["Properties"]["Environment"]["Variables"]
    mapping = template["Mappings"]["AgentTracing"]
    default = template["Parameters"]["AgentTracing"]["Default"]

    for name, key in [
        ("OPENAI_AGENTS_DISABLE_TRACING", "DisableTracing"),
        ("OPENAI_AGENTS_TRACE_INCLUDE_SENSITIVE_DATA", "IncludeContent"),
    ]:
        assert variables[name] == {"FindInMap": ["AgentTracing", {"Ref": "AgentTracing"}, key]}
    assert mapping[default] == {"DisableTracing": "true", "IncludeContent": "false"}
    assert mapping["Content"]["IncludeContent"] == "true"


def test_the_chat_stack_is_one_layer_not_bundled_per_function(template: dict[str, Any]) -> None:
    layer = template["Resources"]["ChatLayer"]
    requirements = (TEMPLATE.parent / "layers" / "chat" / "requirements.txt").read_text().split()

    assert layer["Properties"]["ContentUri"] == "layers/chat/"
    assert any(r.startswith("openai-agents==") for r in requirements)
    for function in ("chat", "chat_buffered"):
        assert not (TEMPLATE.parent / "functions" / function / "requirements.txt").exists()


@pytest.mark.parametrize("function", ["ChatFunction", "ChatBufferedFunction"])
def test_both_chat_functions_run_your_agent_from_the_agent_layer(
    template: dict[str, Any], function: str
) -> None:
    props = template["Resources"][function]["Properties"]
    layer = template["Resources"]["AgentLayer"]

    assert {"Ref": "AgentLayer"} in props["Layers"]
    assert props["Environment"]["Variables"]["CHAT_SESSIONS_AGENT_FACTORY"] == {
        "Ref": "AgentFactory"
    }
    assert layer["Properties"]["ContentUri"] == "layers/agent/"
    assert (TEMPLATE.parent / "layers" / "agent" / "requirements.txt").exists()
