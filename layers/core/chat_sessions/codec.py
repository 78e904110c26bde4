"""How one Agents SDK item becomes DynamoDB attributes, and back, exactly as JSON.

Small items are JSON text (readable in the console); larger ones are zlib-compressed when that is
smaller (DynamoDB bills per started KB); compressed payloads over one row's share are split into
``CHUNK#`` rows written in the same transaction.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from .errors import InvalidInputError, ItemTooLargeError
from .privilege import is_privileged

MAX_ITEM_BYTES = 32 * 1024 * 1024
"""Largest item accepted, measured as compact UTF-8 JSON (the HTTP API's body limit is lower)."""
MAX_NESTING = 128
"""Deepest nesting of objects and arrays accepted: well inside what every reader of the item
can parse and serialise again (Python's recursion limit, pydantic's serialiser's ~256)."""
COMPRESS_ABOVE_BYTES = 1024
CHUNK_BYTES = 300 * 1024
"""Payload per row; leaves room under DynamoDB's 400 KB item limit for keys and attributes."""
MAX_RESPONSE_BYTES = CHUNK_BYTES
"""Largest stored idempotent response, after compression: one row, never chunked."""


class CorruptItemError(Exception):
    """A stored row cannot be decoded; readers skip it with a warning."""


@dataclass(frozen=True)
class EncodedItem:
    """The attributes of the message row (keys excluded) and the payloads of its chunk rows."""

    attributes: dict[str, Any]
    chunks: list[bytes]
    stored_bytes: int
    starts_turn: bool = False
    """A user's message: the retention cap trims history just before one, never inside a turn."""
    privileged: bool = False
    """Written only by trusted code (``privilege``): its row is marked ``vouched``."""


def starts_turn(item: Mapping[str, Any]) -> bool:
    return item.get("role") == "user" and item.get("type", "message") == "message"


def to_json_dict(item: object) -> dict[str, Any]:
    """The JSON form of an SDK item: dicts as they are, pydantic models dumped in JSON mode."""
    if isinstance(item, BaseModel):
        dumped = item.model_dump(mode="json", exclude_unset=True)
    elif isinstance(item, Mapping):
        dumped = dict(item)
    else:
        raise InvalidInputError(
            "an item must be a JSON object (dict) or a pydantic model",
            details=[{"type": type(item).__name__}],
        )
    return dumped


def encode_item(item: object, max_bytes: int = MAX_ITEM_BYTES) -> EncodedItem:
    """Serialize one item; refuses what could not be read back exactly (``InvalidInputError``:
    nesting past ``MAX_NESTING``, NaN or infinities, integers Python will not print, lone
    surrogates) and ``ItemTooLargeError`` over ``max_bytes``."""
    dumped = to_json_dict(item)
    check_nesting(dumped)
    try:
        text = json.dumps(dumped, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
        raw = text.encode()
    except UnicodeEncodeError:
        raise InvalidInputError("item has a lone surrogate, which is not valid text") from None
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(f"item is not JSON-serializable: {exc}") from None
    if len(raw) > max_bytes:
        raise ItemTooLargeError(
            f"item is {len(raw)} bytes as JSON; the maximum is {max_bytes}",
            details=[{"size": len(raw), "max": max_bytes}],
        )
    kind = (starts_turn(dumped), is_privileged(dumped))
    if len(raw) <= COMPRESS_ABOVE_BYTES:
        return EncodedItem({"item": {"S": text}}, [], len(raw), *kind)
    packed = zlib.compress(raw, 6)
    if len(packed) >= len(raw) and len(raw) <= CHUNK_BYTES:
        return EncodedItem({"item": {"S": text}}, [], len(raw), *kind)
    if len(packed) <= CHUNK_BYTES:
        return EncodedItem({"item_z": {"B": packed}}, [], len(packed), *kind)
    chunks = [packed[i : i + CHUNK_BYTES] for i in range(0, len(packed), CHUNK_BYTES)]
    return EncodedItem({"item_parts": {"N": str(len(chunks))}}, chunks, len(packed), *kind)


def check_nesting(value: object) -> None:
    """Refuse objects and arrays nested deeper than ``MAX_NESTING`` (walked without recursion,
    so a hostile depth cannot exhaust the stack here either)."""
    pending: list[tuple[object, int]] = [(value, 1)]
    while pending:
        current, depth = pending.pop()
        if isinstance(current, Mapping):
            children: Iterable[object] = current.values()
        elif isinstance(current, list | tuple):
            children = current
        else:
            continue
        if depth > MAX_NESTING:
            raise InvalidInputError(
                f"item is nested more than {MAX_NESTING} deep",
                details=[{"max_nesting": MAX_NESTING}],
            )
        pending.extend((child, depth + 1) for child in children)


def encode_response(text: str) -> EncodedItem:
    """An idempotency record's response: JSON text, or zlib over 1 KiB. Always one row: raises
    ``ItemTooLargeError`` when it would not fit (``response_fits`` tells beforehand)."""
    raw = text.encode()
    if len(raw) <= COMPRESS_ABOVE_BYTES:
        return EncodedItem({"response": {"S": text}}, [], len(raw))
    packed = zlib.compress(raw, 6)
    if len(packed) > MAX_RESPONSE_BYTES:
        raise ItemTooLargeError(
            f"the response is {len(packed)} bytes compressed; a record holds {MAX_RESPONSE_BYTES}"
        )
    return EncodedItem({"response_z": {"B": packed}}, [], len(packed))


def response_fits(text: str) -> bool:
    try:
        encode_response(text)
    except ItemTooLargeError:
        return False
    return True


def decode_response(attributes: Mapping[str, Any]) -> str:
    try:
        if "response" in attributes:
            return str(attributes["response"]["S"])
        return zlib.decompress(attributes["response_z"]["B"]).decode()
    except (KeyError, TypeError, ValueError, zlib.error) as exc:
        raise CorruptItemError(type(exc).__name__) from None


def chunk_count(attributes: Mapping[str, Any]) -> int:
    """How many chunk rows a stored message row says it has (0 when inline)."""
    parts = attributes.get("item_parts")
    if parts is None:
        return 0
    try:
        return int(parts["N"])
    except (KeyError, TypeError, ValueError):
        raise CorruptItemError("item_parts is not a number") from None


def decode_item(attributes: Mapping[str, Any], chunks: list[bytes] | None = None) -> dict[str, Any]:
    """The stored JSON object; raises ``CorruptItemError`` for anything we did not write."""
    try:
        if "item" in attributes:
            text = attributes["item"]["S"]
        elif "item_z" in attributes:
            text = zlib.decompress(attributes["item_z"]["B"]).decode()
        elif "item_parts" in attributes:
            if not chunks or len(chunks) != chunk_count(attributes):
                raise CorruptItemError("missing chunks")
            text = zlib.decompress(b"".join(chunks)).decode()
        else:
            raise CorruptItemError("no payload attribute")
        value = json.loads(text)
    except CorruptItemError:
        raise
    except (KeyError, TypeError, ValueError, zlib.error) as exc:
        raise CorruptItemError(type(exc).__name__) from None
    if not isinstance(value, dict):
        raise CorruptItemError("payload is not a JSON object")
    return value
