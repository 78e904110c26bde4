"""The README's Python example runs as written, against DynamoDB Local."""

from __future__ import annotations

import ast
import os
import re
import runpy
from pathlib import Path

import pytest

from chat_sessions.store import schema
from chat_sessions_local.dev import library_environment
from chat_sessions_local.dynamodb_local import DynamoDBLocal

README = Path(__file__).resolve().parents[1] / "README.md"


@pytest.mark.integration
def test_readme_example_runs(
    dynamodb_local: DynamoDBLocal,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """With exactly the environment ``make dev`` prints, and nothing from the test setup."""
    (example,) = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    schema.create_table(dynamodb_local.client(), "chat-readme", stream=False)
    for name in [n for n in os.environ if n.startswith(("AWS_", "CHAT_SESSIONS_"))]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    for name, value in library_environment(dynamodb_local.endpoint_url, "chat-readme").items():
        monkeypatch.setenv(name, value)
    script = tmp_path / "example.py"
    script.write_text(example)

    runpy.run_path(str(script), run_name="__main__")

    final_output, history = capsys.readouterr().out.splitlines()
    assert final_output == "Hi Ada!"
    user, assistant = ast.literal_eval(history)
    assert user == {"role": "user", "content": "Hello, I'm Ada"}
    assert (assistant["role"], assistant["content"][0]["text"]) == ("assistant", "Hi Ada!")
