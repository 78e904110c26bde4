"""The store: every DynamoDB call chat-sessions makes (design and costs in docs/data-model.md).

Only this module talks to boto3. It validates ids, builds keys through ``keys``, turns DynamoDB
errors into domain errors by code, and hides pagination keys behind opaque cursors.
"""

from __future__ import annotations

import logging
import math
import random
import re
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal, NoReturn, cast, get_args

from botocore.exceptions import BotoCoreError, ClientError

from . import keys
from .clock import Clock, from_iso, to_iso, to_micros
from .codec import (
    CorruptItemError,
    EncodedItem,
    chunk_count,
    decode_item,
    decode_response,
    encode_item,
    encode_response,
    starts_turn,
)
from .cursor import decode_cursor, encode_cursor
from .dynamodb import default_client, error_code, translate
from .errors import (
    BatchTooLargeError,
    ChatSessionsError,
    ConflictError,
    DeletionIncompleteError,
    DeletionNotFoundError,
    IdempotencyKeyReusedError,
    InvalidCursorError,
    InvalidInputError,
    SessionNotFoundError,
    ThrottledError,
    TitleSetByUserError,
    TurnInProgressError,
    TurnLostError,
)
from .idempotency import IDEMPOTENCY_TTL_SECONDS, IdempotencyRecord
from .models import (
    AppendResult,
    ChatSession,
    Deletion,
    DeletionStatus,
    MessagePage,
    Order,
    SessionPage,
    StoredMessage,
    StoredResponse,
    Usage,
    check_metadata,
    check_session_id,
    check_title,
    check_user_id,
)

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

logger = logging.getLogger(__name__)

Item = dict[str, Any]
"""A DynamoDB item in wire format (``{"attr": {"S": ...}}``)."""

MAX_TRANSACTION_ROWS = 100
MAX_TRANSACTION_BYTES = 4_000_000
"""DynamoDB's 4 MB transaction cap, less a margin for keys and attribute names."""
ROW_OVERHEAD_BYTES = 200
RETRY_GAP_US = 1000
DELETION_PAGE_SIZE = 100
"""Sessions per index page of a delete-all; progress is recorded after each page."""
DELETION_RECORD_DAYS = 30
"""How long a delete-all request stays readable (its own TTL)."""
_DELETION_ID = re.compile(r"[0-9a-f]{32}")
TRIM_MARKER_TTL_SECONDS = 14 * 86_400
TRIM_LOOKAHEAD_ROWS = 20
"""Rows read past the excess when looking for the next turn's start (a turn is usually short)."""
RetryableReason = Literal[
    "TransactionConflict",
    "ThrottlingError",
    "ProvisionedThroughputExceeded",
    "RequestLimitExceeded",
]
_RETRYABLE_REASONS = frozenset(get_args(RetryableReason))
# Codes we handle ourselves; everything else goes through ``translate``.
_EXPECTED_CODES = frozenset({"ConditionalCheckFailedException", "TransactionCanceledException"})
_LIVE = "attribute_exists(pk) AND expires_at > :now_s"
# Activity slides expiry by the session's own TTL, or the deployment's (``:ttl``), without a read.
_SLIDE_EXPIRY = "expires_at = if_not_exists(ttl_seconds, :ttl) + :now_s"


@dataclass(frozen=True)
class TurnCommit:
    """What a chat turn's commit adds to an append: its lease id and its token usage."""

    turn_id: str
    input_tokens: int = 0
    output_tokens: int = 0
    title: str | None = None
    """Set only if the session has no title yet (a user's title is never replaced)."""


@dataclass(frozen=True)
class _Trim:
    """A retention trim: the window's new start (``None``: the batch's own first seq), how many
    messages that removes, and the header state it was planned from (the write's condition)."""

    cut_seq: int | None
    removed: int
    seen_first: int
    seen_last: int
    seen_count: int


class _Unset:
    """Marks an argument the caller did not pass (``None`` means "remove")."""


UNSET: Any = _Unset()


class ChatStore:
    """Sessions and their messages for many users in one DynamoDB table.

    Args:
        table_name: The table; defaults to ``CHAT_SESSIONS_TABLE_NAME``.
        client: A boto3 DynamoDB client; defaults to a lazily created, process-wide one.
        clock: Seconds since the epoch; expiry and sequence numbers follow it (tests inject one).
        session_ttl_seconds: Idle lifetime; defaults to ``CHAT_SESSIONS_SESSION_TTL_SECONDS``.
        ttl_bounds: The ``(min, max)`` a session's own ``ttl_seconds`` may take; defaults to
            ``CHAT_SESSIONS_{MIN,MAX}_SESSION_TTL_SECONDS``.
        max_stored_items: The retention cap (0: none); defaults to
            ``CHAT_SESSIONS_MAX_STORED_ITEMS``. See ``append_items``.
        conflict_budget_seconds: How long a write that keeps losing to concurrent writers retries
            before ``ConflictError`` (nothing written).
        sleep: How to wait between those tries (tests may inject one).
    """

    def __init__(
        self,
        table_name: str | None = None,
        *,
        client: DynamoDBClient | None = None,
        clock: Clock = time.time,
        session_ttl_seconds: int | None = None,
        ttl_bounds: tuple[int, int] | None = None,
        max_stored_items: int | None = None,
        conflict_budget_seconds: float = 5.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if table_name is None or session_ttl_seconds is None or ttl_bounds is None:
            from .config import get_settings

            settings = get_settings()
            table_name = table_name or settings.table_name
            if session_ttl_seconds is None:
                session_ttl_seconds = settings.session_ttl_seconds
            if ttl_bounds is None:
                ttl_bounds = (settings.min_session_ttl_seconds, settings.max_session_ttl_seconds)
        if max_stored_items is None:
            from .config import get_settings

            max_stored_items = get_settings().max_stored_items
        if session_ttl_seconds <= 0:
            raise ValueError("session_ttl_seconds must be positive")
        self.table_name = table_name
        self.session_ttl_seconds = session_ttl_seconds
        self.ttl_bounds = ttl_bounds
        self.max_stored_items = max_stored_items
        self._client = client
        self._clock = clock
        self._conflict_budget_seconds = conflict_budget_seconds
        self._sleep = sleep

    @property
    def client(self) -> DynamoDBClient:
        if self._client is None:
            self._client = default_client()
        return self._client

    # ----------------------------------------------------------------------------------- sessions

    def create_session(
        self,
        user_id: str,
        session_id: str | None = None,
        *,
        title: str | None = None,
        metadata: dict[str, str] | None = None,
        ttl_seconds: int | None = None,
    ) -> tuple[ChatSession, bool]:
        """Create a session, or return the live one that already has this id (never overwritten).

        Args:
            ttl_seconds: This session's idle lifetime, within ``ttl_bounds``; the deployment's
                when ``None``.

        Returns:
            The session and whether this call created it.
        """
        user_id = check_user_id(user_id)
        session_id = check_session_id(session_id) if session_id is not None else uuid.uuid4().hex
        title = check_title(title) if title is not None else None
        metadata = check_metadata(metadata) if metadata is not None else {}
        if ttl_seconds is not None:
            self._check_ttl(ttl_seconds)
        now = self._clock()
        header = self._new_header(
            user_id, session_id, now, title=title, metadata=metadata, ttl_seconds=ttl_seconds
        )
        try:
            response = self._call(
                "put_item",
                TableName=self.table_name,
                Item=header,
                ConditionExpression="attribute_not_exists(pk) OR expires_at <= :now_s",
                ExpressionAttributeValues={":now_s": _n(math.floor(now))},
                ReturnValues="ALL_OLD",
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except ClientError as exc:
            existing = cast("Item | None", exc.response.get("Item"))
            if existing is None:
                return self.get_session(user_id, session_id), False
            return self._session(existing), False
        if "Attributes" in response:
            self._put_trim_marker(header["pk"]["S"])
        return self._session(header), True

    def get_session(self, user_id: str, session_id: str) -> ChatSession:
        """The live session, or ``SessionNotFoundError`` (absent, expired, or not this user's)."""
        pk = keys.partition_key(check_user_id(user_id), check_session_id(session_id))
        return self._session(self._live_header(self._get_header(pk), self._clock()))

    def list_sessions(
        self,
        user_id: str,
        *,
        limit: int = 20,
        cursor: str | None = None,
        metadata: dict[str, str] | None = None,
    ) -> SessionPage:
        """The user's live sessions, most recent activity first, ``limit`` per page.

        Args:
            metadata: Only sessions whose metadata has every one of these key/value pairs.
        """
        user_id = check_user_id(user_id)
        if not 1 <= limit <= 100:
            raise InvalidInputError("limit must be between 1 and 100")
        wanted = check_metadata(metadata or {})
        now = self._clock()
        request: dict[str, Any] = {
            "TableName": self.table_name,
            "IndexName": keys.ACTIVITY_INDEX,
            "KeyConditionExpression": "user_id = :user",
            "FilterExpression": " AND ".join(
                ["expires_at > :now_s"] + [f"metadata.#k{i} = :v{i}" for i in range(len(wanted))]
            ),
            "ExpressionAttributeValues": {":user": _s(user_id), ":now_s": _n(math.floor(now))},
            "ScanIndexForward": False,
            "Limit": limit,
        }
        for i, (key, value) in enumerate(wanted.items()):
            request.setdefault("ExpressionAttributeNames", {})[f"#k{i}"] = key
            request["ExpressionAttributeValues"][f":v{i}"] = _s(value)
        if cursor is not None:
            request["ExclusiveStartKey"] = _session_cursor_key(user_id, cursor)
        sessions: list[ChatSession] = []
        more = False
        while True:
            response = self._call("query", **request)
            page = response.get("Items", [])
            for consumed, item in enumerate(page, start=1):
                sessions.append(self._session(item))
                if len(sessions) == limit:
                    more = consumed < len(page)
                    break
            last_key = response.get("LastEvaluatedKey")
            more = more or last_key is not None
            if len(sessions) == limit or last_key is None:
                break
            request["ExclusiveStartKey"] = last_key
        next_cursor = None
        if more and sessions:
            last = sessions[-1]
            next_cursor = encode_cursor(
                "sessions", u=to_iso(last.updated_at.timestamp()), i=last.session_id
            )
        return SessionPage(sessions=sessions, next_cursor=next_cursor)

    def update_session(
        self,
        user_id: str,
        session_id: str,
        *,
        title: str | None = UNSET,
        metadata: dict[str, str] = UNSET,
    ) -> ChatSession:
        """Set the title (``None`` removes it) and/or replace the metadata; counts as activity."""
        pk = keys.partition_key(check_user_id(user_id), check_session_id(session_id))
        now = self._clock()
        sets = ["updated_at = :now_iso", _SLIDE_EXPIRY]
        removes: list[str] = []
        values: Item = {
            ":now_s": _n(math.floor(now)),
            ":now_iso": _s(to_iso(now)),
            ":ttl": _n(self.session_ttl_seconds),
        }
        if title is None:
            removes += ["title", "title_source"]
        elif title is not UNSET:
            sets += ["title = :title", "title_source = :user"]
            values[":title"] = _s(check_title(title))
            values[":user"] = _s("user")
        if metadata is not UNSET:
            sets.append("metadata = :metadata")
            values[":metadata"] = _string_map(check_metadata(metadata))
        expression = "SET " + ", ".join(sets) + (" REMOVE " + ", ".join(removes) if removes else "")
        try:
            updated = self._update_header(pk, expression, condition=_LIVE, values=values)
        except ClientError:
            raise SessionNotFoundError("session not found") from None
        return self._session(updated)

    def set_generated_title(self, user_id: str, session_id: str, title: str) -> ChatSession:
        """Set a generated title, unless the user set one (``TitleSetByUserError``)."""
        pk = keys.partition_key(check_user_id(user_id), check_session_id(session_id))
        now = self._clock()
        try:
            updated = self._update_header(
                pk,
                "SET title = :title, title_source = :auto",
                condition=f"{_LIVE} AND "
                "(attribute_not_exists(title_source) OR title_source = :auto)",
                values={
                    ":title": _s(check_title(title)),
                    ":auto": _s("auto"),
                    ":now_s": _n(math.floor(now)),
                },
            )
        except ClientError as exc:
            user_set = TitleSetByUserError("the user set this title; clear it to generate one")
            _raise_conflict_or_missing(exc, now, user_set)
        return self._session(updated)

    def delete_session(self, user_id: str, session_id: str) -> bool:
        """Delete the session: one DeleteItem, whatever its history; idempotent.

        Its messages are unreachable at once (they hang off the header) and are physically
        removed by the stream consumer (``purge_session``), as for sessions that expire.

        Returns:
            Whether a live session was deleted (``False`` when absent or already expired).
        """
        pk = keys.partition_key(check_user_id(user_id), check_session_id(session_id))
        now = self._clock()
        response = self._call(
            "delete_item",
            TableName=self.table_name,
            Key={"pk": _s(pk), "sk": _s(keys.SESSION_SK)},
            ReturnValues="ALL_OLD",
        )
        old = response.get("Attributes")
        return old is not None and _is_live(old, now)

    # ----------------------------------------------------------------------------------- messages

    def append_items(
        self,
        user_id: str,
        session_id: str,
        items: Sequence[object],
        *,
        create_missing: bool = False,
        last_seq_hint: int | None = None,
        turn: TurnCommit | None = None,
        idempotency: IdempotencyRecord | None = None,
    ) -> AppendResult:
        """Append a batch atomically and in order, after every batch committed before it.

        Args:
            items: Agents SDK input items (dicts or pydantic models).
            create_missing: Create the session if it is absent or expired (the SDK ``Session`` way);
                otherwise such a session raises ``SessionNotFoundError``.
            last_seq_hint: The session's ``last_seq`` as last seen by the caller; saves the conflict
                round trip when the clock alone would not be past it.
            turn: Commit a chat turn: only while holding its lease, which the write releases,
                adding the turn's token usage to the session.
            idempotency: Record this write under its Idempotency-Key, in the same transaction.
                If the key is already recorded (within 24 h), nothing is written: the same request
                gets the recorded batch and response back (``replay``), another request
                ``IdempotencyKeyReusedError``.

        With a retention cap (``max_stored_items``), a batch that would take the session over it
        removes the oldest whole turns in the same transaction: the window's start moves to a
        user message, so no turn is cut and no tool call loses its output, and the cascade
        purges the rows below it. The newest turn always stays, even alone over the cap. Cost
        follows the rows removed, not the history: the header's condition reports the count,
        one Query reads the oldest rows, the transaction is retried.

        Raises:
            SessionNotFoundError, ItemTooLargeError, BatchTooLargeError, ConflictError,
            TurnLostError, and the throttling/unavailable errors. In every case nothing was written.
        """
        user_id = check_user_id(user_id)
        session_id = check_session_id(session_id)
        if not items:
            raise InvalidInputError("items must not be empty")
        encoded = [encode_item(item) for item in items]
        rows = sum(1 + len(e.chunks) for e in encoded)
        size = sum(e.stored_bytes + ROW_OVERHEAD_BYTES * (1 + len(e.chunks)) for e in encoded)
        response: Item = {}
        if idempotency is not None:  # the key's record is one more row of the transaction
            recorded = encode_response(idempotency.response)
            response = recorded.attributes
            rows += 1
            size += recorded.stored_bytes + len(idempotency.key) + ROW_OVERHEAD_BYTES
        if rows + 1 > MAX_TRANSACTION_ROWS or size > MAX_TRANSACTION_BYTES:
            raise BatchTooLargeError(
                f"a batch must fit one transaction: at most {MAX_TRANSACTION_ROWS - 1} rows and "
                f"{MAX_TRANSACTION_BYTES} bytes; this one needs {rows} rows and {size} bytes",
                details=[{"rows": rows, "bytes": size}],
            )
        pk = keys.partition_key(user_id, session_id)
        known_last = last_seq_hint or 0
        replace_expired = False
        cap = self.max_stored_items
        stale_before: str | None = None  # records older than this are an earlier session's
        trim: _Trim | None = None
        uncapped = False  # the history holds no whole turn to remove: this write may go over
        contention: RetryableReason = "TransactionConflict"
        for attempt in self._attempts():
            now = self._clock()
            base = max(to_micros(now), known_last + 1)
            last = base + len(encoded) - 1
            if replace_expired:
                header = self._new_header(user_id, session_id, now, first_seq=base)
                header.update(last_seq=_n(last), message_count=_n(len(encoded)))
                header_action = {
                    "Put": {
                        "TableName": self.table_name,
                        "Item": header,
                        "ConditionExpression": "attribute_exists(pk) AND expires_at <= :now_s",
                        "ExpressionAttributeValues": {":now_s": _n(math.floor(now))},
                        "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
                    }
                }
            else:
                header_action = self._append_header_update(
                    user_id,
                    session_id,
                    now,
                    base,
                    last,
                    len(encoded),
                    create_missing,
                    turn,
                    room=cap - len(encoded) if cap and trim is None and not uncapped else None,
                    trim=trim,
                )
            actions: list[Item] = [header_action]
            marker_after = False
            if trim is not None:  # the rows below the new window get purged by the cascade
                marker_after = 1 + rows + 1 > MAX_TRANSACTION_ROWS  # header, rows, marker
                if not marker_after:
                    marker = self._trim_marker(pk)
                    actions.append({"Put": {"TableName": self.table_name, "Item": marker}})
            created_at = _s(to_iso(now))
            for offset, entry in enumerate(encoded):
                seq = base + offset
                message: Item = {
                    "pk": _s(pk),
                    "sk": _s(keys.message_sk(seq)),
                    "created_at": created_at,
                }
                message.update(entry.attributes)
                message["starts_turn"] = {"BOOL": entry.starts_turn}
                actions.append({"Put": {"TableName": self.table_name, "Item": message}})
                for index, chunk in enumerate(entry.chunks):
                    chunk_row = {
                        "pk": _s(pk),
                        "sk": _s(keys.chunk_sk(seq, index)),
                        "data": {"B": chunk},
                    }
                    actions.append({"Put": {"TableName": self.table_name, "Item": chunk_row}})
            if idempotency is not None:
                actions.append(
                    self._record_put(pk, idempotency, response, now, base, last, stale_before)
                )
            try:
                self._call("transact_write_items", TransactItems=actions)
                if replace_expired or marker_after:
                    self._put_trim_marker(pk)
                return AppendResult(
                    appended=len(encoded),
                    first_seq=base,
                    last_seq=last,
                    removed=trim.removed if trim is not None else 0,
                )
            except ClientError as exc:
                reasons = _cancellation_reasons(exc)
                header_reason = reasons[0] if reasons else {}
                if idempotency is not None and len(reasons) == len(actions):
                    blocking = _blocking_record(reasons)
                    replay = None
                    if blocking is not None:
                        created = self._session_created_at(pk, header_reason, now)
                        if blocking["created_at"]["S"] < created:
                            stale_before = created  # the key's record is a deleted session's
                            continue
                        replay = _replay_on_cancel(idempotency, blocking, header_reason, now)
                    if replay is not None:
                        return AppendResult(
                            appended=replay.last_seq - replay.first_seq + 1,
                            first_seq=replay.first_seq,
                            last_seq=replay.last_seq,
                            replay=replay,
                        )
                if header_reason.get("Code") == "ConditionalCheckFailed":
                    current = header_reason.get("Item")
                    if current is not None and _is_live(current, now):
                        if turn is not None and current.get("turn_id") != _s(turn.turn_id):
                            raise TurnLostError(
                                "this turn's lease lapsed; nothing was stored"
                            ) from None
                        # Lost a race: go after the winner. The random gap (seqs are µs) lets the
                        # writers that lost together land in one round instead of colliding again.
                        known_last = int(current["last_seq"]["N"]) + random.randrange(RETRY_GAP_US)
                        replace_expired = False
                        # Or over the cap (the header's "room" condition): trim, from this state.
                        trim, uncapped = None, False
                        if cap and int(current["message_count"]["N"]) + len(encoded) > cap:
                            trim = self._plan_trim(pk, current, cap, len(encoded), encoded[0])
                            uncapped = trim is None
                        if attempt:
                            self._backoff(attempt)
                        continue
                    if not create_missing:
                        raise SessionNotFoundError("session not found") from None
                    replace_expired = current is not None
                    trim, uncapped = None, False  # a new session: nothing older to remove
                    continue
                contention = _retryable_reason(exc, reasons)
                self._backoff(attempt)
        raise _contention_error(contention)

    def begin_turn(
        self, user_id: str, session_id: str, turn_id: str, *, lease_seconds: int
    ) -> ChatSession:
        """Take the session's turn lease (one UpdateItem); the session as it now stands.

        Raises:
            SessionNotFoundError; TurnInProgressError while another turn's lease is unexpired.
        """
        pk = keys.partition_key(check_user_id(user_id), check_session_id(session_id))
        now = self._clock()
        try:
            updated = self._update_header(
                pk,
                # The session lives at least its TTL past the lease, so a long turn on a
                # short-lived session does not find it expired when it commits.
                "SET turn_id = :turn, turn_expires_at = :lease_end, "
                "expires_at = if_not_exists(ttl_seconds, :ttl) + :lease_end",
                condition=f"{_LIVE} AND "
                "(attribute_not_exists(turn_id) OR turn_expires_at <= :now_s)",
                values={
                    ":turn": _s(turn_id),
                    ":lease_end": _n(math.floor(now) + lease_seconds),
                    ":now_s": _n(math.floor(now)),
                    ":ttl": _n(self.session_ttl_seconds),
                },
            )
        except ClientError as exc:
            busy = TurnInProgressError("another turn of this session is in progress")
            _raise_conflict_or_missing(exc, now, busy)
        return self._session(updated)

    def end_turn(self, user_id: str, session_id: str, turn_id: str) -> None:
        """Release the lease of a turn that stores nothing (failed); a no-op if it is not held."""
        pk = keys.partition_key(check_user_id(user_id), check_session_id(session_id))
        try:
            self._update_header(
                pk,
                "REMOVE turn_id, turn_expires_at",
                condition="turn_id = :turn",
                values={":turn": _s(turn_id)},
                returns="NONE",
            )
        except ClientError:
            return  # lapsed and taken by another turn, or the session is gone

    def find_replay(
        self,
        user_id: str,
        session_id: str,
        key: str,
        request_hash: str,
        *,
        session_created_at: datetime | None = None,
    ) -> StoredResponse | None:
        """The response recorded under an Idempotency-Key in this session within its 24 h
        (``None``: the key is new, or was recorded before ``session_created_at`` by a deleted
        session of the same id). One consistent GetItem.

        Raises:
            IdempotencyKeyReusedError: The key was recorded for a different request.
        """
        pk = keys.partition_key(check_user_id(user_id), check_session_id(session_id))
        record = self._get_unexpired(pk, keys.idempotency_sk(key))
        if record is None:
            return None
        created = None if session_created_at is None else to_iso(session_created_at.timestamp())
        if created is not None and record["created_at"]["S"] < created:
            return None
        return _recorded(record, request_hash)

    def read_batch(
        self, user_id: str, session_id: str, first_seq: int, last_seq: int
    ) -> list[StoredMessage]:
        """The messages one append stored, by its seq range (e.g. a ``StoredResponse``'s), oldest
        first; those removed since (pop, clear, purge) are missing."""
        pk = keys.partition_key(check_user_id(user_id), check_session_id(session_id))
        request = self._messages_between(pk, first_seq, last_seq)
        rows: list[Item] = []
        while True:
            response = self._call("query", **request)
            rows += response.get("Items", [])
            if (last_key := response.get("LastEvaluatedKey")) is None:
                return self._decode_rows(pk, rows)
            request["ExclusiveStartKey"] = last_key

    def read_newest(
        self, user_id: str, session_id: str, limit: int | None
    ) -> tuple[ChatSession, list[StoredMessage]]:
        """The session and its newest ``limit`` messages (all when ``None``), oldest first.

        One Query returns the header and the messages together.
        """
        pk = keys.partition_key(check_user_id(user_id), check_session_id(session_id))
        if limit is not None and limit < 0:
            raise InvalidInputError("limit must not be negative")
        header, rows = self._read_newest_rows(pk, limit, self._clock())
        messages = self._decode_rows(pk, rows)
        messages.reverse()
        return self._session(header), messages

    def list_messages(
        self,
        user_id: str,
        session_id: str,
        *,
        limit: int = 50,
        cursor: str | None = None,
        order: Order = "asc",
    ) -> MessagePage:
        """One page of the whole history, oldest first (``asc``) or newest first (``desc``)."""
        if not 1 <= limit <= 100:
            raise InvalidInputError("limit must be between 1 and 100")
        if order not in ("asc", "desc"):
            raise InvalidInputError("order must be 'asc' or 'desc'")
        session = self.get_session(user_id, session_id)
        pk = keys.partition_key(user_id, session.session_id)
        low, high = session.first_seq, session.last_seq
        if cursor is not None:
            position = decode_cursor(cursor, "messages")
            after = position.get("s")
            if not isinstance(after, int) or position.get("o") != order:
                raise InvalidCursorError("the cursor is not one this API issued for this listing")
            low, high = (
                (max(low, after + 1), high) if order == "asc" else (low, min(high, after - 1))
            )
        if low > high:
            return MessagePage(messages=[], next_cursor=None)
        response = self._call(
            "query",
            TableName=self.table_name,
            KeyConditionExpression="pk = :pk AND sk BETWEEN :low AND :high",
            ExpressionAttributeValues={
                ":pk": _s(pk),
                ":low": _s(keys.message_sk(low)),
                ":high": _s(keys.message_sk(high)),
            },
            ScanIndexForward=order == "asc",
            ConsistentRead=True,
            Limit=limit,
        )
        rows = response.get("Items", [])
        next_cursor = None
        if rows and response.get("LastEvaluatedKey") is not None:
            edge = keys.seq_of(rows[-1]["sk"]["S"])
            if edge != (high if order == "asc" else low):
                next_cursor = encode_cursor("messages", s=edge, o=order)
        return MessagePage(messages=self._decode_rows(pk, rows), next_cursor=next_cursor)

    def pop_item(self, user_id: str, session_id: str) -> StoredMessage | None:
        """Remove and return the newest message (``None`` when there is none).

        Two concurrent pops never return the same message: the delete is conditional on the row
        still existing, and the loser moves on to the next one.
        """
        pk = keys.partition_key(check_user_id(user_id), check_session_id(session_id))
        contention: RetryableReason = "TransactionConflict"
        for attempt in self._attempts():
            now = self._clock()
            _, rows = self._read_newest_rows(pk, 1, now)
            if not rows:
                return None
            row = rows[0]
            seq = keys.seq_of(row["sk"]["S"])
            try:
                parts = chunk_count(row)
            except CorruptItemError:
                parts = 0
            actions: list[Item] = [
                {
                    "Delete": {
                        "TableName": self.table_name,
                        "Key": {"pk": _s(pk), "sk": row["sk"]},
                        "ConditionExpression": "attribute_exists(sk)",
                    }
                },
                {
                    "Update": {
                        "TableName": self.table_name,
                        "Key": {"pk": _s(pk), "sk": _s(keys.SESSION_SK)},
                        "UpdateExpression": f"SET updated_at = :now_iso, {_SLIDE_EXPIRY} "
                        "ADD message_count :minus_one",
                        "ConditionExpression": f"{_LIVE} AND first_seq <= :seq",
                        "ExpressionAttributeValues": {
                            ":now_s": _n(math.floor(now)),
                            ":now_iso": _s(to_iso(now)),
                            ":ttl": _n(self.session_ttl_seconds),
                            ":minus_one": _n(-1),
                            ":seq": _n(seq),
                        },
                    }
                },
            ]
            actions += [
                {"Delete": {"TableName": self.table_name, "Key": _chunk_key(pk, seq, index)}}
                for index in range(parts)
            ]
            decoded = self._decode_rows(pk, [row])  # before the delete: chunks still exist
            try:
                self._call("transact_write_items", TransactItems=actions)
            except ClientError as exc:
                reasons = _cancellation_reasons(exc)
                if not any(r.get("Code") == "ConditionalCheckFailed" for r in reasons):
                    contention = _retryable_reason(exc, reasons)
                self._backoff(attempt)
                continue  # re-read: the row is gone, the session cleared, deleted or expired
            if decoded:
                return decoded[0]
            # An unreadable row was dropped (as SQLiteSession does); pop the next one.
        raise _contention_error(contention)

    def clear_items(self, user_id: str, session_id: str) -> None:
        """Remove every message; the session stays.

        One transaction moves the visible window past every message (so they are gone at once,
        whatever the history) and writes a trim marker; the stream consumer then deletes the rows
        (``purge_trimmed``).
        """
        pk = keys.partition_key(check_user_id(user_id), check_session_id(session_id))
        contention: RetryableReason = "TransactionConflict"
        for attempt in self._attempts():
            now = self._clock()
            clear = {
                "Update": {
                    "TableName": self.table_name,
                    "Key": {"pk": _s(pk), "sk": _s(keys.SESSION_SK)},
                    "UpdateExpression": "SET first_seq = last_seq + :one, message_count = :zero, "
                    f"updated_at = :now_iso, {_SLIDE_EXPIRY}",
                    "ConditionExpression": _LIVE,
                    "ExpressionAttributeValues": {
                        ":now_s": _n(math.floor(now)),
                        ":now_iso": _s(to_iso(now)),
                        ":ttl": _n(self.session_ttl_seconds),
                        ":one": _n(1),
                        ":zero": _n(0),
                    },
                }
            }
            marker = {"Put": {"TableName": self.table_name, "Item": self._trim_marker(pk)}}
            try:
                self._call("transact_write_items", TransactItems=[clear, marker])
                return
            except ClientError as exc:
                reasons = _cancellation_reasons(exc)
                if any(r.get("Code") == "ConditionalCheckFailed" for r in reasons):
                    raise SessionNotFoundError("session not found") from None
                contention = _retryable_reason(exc, reasons)
                self._backoff(attempt)
        raise _contention_error(contention)

    # -------------------------------------------------------------------------- delete everything

    def request_deletion(self, user_id: str, *, deletion_id: str | None = None) -> Deletion:
        """Record a request to delete every session the user owns now (one PutItem).

        The stream consumer carries it out (``run_deletion``); ``get_deletion`` reports progress.
        The request itself expires ``DELETION_RECORD_DAYS`` days later.
        """
        user_id = check_user_id(user_id)
        deletion_id = deletion_id or uuid.uuid4().hex
        now = self._clock()
        item: Item = {
            "pk": _s(keys.user_partition_key(user_id)),
            "sk": _s(keys.deletion_sk(deletion_id)),
            "deletion_id": _s(deletion_id),
            "status": _s("pending"),
            "sessions_deleted": _n(0),
            "requested_at": _s(to_iso(now)),
            "expires_at": _n(math.floor(now) + DELETION_RECORD_DAYS * 86_400),
        }
        self._call(
            "put_item",
            TableName=self.table_name,
            Item=item,
            ConditionExpression="attribute_not_exists(sk)",
        )
        return _deletion_from(item)

    def get_deletion(self, user_id: str, deletion_id: str) -> Deletion:
        """The user's delete-all request, or ``DeletionNotFoundError``."""
        pk = keys.user_partition_key(check_user_id(user_id))
        if not _DELETION_ID.fullmatch(deletion_id):
            raise DeletionNotFoundError("deletion not found")
        item = self._get_unexpired(pk, keys.deletion_sk(deletion_id))
        if item is None:
            raise DeletionNotFoundError("deletion not found")
        return _deletion_from(item)

    def run_deletion(
        self, user_partition: str, deletion_sk: str, *, budget_seconds: float = 240
    ) -> int:
        """Carry out a delete-all request: delete each session header the user had when asking
        (their ``REMOVE`` records then cascade), recording progress on the request.

        Sessions created after the request stay. Idempotent: a finished request does nothing, and
        one that runs out of ``budget_seconds`` raises ``DeletionIncompleteError`` after a page;
        run again (the stream retries it), it carries on with what is left.

        Returns:
            How many headers this run deleted.
        """
        key = {"pk": _s(user_partition), "sk": _s(deletion_sk)}
        deadline = time.monotonic() + budget_seconds
        response = self._call("get_item", TableName=self.table_name, Key=key, ConsistentRead=True)
        request_item = response.get("Item")
        if request_item is None or request_item["status"]["S"] == "done":
            return 0
        query: dict[str, Any] = {
            "TableName": self.table_name,
            "IndexName": keys.ACTIVITY_INDEX,
            "KeyConditionExpression": "user_id = :user",
            "FilterExpression": "created_at <= :asked",
            "ProjectionExpression": "pk, sk",
            "Limit": DELETION_PAGE_SIZE,
            "ExpressionAttributeValues": {
                ":user": _s(keys.user_of(user_partition)),
                ":asked": request_item["requested_at"],
            },
        }
        deleted = 0
        while True:
            page = self._call("query", **query)
            count = self._delete_all({"pk": r["pk"], "sk": r["sk"]} for r in page["Items"])
            deleted += count
            self._update_deletion(
                key,
                "SET #status = :running ADD sessions_deleted :count",
                {":running": _s("running"), ":count": _n(count)},
            )
            if "LastEvaluatedKey" not in page:
                break
            query["ExclusiveStartKey"] = page["LastEvaluatedKey"]
            if time.monotonic() > deadline:
                raise DeletionIncompleteError("the deletion ran out of time; it resumes on retry")
        self._update_deletion(
            key,
            "SET #status = :done, completed_at = :now_iso",
            {":done": _s("done"), ":now_iso": _s(to_iso(self._clock()))},
        )
        return deleted

    def _update_deletion(self, key: Item, update: str, values: Item) -> None:
        self._call(
            "update_item",
            TableName=self.table_name,
            Key=key,
            UpdateExpression=update,
            ExpressionAttributeNames={"#status": "status"},  # a reserved word
            ExpressionAttributeValues=values,
        )

    # ------------------------------------------------------------------- cascade (stream consumer)

    def purge_session(self, pk: str, *, up_to_seq: int) -> int:
        """Physically delete what a deleted or expired session left: its message and chunk rows
        with seq <= ``up_to_seq`` (the deleted header's ``last_seq``) and its idempotency records.

        Idempotent; never touches a re-created session's rows, whose seqs are later.

        Returns:
            How many rows were deleted.
        """
        records = self._query_keys(
            pk,
            "begins_with(sk, :prefix)",
            {":prefix": _s(keys.IDEMPOTENCY_PREFIX)},
            filter_expression="seq <= :up_to",
            filter_values={":up_to": _n(up_to_seq)},
        )
        return self.purge(pk, up_to_seq=up_to_seq) + self._delete_all(records)

    def purge_trimmed(self, pk: str) -> int:
        """Physically delete the rows below the session's ``first_seq`` (cleared or trimmed).

        Reads the header first: ``first_seq`` only moves forward, so this is idempotent, and a
        deleted session (no header) is left to ``purge_session``.

        Returns:
            How many rows were deleted.
        """
        header = self._get_header(pk, "first_seq")
        if header is None:
            return 0
        return self.purge(pk, up_to_seq=int(header["first_seq"]["N"]) - 1)

    def delete_row(self, pk: str, sk: str) -> None:
        """Delete one row by key (a processed trim marker); a no-op when it is already gone."""
        self._call("delete_item", TableName=self.table_name, Key={"pk": _s(pk), "sk": _s(sk)})

    def purge(self, pk: str, *, up_to_seq: int) -> int:
        """Physically delete the message and chunk rows of ``pk`` with seq <= ``up_to_seq``.

        Idempotent; never touches rows written after ``up_to_seq`` (a re-created session's).

        Returns:
            How many rows were deleted.
        """
        deleted = 0
        for low, high in (
            (keys.CHUNK_PREFIX, keys.last_chunk_sk(up_to_seq)),
            (keys.MESSAGE_PREFIX, keys.message_sk(up_to_seq)),
        ):
            rows = self._query_keys(
                pk, "sk BETWEEN :low AND :high", {":low": _s(low), ":high": _s(high)}
            )
            deleted += self._delete_all(rows)
        return deleted

    # ---------------------------------------------------------------------------------- internals

    def _call(self, operation: str, /, **request: Any) -> Any:
        """One DynamoDB call; errors other than condition failures become domain errors."""
        try:
            return getattr(self.client, operation)(**request)
        except ClientError as exc:
            if error_code(exc) in _EXPECTED_CODES:
                raise
            raise translate(exc) from exc
        except BotoCoreError as exc:
            raise translate(exc) from exc

    def _get_header(self, pk: str, projection: str | None = None) -> Item | None:
        """A session's header (consistent read), or ``None``; only ``projection``'s attributes
        when given."""
        request: dict[str, Any] = {
            "TableName": self.table_name,
            "Key": {"pk": _s(pk), "sk": _s(keys.SESSION_SK)},
            "ConsistentRead": True,
        }
        if projection is not None:
            request["ProjectionExpression"] = projection
        item: Item | None = self._call("get_item", **request).get("Item")
        return item

    def _get_unexpired(self, pk: str, sk: str) -> Item | None:
        """One row (consistent read), or ``None`` when absent or past its ``expires_at`` (TTL
        removes such rows only later)."""
        response = self._call(
            "get_item",
            TableName=self.table_name,
            Key={"pk": _s(pk), "sk": _s(sk)},
            ConsistentRead=True,
        )
        item: Item | None = response.get("Item")
        if item is None or int(item["expires_at"]["N"]) <= self._clock():
            return None
        return item

    def _attempts(self) -> Iterator[int]:
        """Numbers the tries of a contended write until its time budget is spent (at least 3)."""
        deadline = time.monotonic() + self._conflict_budget_seconds
        attempt = 0
        while attempt < 3 or time.monotonic() < deadline:
            yield attempt
            attempt += 1

    def _update_header(
        self, pk: str, update: str, *, condition: str, values: Item, returns: str = "ALL_NEW"
    ) -> Item:
        """One conditional UpdateItem on a session header; the ``returns`` image. A failed
        condition raises ``ClientError`` carrying the header as it was (ALL_OLD)."""
        response = self._call(
            "update_item",
            TableName=self.table_name,
            Key={"pk": _s(pk), "sk": _s(keys.SESSION_SK)},
            UpdateExpression=update,
            ConditionExpression=condition,
            ExpressionAttributeValues=values,
            ReturnValues=returns,
            ReturnValuesOnConditionCheckFailure="ALL_OLD",
        )
        return dict(response.get("Attributes", {}))

    def _backoff(self, attempt: int) -> None:
        # Full jitter spreads writers that collided so they stop colliding again.
        self._sleep(random.uniform(0, min(0.2, 0.005 * 2**attempt)))

    def _new_header(
        self,
        user_id: str,
        session_id: str,
        now: float,
        *,
        title: str | None = None,
        metadata: dict[str, str] | None = None,
        first_seq: int | None = None,
        ttl_seconds: int | None = None,
    ) -> Item:
        first = to_micros(now) if first_seq is None else first_seq
        ttl = self.session_ttl_seconds if ttl_seconds is None else ttl_seconds
        header: Item = {
            "pk": _s(keys.partition_key(user_id, session_id)),
            "sk": _s(keys.SESSION_SK),
            "user_id": _s(user_id),
            "session_id": _s(session_id),
            "metadata": _string_map(metadata or {}),
            "created_at": _s(to_iso(now)),
            "updated_at": _s(to_iso(now)),
            "expires_at": _n(math.floor(now) + ttl),
            "message_count": _n(0),
            "first_seq": _n(first),
            "last_seq": _n(first - 1),
        }
        if ttl_seconds is not None:
            header["ttl_seconds"] = _n(ttl_seconds)
        if title is not None:
            header["title"] = _s(title)
            header["title_source"] = _s("user")
        return header

    def _trim_marker(self, pk: str) -> Item:
        """A new trim marker: its INSERT makes the stream consumer call ``purge_trimmed``. Its
        TTL removes it should the consumer never get to it (dead-lettered)."""
        now = self._clock()
        return {
            "pk": _s(pk),
            "sk": _s(keys.trim_sk(uuid.uuid4().hex)),
            "created_at": _s(to_iso(now)),
            "expires_at": _n(math.floor(now) + TRIM_MARKER_TTL_SECONDS),
        }

    def _put_trim_marker(self, pk: str) -> None:
        """A trim marker on its own, after the write that moved ``first_seq``: one that replaced an
        expired header TTL had not removed yet, or a trim whose transaction had no room for it.
        Were this call lost, the session's own cascade would still purge those rows (they lie
        below its ``last_seq``)."""
        self._call("put_item", TableName=self.table_name, Item=self._trim_marker(pk))

    def _check_ttl(self, ttl_seconds: int) -> None:
        low, high = self.ttl_bounds
        if isinstance(ttl_seconds, bool) or not isinstance(ttl_seconds, int):
            raise InvalidInputError("ttl_seconds must be an integer")
        if not low <= ttl_seconds <= high:
            raise InvalidInputError(
                f"ttl_seconds must be between {low} and {high}",
                details=[{"loc": ["ttl_seconds"], "type": "range", "min": low, "max": high}],
            )

    def _session(self, header: Item) -> ChatSession:
        return _session_from(header, self.session_ttl_seconds)

    def _append_header_update(
        self,
        user_id: str,
        session_id: str,
        now: float,
        base: int,
        last: int,
        count: int,
        create_missing: bool,
        turn: TurnCommit | None = None,
        *,
        room: int | None = None,
        trim: _Trim | None = None,
    ) -> Item:
        """The append's header update. ``room``: only if the session holds at most this many
        messages (the retention cap less the batch). ``trim``: move the window's start past the
        oldest whole turns, if nothing moved it since they were read."""
        # One expression serves both "append to a live session" and "create it on first append".
        condition = "expires_at > :now_s AND last_seq < :base"
        first_seq = "if_not_exists(first_seq, :base)"
        extra_values: Item = {}
        if room is not None:
            condition += " AND message_count <= :room"
            extra_values[":room"] = _n(room)
        if trim is not None:  # nothing may have changed since the rows were read
            condition += (
                " AND first_seq = :seen_first AND last_seq = :seen_last"
                " AND message_count = :seen_count"
            )
            first_seq = ":base" if trim.cut_seq is None else ":cut"
            count -= trim.removed
            extra_values[":seen_first"] = _n(trim.seen_first)
            extra_values[":seen_last"] = _n(trim.seen_last)
            extra_values[":seen_count"] = _n(trim.seen_count)
            if trim.cut_seq is not None:
                extra_values[":cut"] = _n(trim.cut_seq)
        if create_missing:
            condition = f"attribute_not_exists(pk) OR ({condition})"
        else:
            condition = f"attribute_exists(pk) AND {condition}"
        adds, removes, sets = "", "", ""
        if turn is not None:
            condition += " AND turn_id = :turn"
            removes = " REMOVE turn_id, turn_expires_at"
            adds = ", usage_input_tokens :in, usage_output_tokens :out, usage_total_tokens :total"
            if turn.title:
                sets += ", title = if_not_exists(title, :title), "
                sets += "title_source = if_not_exists(title_source, :auto)"
            extra_values.update(
                {
                    ":turn": _s(turn.turn_id),
                    ":in": _n(turn.input_tokens),
                    ":out": _n(turn.output_tokens),
                    ":total": _n(turn.input_tokens + turn.output_tokens),
                }
            )
            if turn.title:
                extra_values.update({":title": _s(turn.title), ":auto": _s("auto")})
        return {
            "Update": {
                "TableName": self.table_name,
                "Key": {
                    "pk": _s(keys.partition_key(user_id, session_id)),
                    "sk": _s(keys.SESSION_SK),
                },
                "UpdateExpression": "SET user_id = :user, session_id = :session, "
                f"updated_at = :now_iso, {_SLIDE_EXPIRY}, last_seq = :last, "
                "created_at = if_not_exists(created_at, :now_iso), "
                f"first_seq = {first_seq}, "
                f"metadata = if_not_exists(metadata, :no_metadata){sets} "
                f"ADD message_count :count{adds}{removes}",
                "ConditionExpression": condition,
                "ExpressionAttributeValues": {
                    ":user": _s(user_id),
                    ":session": _s(session_id),
                    ":now_s": _n(math.floor(now)),
                    ":now_iso": _s(to_iso(now)),
                    ":ttl": _n(self.session_ttl_seconds),
                    ":base": _n(base),
                    ":last": _n(last),
                    ":count": _n(count),
                    ":no_metadata": {"M": {}},
                    **extra_values,
                },
                "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
            }
        }

    def _plan_trim(
        self, pk: str, header: Item, cap: int, batch: int, first_of_batch: EncodedItem
    ) -> _Trim | None:
        """Which oldest whole turns to remove so that ``batch`` more messages fit under ``cap``:
        the window then starts at the first user message at or after the excess (or at the batch,
        when it starts a turn and nothing older may stay). ``None`` when no turn boundary allows
        it. Reads the oldest rows only, a page at a time, until that boundary."""
        first, last = int(header["first_seq"]["N"]), int(header["last_seq"]["N"])
        count = int(header["message_count"]["N"])
        excess = count + batch - cap
        if excess < count:
            request = self._messages_between(pk, first, last)
            request["Limit"] = excess + TRIM_LOOKAHEAD_ROWS
            index = 0
            while True:
                response = self._call("query", **request)
                for row in response.get("Items", []):
                    if index >= excess and self._starts_turn(pk, row):
                        cut = keys.seq_of(row["sk"]["S"])
                        return _Trim(cut, index, first, last, count)
                    index += 1
                if "LastEvaluatedKey" not in response:
                    break
                request["ExclusiveStartKey"] = response["LastEvaluatedKey"]
                request["Limit"] = TRIM_LOOKAHEAD_ROWS
        if first_of_batch.starts_turn:
            return _Trim(None, count, first, last, count)
        return None

    def _messages_between(self, pk: str, first_seq: int, last_seq: int) -> dict[str, Any]:
        """A consistent, ascending Query of the message rows with seqs in the range."""
        return {
            "TableName": self.table_name,
            "KeyConditionExpression": "pk = :pk AND sk BETWEEN :low AND :high",
            "ExpressionAttributeValues": {
                ":pk": _s(pk),
                ":low": _s(keys.message_sk(first_seq)),
                ":high": _s(keys.message_sk(last_seq)),
            },
            "ConsistentRead": True,
        }

    def _starts_turn(self, pk: str, row: Item) -> bool:
        """Whether a message row is a user message; rows written before the ``starts_turn`` flag
        existed are decoded to tell."""
        if "starts_turn" in row:
            return bool(row["starts_turn"]["BOOL"])
        decoded = self._decode_rows(pk, [row])
        return bool(decoded) and starts_turn(decoded[0].item)

    def _record_put(
        self,
        pk: str,
        record: IdempotencyRecord,
        response: Item,
        now: float,
        first_seq: int,
        last_seq: int,
        stale_before: str | None = None,
    ) -> Item:
        """The Put of an Idempotency-Key's record: only if the key is new, its 24 h are over, or
        (``stale_before``) it was recorded before this session was created, by a deleted one.
        ``seq`` is the batch's last seq, which bounds what a cascade of the session deletes."""
        item: Item = {
            "pk": _s(pk),
            "sk": _s(keys.idempotency_sk(record.key)),
            "request_hash": _s(record.request_hash),
            "status": _n(record.status),
            "first_seq": _n(first_seq),
            "seq": _n(last_seq),
            "created_at": _s(to_iso(now)),
            "expires_at": _n(math.floor(now) + IDEMPOTENCY_TTL_SECONDS),
            **response,
        }
        return {
            "Put": {
                "TableName": self.table_name,
                "Item": item,
                "ConditionExpression": "attribute_not_exists(sk) OR expires_at <= :now_s"
                + (" OR created_at < :session_created" if stale_before else ""),
                "ExpressionAttributeValues": {
                    ":now_s": _n(math.floor(now)),
                    **({":session_created": _s(stale_before)} if stale_before else {}),
                },
                "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
            }
        }

    def _session_created_at(self, pk: str, header_reason: dict[str, Any], now: float) -> str:
        """When the session a write went to was created: from the header its cancellation
        returned, else read (consistent); now, for a session the write itself would create."""
        header = header_reason.get("Item")
        if header_reason.get("Code") != "ConditionalCheckFailed" or header is None:
            header = self._get_header(pk, "created_at, expires_at")
        if header is None or not _is_live(header, now):
            return to_iso(now)
        return str(header["created_at"]["S"])

    def _live_header(self, item: Item | None, now: float) -> Item:
        if item is None or not _is_live(item, now):
            raise SessionNotFoundError("session not found")
        return item

    def _read_newest_rows(self, pk: str, limit: int | None, now: float) -> tuple[Item, list[Item]]:
        """The live header and up to ``limit`` visible message rows, newest first, in one Query
        (more only when DynamoDB's 1 MB page ends first or unreadable rows must be skipped)."""
        request: dict[str, Any] = {
            "TableName": self.table_name,
            "KeyConditionExpression": "pk = :pk AND sk BETWEEN :low AND :high",
            "ExpressionAttributeValues": {
                ":pk": _s(pk),
                ":low": _s(keys.MESSAGE_PREFIX),
                ":high": _s(keys.SESSION_SK),
            },
            "ScanIndexForward": False,
            "ConsistentRead": True,
        }
        if limit is not None:
            request["Limit"] = limit + 1
        header: Item | None = None
        rows: list[Item] = []
        while True:
            response = self._call("query", **request)
            for item in response.get("Items", []):
                if header is None:
                    if item["sk"]["S"] != keys.SESSION_SK:
                        raise SessionNotFoundError("session not found")
                    header = self._live_header(item, now)
                    if limit == 0:
                        return header, rows
                    continue
                seq = keys.seq_of(item["sk"]["S"])
                if seq < int(header["first_seq"]["N"]):
                    return header, rows  # older rows were cleared or belong to a deleted session
                if seq <= int(header["last_seq"]["N"]):
                    rows.append(item)
                    if limit is not None and len(rows) >= limit:
                        return header, rows
            last_key = response.get("LastEvaluatedKey")
            if last_key is None:
                break
            request["ExclusiveStartKey"] = last_key
        if header is None:
            raise SessionNotFoundError("session not found")
        return header, rows

    def _decode_rows(self, pk: str, rows: list[Item]) -> list[StoredMessage]:
        """Stored messages for ``rows`` (same order), fetching chunks in one batch; unreadable rows
        are skipped with a warning naming the row, never its content."""
        wanted: list[Item] = []
        for row in rows:
            try:
                parts = chunk_count(row)
            except CorruptItemError:
                continue
            seq = keys.seq_of(row["sk"]["S"])
            wanted += [_chunk_key(pk, seq, index) for index in range(parts)]
        chunks = self._get_chunks(wanted)
        messages: list[StoredMessage] = []
        for row in rows:
            sort_key = row["sk"]["S"]
            seq = keys.seq_of(sort_key)
            try:
                parts = chunk_count(row)
                payload = [
                    chunks[keys.chunk_sk(seq, i)]
                    for i in range(parts)
                    if keys.chunk_sk(seq, i) in chunks
                ]
                item = decode_item(row, payload)
                created_at = from_iso(row["created_at"]["S"])
            except (CorruptItemError, KeyError, ValueError) as exc:
                logger.warning(
                    "skipping unreadable message row",
                    extra={"sk": sort_key, "reason": str(exc) or type(exc).__name__},
                )
                continue
            messages.append(StoredMessage(seq=seq, item=item, created_at=created_at))
        return messages

    def _get_chunks(self, chunk_keys: list[Item]) -> dict[str, bytes]:
        found: dict[str, bytes] = {}
        pending = list(chunk_keys)
        attempt = 0
        while pending:
            batch, pending = pending[:100], pending[100:]
            request = {self.table_name: {"Keys": batch, "ConsistentRead": True}}
            while request:
                response = self._call("batch_get_item", RequestItems=request)
                for item in response.get("Responses", {}).get(self.table_name, []):
                    found[item["sk"]["S"]] = bytes(item["data"]["B"])
                request = response.get("UnprocessedKeys") or {}
                if request:
                    self._backoff(attempt)
                    attempt += 1
        return found

    def _query_keys(
        self,
        pk: str,
        sort_key_condition: str,
        values: Item,
        *,
        filter_expression: str | None = None,
        filter_values: Item | None = None,
    ) -> Iterator[Item]:
        """The keys of the rows of ``pk`` that match, page by page."""
        request: dict[str, Any] = {
            "TableName": self.table_name,
            "KeyConditionExpression": f"pk = :pk AND {sort_key_condition}",
            "ExpressionAttributeValues": {":pk": _s(pk), **values, **(filter_values or {})},
            "ProjectionExpression": "pk, sk",
        }
        if filter_expression is not None:
            request["FilterExpression"] = filter_expression
        while True:
            response = self._call("query", **request)
            yield from response.get("Items", [])
            last_key = response.get("LastEvaluatedKey")
            if last_key is None:
                return
            request["ExclusiveStartKey"] = last_key

    def _delete_all(self, row_keys: Iterable[Item]) -> int:
        """Delete rows by key, 25 per BatchWriteItem (its maximum)."""
        deleted = 0
        batch: list[Item] = []
        for row_key in row_keys:
            batch.append(row_key)
            if len(batch) == 25:
                deleted += self._delete_rows(batch)
                batch = []
        return deleted + self._delete_rows(batch)

    def _delete_rows(self, row_keys: list[Item]) -> int:
        if not row_keys:
            return 0
        request = {self.table_name: [{"DeleteRequest": {"Key": key}} for key in row_keys]}
        attempt = 0
        while request:
            response = self._call("batch_write_item", RequestItems=request)
            request = response.get("UnprocessedItems") or {}
            if request:
                self._backoff(attempt)
                attempt += 1
        return len(row_keys)


# ------------------------------------------------------------------------------------ wire helpers


def _s(value: str) -> dict[str, str]:
    return {"S": value}


def _n(value: int) -> dict[str, str]:
    return {"N": str(value)}


def _string_map(values: dict[str, str]) -> dict[str, Any]:
    return {"M": {key: {"S": value} for key, value in values.items()}}


def _chunk_key(pk: str, seq: int, index: int) -> Item:
    return {"pk": _s(pk), "sk": _s(keys.chunk_sk(seq, index))}


def _is_live(header: Item, now: float) -> bool:
    return int(header["expires_at"]["N"]) > now


def _blocking_record(reasons: list[dict[str, Any]]) -> Item | None:
    """The Idempotency-Key record that cancelled an append (it is the last action), as it is
    (ALL_OLD), if any."""
    reason = reasons[-1]
    if reason.get("Code") != "ConditionalCheckFailed":
        return None
    return cast("Item | None", reason.get("Item"))


def _replay_on_cancel(
    record: IdempotencyRecord, existing: Item, header_reason: dict[str, Any], now: float
) -> StoredResponse | None:
    """After an append cancelled by the key's ``existing`` record: its earlier response, else
    ``None`` (the caller then handles the header as without a key). A session that is gone is
    reported as such, whatever its records say."""
    if header_reason.get("Code") == "ConditionalCheckFailed":
        header = header_reason.get("Item")
        if header is None or not _is_live(header, now):
            return None
    return _recorded(existing, record.request_hash)


def _recorded(record: Item, request_hash: str) -> StoredResponse:
    """The response an Idempotency-Key's record holds, for the same request only."""
    if record["request_hash"]["S"] != request_hash:
        raise IdempotencyKeyReusedError(
            "this Idempotency-Key was used for a different request in the last 24 hours; "
            "use a new key for a new request"
        )
    try:
        body = decode_response(record)
    except CorruptItemError:
        raise ChatSessionsError("an idempotency record is unreadable") from None
    return StoredResponse(
        status=int(record["status"]["N"]),
        body=body,
        first_seq=int(record["first_seq"]["N"]),
        last_seq=int(record["seq"]["N"]),
    )


def _session_from(header: Item, default_ttl_seconds: int) -> ChatSession:
    return ChatSession(
        session_id=header["session_id"]["S"],
        title=header["title"]["S"] if "title" in header else None,
        metadata={
            key: value["S"] for key, value in header.get("metadata", {}).get("M", {}).items()
        },
        message_count=int(header["message_count"]["N"]),
        created_at=from_iso(header["created_at"]["S"]),
        updated_at=from_iso(header["updated_at"]["S"]),
        expires_at=datetime.fromtimestamp(int(header["expires_at"]["N"]), UTC),
        ttl_seconds=int(header["ttl_seconds"]["N"])
        if "ttl_seconds" in header
        else default_ttl_seconds,
        usage=Usage(
            input_tokens=int(header.get("usage_input_tokens", {"N": "0"})["N"]),
            output_tokens=int(header.get("usage_output_tokens", {"N": "0"})["N"]),
            total_tokens=int(header.get("usage_total_tokens", {"N": "0"})["N"]),
        ),
        first_seq=int(header["first_seq"]["N"]),
        last_seq=int(header["last_seq"]["N"]),
    )


def _deletion_from(item: Item) -> Deletion:
    return Deletion(
        deletion_id=item["deletion_id"]["S"],
        status=cast("DeletionStatus", item["status"]["S"]),
        sessions_deleted=int(item["sessions_deleted"]["N"]),
        requested_at=from_iso(item["requested_at"]["S"]),
        completed_at=from_iso(item["completed_at"]["S"]) if "completed_at" in item else None,
    )


def _session_cursor_key(user_id: str, cursor: str) -> Item:
    """The index start key for a sessions cursor, rebuilt from the caller's own user id."""
    position = decode_cursor(cursor, "sessions")
    updated_at, session_id = position.get("u"), position.get("i")
    if not isinstance(updated_at, str) or not isinstance(session_id, str):
        raise InvalidCursorError("the cursor is not one this API issued for this listing")
    try:
        from_iso(updated_at)
        session_id = check_session_id(session_id)
    except (ValueError, InvalidInputError):
        raise InvalidCursorError("the cursor is not one this API issued for this listing") from None
    return {
        "pk": _s(keys.partition_key(user_id, session_id)),
        "sk": _s(keys.SESSION_SK),
        "user_id": _s(user_id),
        "updated_at": _s(updated_at),
    }


def _raise_conflict_or_missing(
    exc: ClientError, now: float, conflict: ChatSessionsError
) -> NoReturn:
    """A header condition failed (ALL_OLD returned): ``conflict`` if the session is live,
    otherwise it is absent or expired."""
    current = cast("Item | None", exc.response.get("Item"))
    if current is not None and _is_live(current, now):
        raise conflict from None
    raise SessionNotFoundError("session not found") from None


def _cancellation_reasons(exc: ClientError) -> list[dict[str, Any]]:
    if error_code(exc) != "TransactionCanceledException":
        return []
    return [dict(reason) for reason in exc.response.get("CancellationReasons", [])]


def _retryable_reason(exc: ClientError, reasons: list[dict[str, Any]]) -> RetryableReason:
    """Why a transaction was cancelled, if trying again later can help; else re-raise ``exc``
    as its domain error. botocore does not retry cancellations, so the store's loops do."""
    for reason in reasons:
        code = reason.get("Code")
        if code in _RETRYABLE_REASONS:
            return cast("RetryableReason", code)
    raise translate(exc) from exc


def _contention_error(reason: RetryableReason) -> Exception:
    if reason == "TransactionConflict":
        return ConflictError("too many concurrent writes to this session; retry")
    return ThrottledError("DynamoDB is throttling requests; retry later")


__all__ = ["UNSET", "ChatStore", "TurnCommit"]
