"""Counts what a block of code costs in DynamoDB: round trips, and capacity units as DynamoDB
Local reports them and as AWS bills them.

DynamoDB Local under-reports writes: a transaction shows the per-item distinct values (25 puts of
600 B show 2 WCU where AWS bills 50), and index writes are not shown at all. So writes are also
billed here by AWS's published rules. Every written item is sized before and after (with a separate,
unmetered client): 1 WCU per started KB of the larger image, doubled inside a transaction. Index
entries cost 1 WCU per started KB per put or delete; a change of the index sort key is a delete plus
a put.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from chat_sessions import ChatStore

INDEX_HASH, INDEX_RANGE = "user_id", "updated_at"  # sessions_by_activity (template.yaml)
_WRITES = {"PutItem", "UpdateItem", "DeleteItem", "TransactWriteItems", "BatchWriteItem"}


def attribute_size(value: dict[str, Any]) -> int:
    """Bytes of one attribute value by DynamoDB's item-size rules."""
    (kind, inner), *_ = value.items()
    if kind == "S":
        return len(inner.encode())
    if kind == "B":
        return len(inner)
    if kind == "N":
        digits = inner.lstrip("-").replace(".", "").lstrip("0") or "0"
        return math.ceil(len(digits) / 2) + 1
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "M":
        return 3 + sum(len(k.encode()) + attribute_size(v) + 1 for k, v in inner.items())
    if kind == "L":
        return 3 + sum(attribute_size(v) + 1 for v in inner)
    return sum(len(str(x)) for x in inner)  # sets: rough


def item_size(item: dict[str, Any] | None) -> int:
    if not item:
        return 0
    return sum(len(name.encode()) + attribute_size(value) for name, value in item.items())


def kb(size: int) -> int:
    return math.ceil(size / 1024) if size else 0


@dataclass
class Cost:
    round_trips: int = 0
    operations: list[str] = field(default_factory=list)
    reported_read: float = 0.0
    reported_write: float = 0.0
    billed_write: int = 0
    billed_index_write: int = 0

    @property
    def billed_total_write(self) -> int:
        return self.billed_write + self.billed_index_write


class Meter:
    """Attach to a client; ``with meter.measure() as cost:`` counts the calls made inside."""

    def __init__(self, client: Any, sizing_client: Any, table_name: str) -> None:
        self._sizing = sizing_client
        self._table = table_name
        self._cost: Cost | None = None
        self._calls = threading.local()  # calls sent together (``Table.together``) run in threads
        self._lock = threading.Lock()
        events = client.meta.events
        events.register("before-parameter-build.dynamodb", self._prepare)
        events.register("before-send.dynamodb", self._count_round_trip)
        events.register("after-call.dynamodb", self._record)

    @contextmanager
    def measure(self) -> Iterator[Cost]:
        self._cost = Cost()
        try:
            yield self._cost
        finally:
            self._cost = None

    # ------------------------------------------------------------------------------------ hooks

    def _prepare(self, params: dict[str, Any], model: Any, **_: Any) -> None:
        """Ask for consumed capacity, and size every item the write is about to change."""
        if "ReturnConsumedCapacity" in model.input_shape.members:
            params["ReturnConsumedCapacity"] = "TOTAL"
        self._calls.before = []
        if self._cost is None or model.name not in _WRITES:
            return
        for key, transactional in self._written_keys(model.name, params):
            self._calls.before.append((key, self._get(key), transactional))

    def _count_round_trip(self, **_: Any) -> None:
        if self._cost is not None:
            with self._lock:
                self._cost.round_trips += 1

    def _record(self, model: Any, parsed: dict[str, Any], **_: Any) -> None:
        cost = self._cost
        if cost is None:
            return
        with self._lock:
            self._add(cost, model, parsed)

    def _add(self, cost: Cost, model: Any, parsed: dict[str, Any]) -> None:
        cost.operations.append(model.name)
        consumed = parsed.get("ConsumedCapacity") or []
        for entry in consumed if isinstance(consumed, list) else [consumed]:
            units = float(entry.get("CapacityUnits", 0))
            if model.name in _WRITES:
                cost.reported_write += units
            else:
                cost.reported_read += units
        for key, before, transactional in getattr(self._calls, "before", []):
            after = self._get(key)
            units = kb(max(item_size(before), item_size(after)))
            cost.billed_write += units * (2 if transactional else 1)
            cost.billed_index_write += _index_writes(before, after)
        self._calls.before = []

    # ---------------------------------------------------------------------------------- helpers

    def _written_keys(
        self, operation: str, params: dict[str, Any]
    ) -> Iterator[tuple[dict[str, Any], bool]]:
        """The key of every item a write request changes, and whether it is transactional."""
        if operation == "TransactWriteItems":
            for action in params["TransactItems"]:
                ((kind, body),) = action.items()
                if kind == "ConditionCheck":
                    continue
                yield _key_of(body), True
        elif operation == "BatchWriteItem":
            for request in params["RequestItems"][self._table]:
                ((_, body),) = request.items()
                yield _key_of(body), False
        else:
            yield _key_of(params), False

    def _get(self, key: dict[str, Any]) -> dict[str, Any] | None:
        response = self._sizing.get_item(TableName=self._table, Key=key, ConsistentRead=True)
        item: dict[str, Any] | None = response.get("Item")
        return item


def _key_of(body: dict[str, Any]) -> dict[str, Any]:
    if "Key" in body:
        return dict(body["Key"])
    return {"pk": body["Item"]["pk"], "sk": body["Item"]["sk"]}


def _index_writes(before: dict[str, Any] | None, after: dict[str, Any] | None) -> int:
    """WCU the sessions_by_activity index bills for one item change (projection ALL)."""
    in_before = before is not None and INDEX_HASH in before and INDEX_RANGE in before
    in_after = after is not None and INDEX_HASH in after and INDEX_RANGE in after
    if before is not None and after is not None and in_before and in_after:
        if before[INDEX_RANGE] != after[INDEX_RANGE] or before[INDEX_HASH] != after[INDEX_HASH]:
            return kb(item_size(before)) + kb(item_size(after))  # delete + put
        return kb(max(item_size(before), item_size(after))) if before != after else 0
    if in_after:
        return kb(item_size(after))
    if in_before:
        return kb(item_size(before))
    return 0


def metered_store(server: Any, table: str) -> tuple[Meter, ChatStore]:
    """A new table on ``server`` (DynamoDB Local), and a ``ChatStore`` on it whose calls the
    returned ``Meter`` counts."""
    from chat_sessions import ChatStore
    from chat_sessions_local.tables import create_table

    client = server.client()
    create_table(client, table, stream=False)
    return Meter(client, server.client(), table), ChatStore(
        table, client=client, session_ttl_seconds=7 * 86_400
    )
