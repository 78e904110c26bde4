"""The request bodies every edge accepts: I-JSON (RFC 7493) in UTF-8, parsed once by one rule.

Refused as ``malformed_json`` (400), before any framework or model sees the body: bytes that are
not UTF-8, JSON syntax errors, duplicate member names (ambiguous: parsers disagree on which wins),
``NaN``/``Infinity``, numbers that would not read back (floats beyond a double, integers over
Python's 4,300 digits), lone surrogates, and nesting deeper than ``MAX_BODY_NESTING``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from typing import Any

from chat_sessions.codec import MAX_NESTING
from chat_sessions.errors import MalformedJsonError

MAX_BODY_NESTING = MAX_NESTING + 3
"""Objects and arrays in a body, the outermost counting 1: an item at ``{"items": [item]}``
(depth 3) one level deeper than ``MAX_NESTING`` still reaches the store, whose 422
``invalid_input`` states the item rule, as in the library."""


def loads(text: str | bytes) -> Any:
    """The JSON value of a request body, or ``MalformedJsonError`` naming the reason."""
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError:
            raise _malformed("not_utf8", "the request body is not UTF-8") from None
    try:
        value = json.loads(
            text,
            object_pairs_hook=_unique_members,
            parse_constant=_no_constant,
            parse_float=_finite_float,
        )
    except RecursionError:
        raise _too_deep() from None
    except json.JSONDecodeError:
        raise _malformed("syntax", "the request body is not valid JSON") from None
    except ValueError:  # int() past its digit limit (the hooks raise MalformedJsonError)
        raise _malformed("number_out_of_range", "a number in the body is out of range") from None
    _check_tree(value)
    return value


def _malformed(reason: str, message: str) -> MalformedJsonError:
    return MalformedJsonError(message, details=[{"reason": reason}])


def _too_deep() -> MalformedJsonError:
    return _malformed(
        "too_deep", f"the request body is nested more than {MAX_BODY_NESTING} levels deep"
    )


def _unique_members(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    value = dict(pairs)
    if len(value) != len(pairs):
        raise _malformed("duplicate_key", "an object in the body repeats a member name")
    return value


def _no_constant(name: str) -> Any:
    raise _malformed("not_a_number", f"{name} is not a JSON number")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise _malformed("number_out_of_range", "a number in the body is out of range")
    return value


def _check_tree(value: Any) -> None:
    """Depth and text, walked without recursion (a deep body must not exhaust the stack)."""
    pending: list[tuple[Any, int]] = [(value, 1)]
    while pending:
        current, depth = pending.pop()
        if isinstance(current, str):
            _check_text(current)
            continue
        children: Iterable[Any]
        if isinstance(current, dict):
            for key in current:
                _check_text(key)
            children = current.values()
        elif isinstance(current, list):
            children = current
        else:
            continue
        if depth > MAX_BODY_NESTING:
            raise _too_deep()
        pending.extend((child, depth + 1) for child in children)


def _check_text(text: str) -> None:
    if text.isascii():
        return
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise _malformed("lone_surrogate", "a string in the body has a lone surrogate") from None
