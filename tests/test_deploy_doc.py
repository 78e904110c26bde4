"""docs/deploy.md names only what exists: make targets, template parameters and stack outputs."""

from __future__ import annotations

import re
from typing import Any

import pytest

from chat_sessions_local.tables import TEMPLATE, load_template

DOC = (TEMPLATE.parent / "docs" / "deploy.md").read_text()
CODE = "\n".join(re.findall(r"```bash\n(.*?)```", DOC, flags=re.S))


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return load_template()


def test_every_make_target_it_runs_exists() -> None:
    makefile = (TEMPLATE.parent / "Makefile").read_text()
    targets = set(re.findall(r"^([a-z-]+):", makefile, flags=re.M))
    used = set(re.findall(r"\bmake (?:-s )?([a-z-]+)", CODE))

    assert used >= {"build", "deploy"}
    assert used <= targets


def test_every_output_it_reads_exists(template: dict[str, Any]) -> None:
    read = set(re.findall(r"\$\(out (\w+)\)", CODE))

    assert read == {"ApiUrl", "ChatUrl", "UserPoolId", "UserPoolClientId"}
    assert read <= set(template["Outputs"])


def test_every_parameter_it_names_exists(template: dict[str, Any]) -> None:
    table = DOC.split("| parameter |", 1)[1].split("\n\n", 1)[0]
    named = {n for row in table.splitlines()[2:] for n in re.findall(r"`(\w+)`", row.split("|")[1])}
    overridden = set(re.findall(r"(\w+)=[\w:.]+", " ".join(re.findall(r'PARAMS="([^"]+)"', DOC))))

    assert {"JwtIssuer", "AgentFactory", "AgentTracing", "TrustedWriterScope"} <= named
    assert named | overridden <= set(template["Parameters"])


def test_the_key_goes_where_the_chat_functions_read_it(template: dict[str, Any]) -> None:
    (name,) = set(re.findall(r"ssm put-parameter --name (\S+)", CODE))

    assert name == template["Parameters"]["OpenAiKeyParameter"]["Default"]
    assert f"ssm delete-parameter --name {name}" in CODE
