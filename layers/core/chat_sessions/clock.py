"""Time as the store sees it: an injectable clock (tests control expiry) and its formats."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

Clock = Callable[[], float]
"""Returns seconds since the epoch, like ``time.time``."""


def to_micros(epoch_seconds: float) -> int:
    return int(epoch_seconds * 1_000_000)


def to_iso(epoch_seconds: float) -> str:
    """Fixed-width ISO-8601 UTC with microseconds, so strings sort like the times they name."""
    return datetime.fromtimestamp(epoch_seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def from_iso(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
