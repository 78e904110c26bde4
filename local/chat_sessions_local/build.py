"""``make build``: the deployable artifacts (``sam build``) without Docker, as Lambda runs them.

    make build          # .aws-sam/build, ready for `sam deploy`

- ``sam build`` needs the target runtime's Python (3.13) to install each layer's requirements.
  It is taken from PATH (``python3.13``), else pyenv or uv's installs, else uv provisions one.
  With none of those but a Docker engine, ``sam build --use-container`` is used instead.
- After the build:
  - The packages the Lambda runtime provides (boto3 and its dependencies) are taken out of the
    layers.
  - A package already in the CoreLayer is taken out of the ChatLayer.
  - Every module is compiled for 3.13 (``unchecked-hash``). Lambda's code directories are
    read-only, so modules without bytecode are compiled again on every cold start.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
from pathlib import Path

from .tables import TEMPLATE

ROOT = TEMPLATE.parent
BUILD = ROOT / ".aws-sam" / "build"
TARGET = "3.13"
UV = os.environ.get("UV") or shutil.which("uv") or str(ROOT / ".cache" / "uv" / "uv")
"""The Makefile's uv: on PATH, or its own copy in .cache (local/bootstrap_uv.py)."""
SAM = [UV, "tool", "run", "--from", "aws-sam-cli==1.170.0", "sam"]
RUNTIME_PROVIDED = ("boto3", "botocore", "s3transfer", "jmespath", "dateutil", "six", "urllib3")
"""Import names of what the python3.13 runtime ships (the Makefile's RUNTIME_PROVIDED)."""


def target_python() -> str | None:
    """A python3.13 to build with: PATH, pyenv, uv's own installs, else one uv provisions.
    Each candidate must run and be 3.13 (a pyenv shim of another version does not)."""
    pyenv = sorted(glob.glob(os.path.expanduser(f"~/.pyenv/versions/{TARGET}*/bin/python{TARGET}")))
    for candidate in [shutil.which(f"python{TARGET}"), *reversed(pyenv)]:
        if candidate and _runs_as_target(candidate):
            return candidate
    provisioned = _uv_python()  # only when none is here: it may download one
    return provisioned if provisioned and _runs_as_target(provisioned) else None


def _uv_python() -> str | None:
    if shutil.which(UV) is None:
        return None
    find = [UV, "python", "find", TARGET]
    answer = subprocess.run(find, capture_output=True, text=True, check=False)
    if answer.returncode != 0:  # provision one (needs uv's Python downloads to be reachable)
        subprocess.run([UV, "python", "install", TARGET], capture_output=True, check=False)
        answer = subprocess.run(find, capture_output=True, text=True, check=False)
    return answer.stdout.strip() or None


def _runs_as_target(python: str) -> bool:
    probe = "import sys; print('%d.%d' % sys.version_info[:2])"
    answer = subprocess.run([python, "-c", probe], capture_output=True, text=True, check=False)
    return answer.returncode == 0 and answer.stdout.strip() == TARGET


def sam_build(python: str | None) -> None:
    environment = {**os.environ, "SAM_CLI_TELEMETRY": "0"}
    environment.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    if python is not None:
        print(f"make build: sam build with {python} (no container)", flush=True)
        environment["PATH"] = f"{Path(python).parent}{os.pathsep}{environment['PATH']}"
        command = [*SAM, "build", "--parallel"]
    elif shutil.which("docker"):
        print(f"make build: no python{TARGET} here; sam build --use-container", flush=True)
        command = [*SAM, "build", "--parallel", "--use-container"]
    else:
        raise SystemExit(f"make build needs python{TARGET} (or uv to install it) or Docker")
    subprocess.run(command, cwd=ROOT, env=environment, check=True)


def without_runtime_packages(layer: Path) -> None:
    """Take out what the Lambda runtime provides (pulled in by aws-xray-sdk and others)."""
    for name in RUNTIME_PROVIDED:
        shutil.rmtree(layer / name, ignore_errors=True)
        (layer / f"{name}.py").unlink(missing_ok=True)
        distribution = name.replace("dateutil", "python_dateutil")
        for meta in [
            *layer.glob(f"{distribution}-*.dist-info"),
            *layer.glob(f"{distribution}-*.data"),
        ]:
            shutil.rmtree(meta)


def without_duplicates(layer: Path, base: Path) -> None:
    """Take out of ``layer`` every distribution ``base`` (the CoreLayer) already holds."""
    held = {meta.name for meta in base.glob("*.dist-info")}
    for meta in [m for m in layer.glob("*.dist-info") if m.name in held]:
        for line in (meta / "RECORD").read_text().splitlines():
            top = line.split(",", 1)[0].split("/", 1)[0]
            if not top or top.startswith(".."):  # scripts outside site-packages: not in a layer
                continue
            target = layer / top
            if target.is_dir():
                shutil.rmtree(target, ignore_errors=True)
            else:
                target.unlink(missing_ok=True)


def compiled(python: str | None, folder: Path) -> None:
    """Bytecode for the target runtime, valid whatever the files' timestamps."""
    if python is None:
        print(f"make build: no python{TARGET} to compile {folder.name} (it stays source-only)")
        return
    command = [python, "-m", "compileall", "-q", "-j", "0", "--invalidation-mode"]
    subprocess.run([*command, "unchecked-hash", str(folder)], check=True)


def main() -> None:
    python = target_python()
    sam_build(python)
    core = BUILD / "CoreLayer" / "python"
    without_runtime_packages(core)
    chat = BUILD / "ChatLayer" / "python"
    without_runtime_packages(chat)
    without_duplicates(chat, core)
    for artifact in sorted(BUILD.iterdir()):
        if artifact.is_dir():
            compiled(python, artifact)
    print(f"make build: {BUILD.relative_to(ROOT)} is ready for `sam deploy`")


if __name__ == "__main__":
    main()
