"""A fault injector between a boto3 DynamoDB client and the server, at botocore's ``before-send``.

Every HTTP attempt (botocore's retries included) of an operation is one *send*. For each send the
injector either lets it through or answers it itself with a DynamoDB wire response, so botocore's
retry logic and the store's error handling run exactly as against AWS:

- ``throttle``: 400 ProvisionedThroughputExceededException or ThrottlingException; not applied.
- ``server_error``: 500 InternalServerError; not applied.
- ``conflict``: TransactWriteItems: 400 TransactionCanceledException, ``TransactionConflict`` on
  one action; UpdateItem/PutItem/DeleteItem: 400 TransactionConflictException; not applied.
- ``lost``: the request goes to the real server (the write happens), its answer is replaced by a
  500 InternalServerError; ``lost_timeout``: the same, but botocore sees a ``ReadTimeoutError``.

Faults are drawn at random (seeded, by rate per operation and kind, at most ``max_consecutive``
in a row for one request, i.e. one ``amz-sdk-invocation-id``) and/or scripted per send::

    injector = FaultInjector(client, seed=7, rates=everywhere(0.3))
    injector.script("TransactWriteItems", "lost", "throttle")  # its next two sends
    injector.script(WRITE, "lost", "conflict")  # the next two sends of any single or transact write
"""

from __future__ import annotations

import json
import random
import threading
from collections import Counter
from collections.abc import Iterator, Mapping
from typing import Any, Literal, get_args

from botocore.awsrequest import AWSPreparedRequest, AWSResponse, HTTPHeaders
from botocore.exceptions import ReadTimeoutError

Kind = Literal["throttle", "server_error", "conflict", "lost", "lost_timeout"]
KINDS: tuple[Kind, ...] = get_args(Kind)
CONFLICTABLE = frozenset({"TransactWriteItems", "UpdateItem", "PutItem", "DeleteItem"})
WRITE = "write"
"""For ``script``: the sends of any operation in CONFLICTABLE, whichever the store uses."""
_PREFIX = "com.amazonaws.dynamodb.v20120810#"
_THROTTLE_CODES = ("ProvisionedThroughputExceededException", "ThrottlingException")
Rates = Mapping[str, Mapping[Kind, float]]
"""Per operation (``"*"``: any other), the chance of each kind of fault on one send."""


def everywhere(rate: float, kinds: tuple[Kind, ...] = KINDS) -> dict[str, dict[Kind, float]]:
    """Rates for every operation: ``rate`` in all, shared evenly by ``kinds``."""
    return {"*": dict.fromkeys(kinds, rate / len(kinds))}


class _Body:
    def __init__(self, payload: bytes) -> None:
        self._payload = payload

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self._payload


def wire_response(status: int, body: dict[str, Any]) -> AWSResponse:
    payload = json.dumps(body).encode()
    headers = HTTPHeaders()
    headers["Content-Type"] = "application/x-amz-json-1.0"
    headers["Content-Length"] = str(len(payload))
    return AWSResponse("https://dynamodb.test", status, headers, _Body(payload))


def _error(status: int, code: str, message: str, **extra: Any) -> AWSResponse:
    return wire_response(status, {"__type": _PREFIX + code, "message": message, **extra})


def _header(request: AWSPreparedRequest, name: str) -> str:
    value: str | bytes = request.headers.get(name, "")
    return value.decode() if isinstance(value, bytes) else value


class FaultInjector:
    """Attached to ``client`` on creation; ``detach()`` lets everything through again.

    Counters: ``sends[op]`` every send seen, ``injected[(op, kind)]`` faults answered,
    ``passed[op]`` sends let through untouched; ``log``: every send in order, ``(op, kind)``.
    """

    def __init__(
        self, client: Any, *, seed: int = 0, rates: Rates | None = None, max_consecutive: int = 3
    ) -> None:
        self._client = client
        self._rng = random.Random(seed)
        self._rates: Rates = rates or {}
        self._max_consecutive = max_consecutive
        self._scripted: dict[tuple[str, int], Kind | None] = {}
        self._streaks: dict[str, int] = {}
        self._writes = 0
        self._lock = threading.Lock()
        self.sends: Counter[str] = Counter()
        self.injected: Counter[tuple[str, Kind]] = Counter()
        self.passed: Counter[str] = Counter()
        self.log: list[tuple[str, Kind | None]] = []
        client.meta.events.register("before-send.dynamodb", self._before_send)

    def detach(self) -> None:
        self._client.meta.events.unregister("before-send.dynamodb", self._before_send)

    def script(self, operation: str, *faults: Kind | None, at: int | None = None) -> None:
        """Exact faults for consecutive sends of ``operation``, from its ``at``-th send (1-based,
        counted since the injector was made; default: the next). ``None`` lets one through.
        Whether a send is botocore's retry or the caller's new request does not matter."""
        if "conflict" in faults and operation not in CONFLICTABLE | {WRITE}:
            raise ValueError(f"{operation} cannot get a conflict")
        with self._lock:
            sent = self._writes if operation == WRITE else self.sends[operation]
            start = sent + 1 if at is None else at
            for offset, fault in enumerate(faults):
                self._scripted[(operation, start + offset)] = fault

    def unfired(self) -> list[tuple[str, int, Kind | None]]:
        """Scripted sends not reached yet."""
        with self._lock:
            return [(op, n, kind) for (op, n), kind in sorted(self._scripted.items())]

    def total(self, kind: Kind) -> int:
        return sum(count for (_, k), count in self.injected.items() if k == kind)

    def _draw(self, operation: str, invocation: str) -> Kind | None:
        rates = self._rates.get(operation, self._rates.get("*", {}))
        roll = self._rng.random()
        if self._streaks.get(invocation, 0) >= self._max_consecutive:
            return None
        for kind, rate in rates.items():
            if kind == "conflict" and operation not in CONFLICTABLE:
                continue
            if roll < rate:
                return kind
            roll -= rate
        return None

    def _before_send(self, request: AWSPreparedRequest, **_: Any) -> AWSResponse | None:
        operation = _header(request, "X-Amz-Target").rpartition(".")[2]
        invocation = _header(request, "amz-sdk-invocation-id")
        with self._lock:
            self.sends[operation] += 1
            keys = [(operation, self.sends[operation])]
            if operation in CONFLICTABLE:
                self._writes += 1
                keys.append((WRITE, self._writes))
            key = next((key for key in keys if key in self._scripted), None)
            if key is not None:
                kind = self._scripted.pop(key)
            else:
                kind = self._draw(operation, invocation)
                if kind is None:
                    self._streaks.pop(invocation, None)
                else:
                    self._streaks[invocation] = self._streaks.get(invocation, 0) + 1
            self.log.append((operation, kind))
            if kind is None:
                self.passed[operation] += 1
            else:
                self.injected[(operation, kind)] += 1
            throttled = self._rng.choice(_THROTTLE_CODES) if kind == "throttle" else ""
        if kind is None:
            return None
        if kind == "throttle":
            return _error(400, throttled, "Throughput exceeds the current capacity.")
        if kind == "server_error":
            return _error(500, "InternalServerError", "Internal server error")
        if kind == "conflict":
            return self._conflict(operation, request)
        real = self._client._endpoint.http_session.send(request)
        real.content  # noqa: B018 - read to the end: the connection goes back to the pool
        if kind == "lost_timeout":
            raise ReadTimeoutError(endpoint_url=request.url)
        return _error(500, "InternalServerError", "Internal server error")

    def _conflict(self, operation: str, request: AWSPreparedRequest) -> AWSResponse:
        if operation != "TransactWriteItems":
            return _error(
                400, "TransactionConflictException", "Transaction is ongoing for the item"
            )
        body = request.body
        assert isinstance(body, bytes | bytearray | str), "a JSON-protocol body is in memory"
        actions = len(json.loads(body)["TransactItems"])
        with self._lock:
            loser = self._rng.randrange(actions)
        reasons = [
            {"Code": "TransactionConflict", "Message": "Transaction is ongoing for the item"}
            if index == loser
            else {"Code": "None"}
            for index in range(actions)
        ]
        codes = ", ".join(reason["Code"] for reason in reasons)
        return _error(
            400,
            "TransactionCanceledException",
            f"Transaction cancelled, please refer cancellation reasons for details [{codes}]",
            CancellationReasons=reasons,
        )
