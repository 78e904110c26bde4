"""Every DynamoDB key string, built in one place (see docs/data-model.md)."""

from __future__ import annotations

import hashlib

SESSION_SK = "SESSION"
MESSAGE_PREFIX = "MSG#"
CHUNK_PREFIX = "CHUNK#"
IDEMPOTENCY_PREFIX = "IDEMP#"
TRIM_PREFIX = "TRIM#"
"""Purge markers: "delete the rows below this session's ``first_seq``" (sorts after ``SESSION``,
so it never shows up among the messages)."""
TURN_LOG_PREFIX = "TURN#"
"""A chat turn's stream log (resumption): sorts after ``SESSION`` and ``TRIM#``, so no message
read, listing or trim meets it."""
DELETION_PREFIX = "DELETE-ALL#"
"""A user's request to delete all their sessions (in the user's own partition, see below)."""
SEQ_DIGITS = 20
ACTIVITY_INDEX = "sessions_by_activity"

MAIN_BRANCH = "main"
"""The branch every session has: its messages are the ``MSG#`` rows (docs/branches.md)."""
BRANCH_PREFIX = "BRANCH#"
"""A branch's record (its window, name and counts); below every other prefix here."""
BASE_PREFIX = "BRBASE#"
"""A branch's base: the segments of the path it shares with others."""
BRANCH_CHUNK_PREFIX = "BRCHUNK#"
BRANCH_MESSAGE_PREFIX = "BRMSG#"


MAX_SESSION_PART_BYTES = 1000
"""Longer (escaped) session ids are hashed, so ``user#session`` stays under DynamoDB's 2,048-byte
partition key with the longest user id (256 characters, at most 1,024 bytes)."""


def partition_key(user_id: str, session_id: str) -> str:
    """One user's session partition: ``user#<session part>``.

    The session part escapes ``%`` and ``#`` (``%25``, ``%23``), so it never holds a ``#`` and the
    split at the last ``#`` is unambiguous, whatever the user id holds; ids that the HTTP API
    takes are unchanged by it. Escaped ids over ``MAX_SESSION_PART_BYTES`` become ``%~`` and their
    SHA-256, which no escaped id can spell (an escaped ``%`` is always followed by two digits).
    """
    part = session_id.replace("%", "%25").replace("#", "%23")
    if len(part.encode()) > MAX_SESSION_PART_BYTES:
        part = "%~" + hashlib.sha256(session_id.encode()).hexdigest()
    return f"{user_id}#{part}"


def user_partition_key(user_id: str) -> str:
    """The user's own partition (deletion requests): ``user#`` with no session, which no session
    can have, since session ids are at least one character."""
    return f"{user_id}#"


def user_of(user_partition: str) -> str:
    return user_partition.removesuffix("#")


def deletion_sk(deletion_id: str) -> str:
    return f"{DELETION_PREFIX}{deletion_id}"


def trim_sk(marker_id: str) -> str:
    return f"{TRIM_PREFIX}{marker_id}"


def message_prefix(branch: str = MAIN_BRANCH) -> str:
    """Where a branch's own message rows sort: ``MSG#`` for ``main``, ``BRMSG#<id>#`` else."""
    return MESSAGE_PREFIX if branch == MAIN_BRANCH else f"{BRANCH_MESSAGE_PREFIX}{branch}#"


def chunk_prefix(branch: str = MAIN_BRANCH) -> str:
    return CHUNK_PREFIX if branch == MAIN_BRANCH else f"{BRANCH_CHUNK_PREFIX}{branch}#"


def message_sk(seq: int, branch: str = MAIN_BRANCH) -> str:
    return f"{message_prefix(branch)}{seq:0{SEQ_DIGITS}d}"


def chunk_sk(seq: int, index: int, branch: str = MAIN_BRANCH) -> str:
    return f"{chunk_prefix(branch)}{seq:0{SEQ_DIGITS}d}#{index:03d}"


def branch_sk(branch: str) -> str:
    return f"{BRANCH_PREFIX}{branch}"


def base_sk(branch: str) -> str:
    return f"{BASE_PREFIX}{branch}"


def branch_of(message_sort_key: str) -> str:
    """The branch whose own rows hold a message (or chunk) row."""
    if message_sort_key.startswith((MESSAGE_PREFIX, CHUNK_PREFIX)):
        return MAIN_BRANCH
    return message_sort_key.split("#", 2)[1]


def idempotency_sk(key: str) -> str:
    """An Idempotency-Key's record. 'IDEMP#' sorts below 'MSG#', so message reads never see it."""
    return f"{IDEMPOTENCY_PREFIX}{key}"


def last_chunk_sk(seq: int, branch: str = MAIN_BRANCH) -> str:
    """Upper bound of every chunk sort key of messages up to ``seq``."""
    return f"{chunk_prefix(branch)}{seq:0{SEQ_DIGITS}d}#~"


def seq_of(message_sort_key: str) -> int:
    """The sequence number in a message row's sort key (``MSG#<seq>``, ``BRMSG#<id>#<seq>``)."""
    return int(message_sort_key[message_sort_key.rindex("#") + 1 :])


def turn_log_sk(turn_id: str, batch: int) -> str:
    """One batch of a turn's stream log: ``TURN#<turn_id>#<batch>``."""
    return f"{TURN_LOG_PREFIX}{turn_id}#{batch:06d}"


def turn_log_end(turn_id: str) -> str:
    """Upper bound of every batch key of a turn's log."""
    return f"{TURN_LOG_PREFIX}{turn_id}#~"
