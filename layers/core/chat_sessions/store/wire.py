"""DynamoDB's wire format: typed attribute values (``{"S": ...}``), built in one place."""

from __future__ import annotations

from typing import Any

Item = dict[str, Any]
"""A DynamoDB item in wire format (``{"attr": {"S": ...}}``)."""


def s(value: str) -> dict[str, str]:
    return {"S": value}


def n(value: int) -> dict[str, str]:
    return {"N": str(value)}


def string_map(values: dict[str, str]) -> dict[str, Any]:
    return {"M": {key: {"S": value} for key, value in values.items()}}


def strings_of(value: dict[str, Any] | None) -> dict[str, str]:
    """A wire map of strings back to a dict (``{}`` when absent)."""
    return {key: item["S"] for key, item in (value or {}).get("M", {}).items()}


def number(item: Item, name: str, default: int | None = None) -> int:
    """An integer attribute; ``default`` when absent (a ``KeyError`` without one)."""
    if name not in item and default is not None:
        return default
    return int(item[name]["N"])
