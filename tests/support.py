"""Helpers the suites share (fixtures live in conftest.py)."""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

TRUSTED_SCOPE = "chat-sessions/trusted-writer"
"""The scope the sample events' backend caller holds (append_messages.json's tool exchange)."""


class FakeClock:
    """A controllable clock. Each reading moves 1 ms on, so sequence numbers still advance."""

    def __init__(self, start: float | None = None) -> None:
        self._now = time.time() if start is None else start
        self._lock = threading.Lock()

    def __call__(self) -> float:
        with self._lock:
            self._now += 0.001
            return self._now

    def advance(self, seconds: float) -> None:
        with self._lock:
            self._now += seconds


def rows_of(client: Any, table_name: str, pk: str) -> list[dict[str, Any]]:
    """Every physical row of one partition (what a console scan would show)."""
    response = client.query(
        TableName=table_name,
        KeyConditionExpression="pk = :pk",
        ExpressionAttributeValues={":pk": {"S": pk}},
        ConsistentRead=True,
    )
    return list(response["Items"])


class Records(logging.Handler):
    """Keeps every log record it is given (attach it to the logger under test)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)
