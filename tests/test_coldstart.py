"""A function's init runs with the garbage collector paused, and ends with it running again
(``chat_sessions.coldstart``). Each check imports in a fresh interpreter, as a cold start does."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from chat_sessions_local.tables import TEMPLATE

FUNCTIONS = sorted(TEMPLATE.parent.glob("functions/*/app.py"))
AFTER_INIT = """
import gc, importlib.util, json, sys
spec = importlib.util.spec_from_file_location("app", sys.argv[1])
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
print(json.dumps({"collecting": gc.isenabled(), "frozen": gc.get_freeze_count()}))
"""


IN_LAMBDA = {"AWS_LAMBDA_RUNTIME_API": "127.0.0.1:9001"}


def _fresh(code: str, *args: str, environment: dict[str, str] = IN_LAMBDA) -> str:
    return subprocess.run(
        [sys.executable, "-c", code, *args],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "POWERTOOLS_TRACE_DISABLED": "true", **environment},
    ).stdout


def _statements(app: Path) -> list[ast.stmt]:
    body = ast.parse(app.read_text()).body
    return body[1:] if isinstance(body[0], ast.Expr) else body  # after the docstring


@pytest.mark.parametrize("app", FUNCTIONS, ids=lambda path: path.parent.name)
def test_each_function_pauses_the_collector_first_and_resumes_it_last(app: Path) -> None:
    first, last = _statements(app)[0], _statements(app)[-1]

    assert ast.unparse(first) == "from chat_sessions import coldstart"
    assert ast.unparse(last) == "coldstart.finish()"


def test_the_pause_comes_before_pydantic_boto3_and_powertools_load() -> None:
    code = (
        "import gc, json, sys\nfrom chat_sessions import coldstart\n"
        "print(json.dumps([gc.isenabled(), sorted({m.split('.')[0] for m in sys.modules})]))"
    )
    collecting, loaded = json.loads(_fresh(code))

    assert collecting is False
    assert {"pydantic", "boto3", "botocore", "aws_lambda_powertools"} & set(loaded) == set()


@pytest.mark.parametrize("app", FUNCTIONS, ids=lambda path: path.parent.name)
def test_after_init_the_collector_runs_and_what_init_built_is_frozen(app: Path) -> None:
    after = json.loads(_fresh(AFTER_INIT, str(app)))

    assert after["collecting"] is True
    assert after["frozen"] > 10_000  # the modules, classes and clients init made


def test_outside_lambda_importing_it_changes_nothing() -> None:
    """Tests, the local server and the library load function modules in-process: an init that
    failed there must not leave collection paused."""
    code = "import gc, json\nfrom chat_sessions import coldstart\nprint(json.dumps(gc.isenabled()))"

    assert json.loads(_fresh(code, environment={})) is True
    assert "AWS_LAMBDA_RUNTIME_API" not in os.environ


def test_a_process_that_paused_collection_itself_keeps_it_paused() -> None:
    code = (
        "import gc, json\ngc.disable()\nfrom chat_sessions import coldstart\ncoldstart.finish()\n"
        "print(json.dumps([gc.isenabled(), gc.get_freeze_count()]))"
    )

    assert json.loads(_fresh(code)) == [False, 0]


def test_finish_is_once() -> None:
    code = (
        "import gc, json\nfrom chat_sessions import coldstart\ncoldstart.finish()\n"
        "gc.disable()\ncoldstart.finish()\nprint(json.dumps(gc.isenabled()))"
    )

    assert json.loads(_fresh(code)) is False


def test_every_public_name_resolves_lazily_to_its_home() -> None:
    import chat_sessions

    homes = vars(chat_sessions)["_HOMES"]

    assert sorted(homes) == sorted(chat_sessions.__all__)
    for name in chat_sessions.__all__:
        assert getattr(chat_sessions, name).__name__ == name
    assert set(chat_sessions.__all__) <= set(dir(chat_sessions))
