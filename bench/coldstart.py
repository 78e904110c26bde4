"""Cold start as shipped: the import of a function's code from artifacts made the way
``make build`` makes them, on Python 3.13, with their bytecode and none written
(``PYTHONDONTWRITEBYTECODE``, as on Lambda's read-only code directories).

The deployed artifacts are arm64; this machine may not be, so the same layers are assembled for
its own architecture: the same requirements, the same post-processing
(``chat_sessions_local.build``), and the same layout (function code, then /opt/python, then the
runtime's boto3), with Lambda's environment (``LAMBDA_TASK_ROOT`` tells the X-Ray SDK it runs in
Lambda). Each figure is the median import time of fresh interpreters. It is reported as a ratio to
a reference measured in the same run, so the figures do not depend on this box's speed.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import statistics
import subprocess
from dataclasses import dataclass
from pathlib import Path

from chat_sessions_local.build import (
    RUNTIME_PROVIDED,
    UV,
    compiled,
    target_python,
    without_duplicates,
    without_runtime_packages,
)

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / ".cache" / "coldstart"
HELLO = (
    "from aws_lambda_powertools import Logger, Metrics, Tracer\n"
    "logger, tracer, metrics = Logger(), Tracer(), Metrics(namespace='Hello')\n"
    "def handler(event, context):\n    return {}\n"
)
"""The reference for a CRUD function: a Powertools hello-world with Logger, Tracer and Metrics."""
HELLO_API = (
    f"{HELLO}"
    "from aws_lambda_powertools.event_handler import APIGatewayHttpResolver\n"
    "from pydantic import BaseModel\n"
    "app = APIGatewayHttpResolver(enable_validation=True)\n"
    "class Hello(BaseModel):\n    name: str\n"
    "@app.get('/hello/<name>')\n"
    "def hello(name: str) -> Hello:\n    return Hello(name=name)\n"
)
"""The floor of the stack a CRUD function is built on: the same, plus Powertools' HTTP resolver
validating with one pydantic model."""
REFERENCES = {"hello": HELLO, "hello_api": HELLO_API}
RUNS = 15


@dataclass(frozen=True)
class Artifacts:
    python: str
    root: Path

    def layer(self, name: str) -> Path:
        return self.root / name / "python"

    def function(self, name: str) -> Path:
        return self.root / "functions" / name


def _pip(python: str, target: Path, *requirements: str) -> None:
    command = [python, "-m", "pip", "install", "--quiet", "--no-deps", "--only-binary=:all:"]
    subprocess.run([*command, "--target", str(target), *requirements], check=True)


def _runtime_pins() -> list[str]:
    """boto3 and its dependencies at uv.lock's versions (what /var/runtime has in Lambda)."""
    exported = subprocess.run(
        [UV, "export", "--frozen", "--no-dev", "--no-emit-project", "--no-hashes", "--no-header"],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    ).stdout
    wanted = {n.replace("dateutil", "python-dateutil") for n in RUNTIME_PROVIDED}
    pins = [line.split(";")[0].strip() for line in exported.splitlines() if "==" in line]
    return [pin for pin in pins if pin.split("==")[0] in wanted]


def _stamp(python: str) -> str:
    """What the artifacts are made of: the lock, the interpreter and every source file."""
    digest = hashlib.sha256(python.encode() + (ROOT / "uv.lock").read_bytes())
    digest.update("".join(REFERENCES.values()).encode())
    for folder in ("layers", "functions"):
        for path in sorted((ROOT / folder).rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts:
                digest.update(str(path.relative_to(ROOT)).encode() + path.read_bytes())
    return digest.hexdigest()


def assemble(python: str) -> Artifacts:
    """The artifacts for this machine, made again whenever ``_stamp`` changes."""
    stamp = _stamp(python)
    artifacts = Artifacts(python, ARTIFACTS)
    if (ARTIFACTS / "stamp").exists() and (ARTIFACTS / "stamp").read_text() == stamp:
        return artifacts
    shutil.rmtree(ARTIFACTS, ignore_errors=True)
    core, chat = artifacts.layer("CoreLayer"), artifacts.layer("ChatLayer")
    _pip(python, core, "-r", str(ROOT / "layers" / "core" / "requirements.txt"))
    _pip(python, chat, "-r", str(ROOT / "layers" / "chat" / "requirements.txt"))
    _pip(python, ARTIFACTS / "runtime", *_runtime_pins())
    shutil.copytree(ROOT / "layers" / "core" / "chat_sessions", core / "chat_sessions")
    shutil.copytree(ROOT / "layers" / "agent", artifacts.layer("AgentLayer"))
    shutil.copytree(ROOT / "functions", ARTIFACTS / "functions")
    for name, code in REFERENCES.items():
        (ARTIFACTS / "functions" / name).mkdir()
        (ARTIFACTS / "functions" / name / "app.py").write_text(code)
    without_runtime_packages(core)
    without_runtime_packages(chat)
    without_duplicates(chat, core)
    compiled(python, ARTIFACTS)
    (ARTIFACTS / "stamp").write_text(stamp)
    return artifacts


@dataclass(frozen=True)
class Probe:
    """One import to time: ``statement`` run in the function's folder, with these layers."""

    function: str
    statement: str
    layers: tuple[str, ...]

    def once_ms(self, artifacts: Artifacts) -> float:
        paths = [
            str(artifacts.function(self.function)),
            *(str(artifacts.layer(name)) for name in self.layers),
            str(ARTIFACTS / "runtime"),
        ]
        environment = {
            "PATH": "/usr/bin:/bin",
            "PYTHONPATH": os.pathsep.join(paths),
            "PYTHONDONTWRITEBYTECODE": "1",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_LAMBDA_FUNCTION_NAME": self.function,
            # As in Lambda: without it the X-Ray SDK builds two boto clients for sampling rules
            # that Lambda never asks it for (~140 ms here, in every probe).
            "LAMBDA_TASK_ROOT": str(artifacts.function(self.function)),
            "AWS_LAMBDA_RUNTIME_API": "127.0.0.1:9001",  # what chat_sessions.coldstart reads
            "AWS_XRAY_CONTEXT_MISSING": "IGNORE_ERROR",
            "POWERTOOLS_SERVICE_NAME": "chat-sessions",
            "OPENAI_AGENTS_DISABLE_TRACING": "true",
        }
        probe = f"import time\nt = time.perf_counter()\n{self.statement}\n"
        answer = subprocess.run(
            [artifacts.python, "-s", "-c", f"{probe}print(time.perf_counter() - t)"],
            capture_output=True,
            text=True,
            check=True,
            env=environment,
            cwd=artifacts.function(self.function),
        )
        return float(answer.stdout.strip()) * 1000


def medians(artifacts: Artifacts, subject: Probe, reference: Probe) -> tuple[float, float]:
    """Median ms of each, sampled in turns so that a change of load hits both alike."""
    pairs = [(subject.once_ms(artifacts), reference.once_ms(artifacts)) for _ in range(RUNS)]
    return statistics.median(p[0] for p in pairs), statistics.median(p[1] for p in pairs)


def size_mb(folder: Path) -> float:
    return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file()) / 1024 / 1024


NO_PAUSE = "import gc\ngc.disable = lambda: None\n"
"""Run before ``import app``: init as it would be without ``chat_sessions.coldstart``'s pause."""


def paused(statement: str) -> str:
    """A reference given the pause the functions take, so a ratio compares like with like."""
    return f"import gc\ngc.disable()\n{statement}\ngc.freeze()\ngc.enable()"


def _verdict(ratio: float, target: float) -> str:
    return f"target ≤ {target}x: {'met' if ratio <= target else 'not met'}"


def report() -> str:
    python = target_python()
    if python is None:
        return "- Cold start as shipped: not measured (no python3.13, and uv could not get one)."
    artifacts = assemble(python)
    core, chat = ("CoreLayer",), ("CoreLayer", "ChatLayer", "AgentLayer")
    crud = Probe("get_session", "import app", core)
    crud_ms, hello = medians(artifacts, crud, Probe("hello", paused("import app"), core))
    crud_again, floor = medians(artifacts, crud, Probe("hello_api", paused("import app"), core))
    chat_app, stack = Probe("chat", "import app", chat), "import agents, fastapi, uvicorn"
    chat_ms, stack_ms = medians(artifacts, chat_app, Probe("chat", paused(stack), chat))
    bare_ms, bare_stack = medians(
        artifacts, Probe("chat", f"{NO_PAUSE}import app", chat), Probe("chat", stack, chat)
    )
    sizes = {name: size_mb(artifacts.layer(name)) for name in ("CoreLayer", "ChatLayer")}
    return "\n".join(
        [
            f"- Cold start as shipped: Python 3.13, the artifacts with their bytecode and none "
            f"written, median of {RUNS} fresh interpreters, each pair sampled in turns. The "
            f"references are given the same garbage-collector pause as the functions "
            f"(`chat_sessions.coldstart`), so each ratio compares like with like.",
            f"  - CRUD `get_session`: {crud_ms / hello:.2f}x a Powertools hello-world with Logger, "
            f"Tracer and Metrics ({crud_ms:.0f} vs {hello:.0f} ms; "
            f"{_verdict(crud_ms / hello, 1.3)}), and {crud_again / floor:.2f}x the floor of "
            f"the stack it is built on, the same hello-world plus Powertools' HTTP resolver "
            f"validating one pydantic model ({crud_again:.0f} vs {floor:.0f} ms), which is "
            f"itself {floor / hello:.2f}x the hello-world.",
            f"  - The chat function: {chat_ms / stack_ms:.2f}x `{stack}` ({chat_ms:.0f} vs "
            f"{stack_ms:.0f} ms; {_verdict(chat_ms / stack_ms, 1.15)}); with neither paused, "
            f"{bare_ms / bare_stack:.2f}x ({bare_ms:.0f} vs {bare_stack:.0f} ms). The pause "
            f"makes the function {chat_ms / bare_ms:.2f}x what it is without (these two from "
            f"different pairs of the same run).",
            f"- Layers as built, unzipped: CoreLayer {sizes['CoreLayer']:.1f} MB, ChatLayer "
            f"{sizes['ChatLayer']:.1f} MB (the chat stack once; the functions are a few KB each).",
        ]
    )


if __name__ == "__main__":
    print(report())
