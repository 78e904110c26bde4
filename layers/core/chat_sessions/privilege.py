"""Prompt integrity: which items only the server's own agent turn or a trusted writer may store,
and which stored items a chat turn may hand to the model (docs/api.md, "Prompt integrity").

An end user may append ``user`` and ``assistant`` messages. Everything else (``system`` and
``developer`` messages, tool calls and their outputs, reasoning...) is *privileged*: it steers
the agent. The service refuses them from an untrusted caller (the only writer that is not the
app's own code), and the store marks every privileged row it writes as ``vouched``: rows from
before the mark existed count as untrusted, and a chat turn leaves them out of the context.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from .errors import ItemNotAllowedError

CALLER_ROLES = frozenset({"user", "assistant"})


def is_privileged(item: Mapping[str, Any]) -> bool:
    role = item.get("role")
    plain_message = item.get("type", "message") == "message"
    return not (plain_message and isinstance(role, str) and role in CALLER_ROLES)


def for_the_model(item: Mapping[str, Any], vouched: bool) -> bool:
    """Whether a stored item may be part of a chat turn's context."""
    return vouched or not is_privileged(item)


def check_caller_items(items: Sequence[Mapping[str, Any]]) -> None:
    """Refuse a batch from an untrusted writer that holds any privileged item (nothing is
    written): ``details`` locates each such item (and echoes nothing of it)."""
    refused = [{"loc": ["body", "items", i]} for i, item in enumerate(items) if is_privileged(item)]
    if refused:
        raise ItemNotAllowedError(
            "only user and assistant messages may be appended with this token", details=refused
        )
