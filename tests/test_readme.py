"""The README's Python example runs as written, against DynamoDB Local."""

from __future__ import annotations

import ast
import re
import runpy
from pathlib import Path

import pytest

from chat_sessions_local.dynamodb_local import DynamoDBLocal
from chat_sessions_local.tables import create_table

README = Path(__file__).resolve().parents[1] / "README.md"


@pytest.mark.integration
def test_readme_example_runs(
    dynamodb_local: DynamoDBLocal,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    (example,) = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    create_table(dynamodb_local.client(), "chat-readme", stream=False)
    monkeypatch.setenv("CHAT_SESSIONS_ENDPOINT_URL", dynamodb_local.endpoint_url)
    monkeypatch.setenv("CHAT_SESSIONS_TABLE_NAME", "chat-readme")
    script = tmp_path / "example.py"
    script.write_text(example)

    runpy.run_path(str(script), run_name="__main__")

    final_output, history = capsys.readouterr().out.splitlines()
    assert final_output == "Hi Ada!"
    user, assistant = ast.literal_eval(history)
    assert user == {"role": "user", "content": "Hello, I'm Ada"}
    assert (assistant["role"], assistant["content"][0]["text"]) == ("assistant", "Hi Ada!")
