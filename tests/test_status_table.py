"""docs/api.md's status table and the code's (``chat_sessions.http.STATUS_BY_ERROR``) agree: every
error a client can meet has its code in the row of its status, and every listed code exists.

A new error class needs only its row (or its code added to one); nothing here names it.
"""

from __future__ import annotations

import importlib
import pkgutil
import re
from pathlib import Path

import pytest

import chat_sessions
from chat_sessions.errors import (
    ChatSessionsError,
    DeletionIncompleteError,
    NotFoundError,
    TooLargeError,
)
from chat_sessions.http import status_of

API_DOC = Path(__file__).parents[1] / "docs" / "api.md"
FAMILIES: set[type[ChatSessionsError]] = {NotFoundError, TooLargeError}
"""Bases never raised themselves: a response carries one of their subclasses' codes."""
INTERNAL: set[type[ChatSessionsError]] = {DeletionIncompleteError}
"""Raised only inside the DynamoDB Streams consumer, which retries it; never in a response."""


def every_error_class() -> set[type[ChatSessionsError]]:
    """Every ``ChatSessionsError`` class in the package, wherever it is defined (all modules are
    imported first, so a class in a module nothing imported yet is found too)."""
    for module in pkgutil.walk_packages(chat_sessions.__path__, prefix="chat_sessions."):
        importlib.import_module(module.name)
    found: set[type[ChatSessionsError]] = set()
    pending = [ChatSessionsError]
    while pending:
        cls = pending.pop()
        found.add(cls)
        pending.extend(cls.__subclasses__())
    return found


def documented_codes() -> dict[str, int]:
    """``code: status`` from the table under "## Status codes" (a code listed twice fails)."""
    return {code: status for code, (status, _) in documented_rows().items()}


def documented_rows() -> dict[str, tuple[int, bool]]:
    """``code: (status, retry)``; a retry cell that starts with "yes" means retryable."""
    section = API_DOC.read_text().split("## Status codes", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("|")]
    header = [cell.strip() for cell in rows[0].strip("|").split("|")]
    status_at, codes_at, retry_at = (header.index(h) for h in ("status", "code(s)", "retry"))
    documented: dict[str, tuple[int, bool]] = {}
    for row in rows[2:]:  # after the header and its |---| line
        cells = [cell.strip() for cell in row.strip("|").split("|")]
        for code in re.findall(r"`([a-z_]+)`", cells[codes_at]):
            assert code not in documented, f"{code} is listed twice"
            documented[code] = int(cells[status_at]), cells[retry_at].startswith("yes")
    return documented


def status_of_class(cls: type[ChatSessionsError]) -> int:
    return status_of(cls.__new__(cls))  # the status follows the class alone


def test_the_table_is_found_and_parsed() -> None:
    documented = documented_codes()

    assert documented["internal_error"] == 500
    assert len(documented) >= 20


SENT = sorted(every_error_class() - FAMILIES - INTERNAL, key=lambda cls: cls.code)


@pytest.mark.parametrize("cls", SENT, ids=[cls.code for cls in SENT])
def test_every_error_is_documented_with_its_status(cls: type[ChatSessionsError]) -> None:
    documented = documented_codes()

    assert cls.code in documented, f"{cls.__name__}: add `{cls.code}` to docs/api.md"
    assert documented[cls.code] == status_of_class(cls), cls.__name__


@pytest.mark.parametrize("cls", SENT, ids=[cls.code for cls in SENT])
def test_every_error_is_documented_with_its_retry(cls: type[ChatSessionsError]) -> None:
    _, retry = documented_rows()[cls.code]

    assert retry is cls.retryable, f"{cls.__name__}: docs/api.md says retry {retry}"


def test_every_documented_code_exists() -> None:
    codes = {cls.code for cls in SENT}

    assert set(documented_codes()) - codes == set()


def test_the_undocumented_ones_are_families_and_internal_signals_only() -> None:
    documented = documented_codes()

    for family in FAMILIES:
        assert family.__subclasses__(), family.__name__
        assert all(sub.code in documented for sub in family.__subclasses__())
    assert not (FAMILIES | INTERNAL) & {c for c in every_error_class() if c.code in documented}
