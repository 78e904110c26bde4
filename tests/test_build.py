"""The deployable artifacts, as ``make build`` leaves them in .aws-sam/build (docs/deploy.md):
compiled for the target runtime, no runtime-provided packages in the layers, the chat stack once,
and within their size budgets. Built once per run (about two minutes)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from chat_sessions_local.build import BUILD, RUNTIME_PROVIDED, TARGET
from chat_sessions_local.tables import TEMPLATE

MB = 1024 * 1024
BUDGET_MB = {"CoreLayer": 45, "ChatLayer": 75, "AgentLayer": 1, "function": 1}
"""Unzipped sizes; a chat function with its layers must stay far below Lambda's 250 MB."""
PYC_TAG = f"cpython-{TARGET.replace('.', '')}"
RUNTIME_DISTS = tuple(f"{n.replace('dateutil', 'python_dateutil')}-" for n in RUNTIME_PROVIDED)


@pytest.fixture(scope="module")
def build() -> Path:
    subprocess.run(
        [sys.executable, "-m", "chat_sessions_local.build"], cwd=TEMPLATE.parent, check=True
    )
    return BUILD


def size_mb(folder: Path) -> float:
    return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file()) / MB


@pytest.mark.build
def test_every_module_has_bytecode_for_the_target_runtime(build: Path) -> None:
    """Lambda's code directories are read-only: a module without its .pyc compiles again on
    every cold start."""
    missing = [
        source
        for source in build.rglob("*.py")
        if not (source.parent / "__pycache__" / f"{source.stem}.{PYC_TAG}.pyc").exists()
    ]

    assert missing == []


@pytest.mark.build
def test_the_layers_carry_nothing_the_runtime_provides(build: Path) -> None:
    for layer in ("CoreLayer", "ChatLayer"):
        python = build / layer / "python"
        assert python.is_dir()
        assert [n for n in RUNTIME_PROVIDED if (python / n).exists()] == [], layer
        assert [m.name for m in python.glob("*-*.d*") if m.name.startswith(RUNTIME_DISTS)] == []


@pytest.mark.build
def test_the_chat_stack_is_in_one_layer_and_not_in_the_core(build: Path) -> None:
    core, chat = build / "CoreLayer" / "python", build / "ChatLayer" / "python"
    core_dists = {d.name for d in core.glob("*.dist-info")}
    chat_dists = {d.name for d in chat.glob("*.dist-info")}

    assert (chat / "agents").is_dir() and (chat / "fastapi").is_dir()
    assert not (core / "agents").exists()
    assert core_dists & chat_dists == set()
    assert (core / "pydantic").is_dir() and not (chat / "pydantic").exists()


@pytest.mark.build
def test_the_chat_page_ships_in_the_core_layer(build: Path) -> None:
    """The chat function serves the page (docs/chat.md, "The page, deployed") from the package."""
    static = build / "CoreLayer" / "python" / "chat_sessions" / "web" / "static"
    shipped = {f.name for f in static.iterdir()}
    source = TEMPLATE.parent / "layers" / "core" / "chat_sessions" / "web" / "static"

    assert {"index.html", "app.js", "app.css"} <= shipped
    assert shipped == {f.name for f in source.iterdir()}


@pytest.mark.build
def test_the_artifacts_stay_within_their_budgets(build: Path) -> None:
    sizes = {a.name: size_mb(a) for a in build.iterdir() if a.is_dir()}
    functions = {n: s for n, s in sizes.items() if n.endswith("Function")}
    print(
        f"artifact sizes (MB, unzipped): { ({n: round(s, 1) for n, s in sorted(sizes.items())}) }"
    )

    for layer in ("CoreLayer", "ChatLayer", "AgentLayer"):
        assert sizes[layer] <= BUDGET_MB[layer], layer
    assert max(functions.values()) <= BUDGET_MB["function"]
    assert len(functions) == 21
