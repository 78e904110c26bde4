"""The door to the table: the only code that calls boto3 (docs/data-model.md, "The write protocol").

Every call goes through ``Table.call``. botocore's standard mode already resends throttled, 5xx and
timed-out calls with the same parameters; this door also resends what botocore does not
(``TransactionConflictException``, transactions cancelled only by conflicts or throttling) within a
time budget, and turns the rest into domain errors by code. Every transaction carries a client
token chosen before its first attempt, so a resend of one that was applied but whose answer was lost
is answered "done" by DynamoDB and changes nothing.
"""

from __future__ import annotations

import random
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from functools import cache
from typing import TYPE_CHECKING, Any, TypeVar, cast

from botocore.exceptions import BotoCoreError, ClientError

from chat_sessions.errors import ChatSessionsError, ConflictError, ThrottledError, UnavailableError

from .client import default_client, error_code, translate
from .wire import Item

T = TypeVar("T")
MAX_PARALLEL_READS = 16
"""Threads for reads run together (a branch's segments: at most the newest N's, N <= 100)."""


@cache
def _pool() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(MAX_PARALLEL_READS, thread_name_prefix="chat-sessions-read")


if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

_CONFLICT_REASONS = frozenset({"TransactionConflict"})
_THROTTLE_REASONS = frozenset(
    {"ThrottlingError", "ProvisionedThroughputExceeded", "RequestLimitExceeded"}
)
_CONFLICT_CODES = frozenset({"TransactionConflictException", "TransactionInProgressException"})
MIN_ATTEMPTS = 3
BATCH_GET_KEYS = 100
BATCH_WRITE_KEYS = 25


class ConditionFailed(Exception):
    """A single-item write's condition failed; ``item`` is the row as it was (ALL_OLD), if any."""

    def __init__(self, item: Item | None) -> None:
        super().__init__("condition failed")
        self.item = item


class Cancelled(Exception):
    """A transaction was cancelled by a failed condition. ``reasons`` has one entry per action,
    with the row as it was (``Item``) where the action asked for ALL_OLD."""

    def __init__(self, reasons: list[dict[str, Any]]) -> None:
        super().__init__("transaction cancelled")
        self.reasons = reasons

    def failed(self, index: int) -> bool:
        return self.reasons[index].get("Code") == "ConditionalCheckFailed"

    def item(self, index: int) -> Item | None:
        """The row action ``index`` saw, when its condition failed and it asked for it."""
        found = self.reasons[index].get("Item") if self.failed(index) else None
        return None if found is None else dict(found)


class Attempts:
    """Numbers the tries of a contended operation until its time budget is spent (at least
    ``MIN_ATTEMPTS``)."""

    def __init__(self, budget_seconds: float) -> None:
        self._budget = budget_seconds
        self._deadline = time.monotonic() + budget_seconds

    def __iter__(self) -> Iterator[int]:
        attempt = 0
        while attempt < MIN_ATTEMPTS or time.monotonic() < self._deadline:
            yield attempt
            attempt += 1


class Table:
    """One DynamoDB table behind the retry, token and error rules above.

    Args:
        name: The table's name.
        client: A boto3 client; a lazily created, process-wide one by default.
        budget_seconds: How long a call that keeps meeting conflicts is resent (at least
            ``MIN_ATTEMPTS`` times) before ``ConflictError``/``ThrottledError``.
        sleep: How to wait between tries (tests inject one).
    """

    def __init__(
        self,
        name: str,
        client: DynamoDBClient | None = None,
        *,
        budget_seconds: float = 5.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.name = name
        self._client = client
        self.budget_seconds = budget_seconds
        self.sleep = sleep
        self.overlapped = 0
        """Calls that ran alongside another (``together``): a round trip they did not add."""

    @property
    def client(self) -> DynamoDBClient:
        if self._client is None:
            self._client = default_client()
        return self._client

    def attempts(self) -> Attempts:
        """Numbers the tries of a contended operation until the budget is spent (at least 3)."""
        return Attempts(self.budget_seconds)

    def backoff(self, attempt: int, *, throttled: bool = False) -> None:
        """Full jitter spreads writers that collided so they stop colliding again; a throttled
        or failing service gets longer pauses (botocore has already retried it quickly)."""
        cap, base = (1.0, 0.05) if throttled else (0.2, 0.005)
        self.sleep(random.uniform(0, min(cap, base * 2**attempt)))

    def call(self, operation: str, /, **request: Any) -> Any:
        """One DynamoDB call, resent unchanged (a transaction: under the same token) while its
        answer leaves open whether it was applied, until the budget is spent.

        Raises:
            ConditionFailed, Cancelled: definite answers about the state (the caller decides).
            ConflictError, ThrottledError, UnavailableError: still no answer when the budget
                ran out (contended, throttled, unreachable or failing).
            ChatSessionsError: anything a resend cannot help (our bug), by error code.
        """
        failure: ChatSessionsError = ConflictError("too many concurrent writes; retry")
        for attempt in self.attempts():
            try:
                return getattr(self.client, operation)(**request)
            except ClientError as exc:
                failure = _retryable(exc)
            except BotoCoreError as exc:
                error = translate(exc)
                if not isinstance(error, UnavailableError):  # not a connection or timeout
                    raise error from exc
                failure = error
            self.backoff(attempt, throttled=not isinstance(failure, ConflictError))
        raise failure

    def transact(self, actions: list[Item]) -> None:
        """One TransactWriteItems under a token of its own: every resend of it is the same
        request, so one that was applied with its answer lost is not applied again."""
        self.call("transact_write_items", TransactItems=actions, ClientRequestToken=new_token())

    def get(self, key: Item, projection: str | None = None) -> Item | None:
        """One row by key (consistent read), or ``None``."""
        request: dict[str, Any] = {"TableName": self.name, "Key": key, "ConsistentRead": True}
        if projection is not None:
            request["ProjectionExpression"] = projection
        item: Item | None = self.call("get_item", **request).get("Item")
        return item

    def pages(self, request: dict[str, Any]) -> Iterator[dict[str, Any]]:
        """Each page of a Query, following ``LastEvaluatedKey``. ``request`` is advanced in
        place, so a caller may change its ``Limit`` between pages."""
        request.setdefault("TableName", self.name)
        while True:
            page: dict[str, Any] = self.call("query", **request)
            yield page
            if "LastEvaluatedKey" not in page:
                return
            request["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def together(self, reads: list[Callable[[], T]]) -> list[T]:
        """Independent reads in one round trip: each in a thread of its own (boto3's clients
        are thread-safe), their results in order. One read runs in the caller's thread."""
        if len(reads) <= 1:
            return [read() for read in reads]
        self._client = self.client  # made once, here: boto3 must not make one in two threads
        self.overlapped += len(reads) - 1
        return list(_pool().map(lambda read: read(), reads))

    def batch_get(self, row_keys: list[Item]) -> list[Item]:
        """The rows that exist among ``row_keys`` (consistent reads, 100 keys per call)."""
        found: list[Item] = []
        for start in range(0, len(row_keys), BATCH_GET_KEYS):
            batch = row_keys[start : start + BATCH_GET_KEYS]
            request: dict[str, Any] = {self.name: {"Keys": batch, "ConsistentRead": True}}

            def get(request: dict[str, Any]) -> dict[str, Any]:
                response = self.call("batch_get_item", RequestItems=request)
                found.extend(response.get("Responses", {}).get(self.name, []))
                return dict(response.get("UnprocessedKeys") or {})

            self._until_processed(get, request)
        return found

    def delete_keys(self, row_keys: Iterable[Item]) -> int:
        """Delete rows by key, 25 per BatchWriteItem (idempotent); how many keys were given."""
        deleted = 0
        batch: list[Item] = []
        for row_key in row_keys:
            batch.append(row_key)
            if len(batch) == BATCH_WRITE_KEYS:
                deleted += self._delete_batch(batch)
                batch = []
        return deleted + self._delete_batch(batch)

    def _delete_batch(self, row_keys: list[Item]) -> int:
        if row_keys:
            request = {self.name: [{"DeleteRequest": {"Key": key}} for key in row_keys]}
            self._until_processed(self._write, request)
        return len(row_keys)

    def _write(self, request: dict[str, Any]) -> dict[str, Any]:
        response = self.call("batch_write_item", RequestItems=request)
        return dict(response.get("UnprocessedItems") or {})

    def _until_processed(
        self, send: Callable[[dict[str, Any]], dict[str, Any]], request: dict[str, Any]
    ) -> None:
        """Send a batch request, then what DynamoDB left unprocessed (it does so when throttling),
        until nothing is left or the budget is spent (``ThrottledError``)."""
        for attempt in self.attempts():
            request = send(request)
            if not request:
                return
            self.backoff(attempt, throttled=True)
        raise ThrottledError("DynamoDB is throttling requests; retry later")


def new_token() -> str:
    """A client token: names one write across all its resends."""
    return uuid.uuid4().hex


def _retryable(exc: ClientError) -> ChatSessionsError:
    """The error to raise if ``exc`` stays until the budget is spent; raises at once for
    definite answers (a failed condition) and for anything a resend cannot help."""
    code = error_code(exc)
    if code == "ConditionalCheckFailedException":
        raise ConditionFailed(cast("Item | None", exc.response.get("Item"))) from None
    if code in _CONFLICT_CODES:
        return ConflictError("too many concurrent writes to this session; retry")
    if code != "TransactionCanceledException":
        error = translate(exc)
        if isinstance(error, ThrottledError | UnavailableError):
            return error
        raise error from exc
    reasons = [dict(reason) for reason in exc.response.get("CancellationReasons", [])]
    codes = {reason.get("Code") for reason in reasons} - {"None", None}
    if "ConditionalCheckFailed" in codes:
        raise Cancelled(reasons) from None
    if codes and codes <= _CONFLICT_REASONS:
        return ConflictError("too many concurrent writes to this session; retry")
    if codes and codes <= _CONFLICT_REASONS | _THROTTLE_REASONS:
        return ThrottledError("DynamoDB is throttling requests; retry later")
    raise translate(exc) from exc
