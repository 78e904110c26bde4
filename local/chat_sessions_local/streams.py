"""What Lambda's stream trigger and DynamoDB TTL do in AWS, done locally with the same handler.

- ``StreamReader`` reads a table's stream (DynamoDB Local and moto both implement Streams) and
  returns the records in the shape Lambda delivers them.
- ``passes`` applies ``CascadeFunction``'s filter criteria, read from template.yaml.
- ``LocalCascade`` feeds the passing records to the cascade handler resolved from template.yaml,
  retries the ones it reports failed, and sweeps expired session headers the way TTL deletes
  them (DynamoDB Local's own TTL deletes expired items late and irregularly, with malformed
  stream records, which ``as_aws_ttl_record`` reshapes). No cascade logic lives here.
"""

from __future__ import annotations

import json
import logging
import math
import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import TYPE_CHECKING, Any

import boto3

from chat_sessions import keys
from chat_sessions.store.client import RETRY_CONFIG

from . import sam

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

logger = logging.getLogger(__name__)

CASCADE = "cascade"
TABLE_KEYS = ("pk", "sk")
TTL_IDENTITY = {"type": "Service", "principalId": "dynamodb.amazonaws.com"}
"""The ``userIdentity`` of a record of an item DynamoDB's TTL deleted."""
MAX_ATTEMPTS = 10
"""Like the template's MaximumRetryAttempts: then the record is dropped (and logged)."""


def stream_client(client: DynamoDBClient) -> Any:
    """A DynamoDB Streams client for the same endpoint as ``client``.

    For the AWS-style endpoint (moto), the regional streams endpoint is named: botocore would
    otherwise use the account-based one, which moto does not serve. DynamoDB Local accepts any
    credentials, so none need to be configured for it.
    """
    endpoint = client.meta.endpoint_url
    options: dict[str, Any] = {}
    if endpoint.startswith("https://dynamodb."):
        endpoint = endpoint.replace("https://dynamodb.", "https://streams.dynamodb.", 1)
    else:
        options = {"aws_access_key_id": "local", "aws_secret_access_key": "local"}
    return boto3.client(
        "dynamodbstreams",
        endpoint_url=endpoint,
        region_name=client.meta.region_name,
        config=RETRY_CONFIG,
        **options,
    )


class StreamReader:
    """Every record of a table's stream, from its start, in order per shard."""

    def __init__(self, client: DynamoDBClient, table_name: str) -> None:
        self._streams = stream_client(client)
        table = client.describe_table(TableName=table_name)["Table"]
        self.stream_arn: str = table["LatestStreamArn"]
        self._iterators: dict[str, str | None] = {}
        """Shard id -> where the next read starts (``None``: closed and read to its end)."""

    def read(self) -> list[dict[str, Any]]:
        """The records written since the last read, as Lambda delivers them."""
        records: list[dict[str, Any]] = []
        description = self._streams.describe_stream(StreamArn=self.stream_arn)
        for shard in description["StreamDescription"]["Shards"]:
            shard_id = shard["ShardId"]
            if shard_id not in self._iterators:
                self._iterators[shard_id] = self._streams.get_shard_iterator(
                    StreamArn=self.stream_arn, ShardId=shard_id, ShardIteratorType="TRIM_HORIZON"
                )["ShardIterator"]
            iterator = self._iterators[shard_id]
            while iterator is not None:
                response = self._streams.get_records(ShardIterator=iterator, Limit=1000)
                records += [self._as_lambda_record(r) for r in response["Records"]]
                iterator = response.get("NextShardIterator")
                if not response["Records"]:
                    break  # caught up with an open shard
            self._iterators[shard_id] = iterator
        return records

    def _as_lambda_record(self, record: dict[str, Any]) -> dict[str, Any]:
        lambda_record = dict(record, eventSourceARN=self.stream_arn)
        stream = dict(record["dynamodb"])
        created = stream.get("ApproximateCreationDateTime")
        if isinstance(created, datetime):  # boto3 parses it; Lambda sends epoch seconds
            stream["ApproximateCreationDateTime"] = math.floor(created.timestamp())
        lambda_record["dynamodb"] = stream
        return as_aws_ttl_record(lambda_record)


def as_aws_ttl_record(record: dict[str, Any]) -> dict[str, Any]:
    """DynamoDB Local's own TTL deletions, reshaped as AWS delivers them.

    DynamoDB Local (11.1.0) does delete expired items, but its stream record names the event
    ``UNKNOWN_TO_SDK_VERSION`` and puts index keys among ``Keys``. AWS sends ``REMOVE``, the table
    keys, and the DynamoDB service as ``userIdentity``. Other records pass unchanged.
    """
    if record.get("eventName") in ("INSERT", "MODIFY", "REMOVE"):
        return record
    stream = dict(record["dynamodb"])
    if "OldImage" not in stream:
        return record
    stream["Keys"] = {name: stream["Keys"][name] for name in TABLE_KEYS if name in stream["Keys"]}
    return dict(record, eventName="REMOVE", dynamodb=stream, userIdentity=TTL_IDENTITY)


def cascade_filters() -> list[dict[str, Any]]:
    """The filter patterns of the cascade's stream trigger in template.yaml."""
    (trigger,) = sam.functions()[CASCADE]["Properties"]["Events"].values()
    return [json.loads(f["Pattern"]) for f in trigger["Properties"]["FilterCriteria"]["Filters"]]


def passes(record: dict[str, Any], filters: list[dict[str, Any]] | None = None) -> bool:
    """Whether Lambda would deliver ``record`` through the filters (any one matching)."""
    return any(matches(pattern, record) for pattern in filters or cascade_filters())


def matches(pattern: Any, value: Any) -> bool:
    """Lambda event filtering for the rules the template uses: nested fields, lists of exact
    values, and ``{"prefix": ...}``. Any other rule is refused rather than guessed at."""
    if isinstance(pattern, dict):
        return isinstance(value, dict) and all(
            field in value and matches(rule, value[field]) for field, rule in pattern.items()
        )
    return any(_matches_rule(rule, value) for rule in pattern)


def _matches_rule(rule: Any, value: Any) -> bool:
    if isinstance(rule, dict):
        if set(rule) != {"prefix"}:
            raise ValueError(f"unsupported filter rule {rule}")
        return isinstance(value, str) and value.startswith(rule["prefix"])
    return bool(value == rule)


class LocalCascade:
    """Runs the cascade for a local table: stream records through the template's filters into
    the handler, and a sweep standing in for TTL.

    Args:
        client: The table's DynamoDB client.
        table_name: The table.
        handler: The cascade's Lambda handler; defaults to the one template.yaml resolves to.
        clock: Seconds since the epoch (the sweep's notion of "expired").
    """

    def __init__(
        self,
        client: DynamoDBClient,
        table_name: str,
        *,
        handler: sam.Handler | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._client = client
        self._table_name = table_name
        self._reader = StreamReader(client, table_name)
        self._handler = handler or sam.handler_of(CASCADE)
        self._clock = clock
        self._filters = cascade_filters()
        self._retrying: list[tuple[dict[str, Any], int]] = []
        self._swept: set[tuple[str, str]] = set()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def run_once(self) -> int:
        """Deliver what the stream has (and earlier failures, again); how many records passed."""
        fresh = [self._as_ttl_if_swept(r) for r in self._reader.read()]
        pending = self._retrying + [(r, 0) for r in fresh if passes(r, self._filters)]
        self._retrying = []
        for start in range(0, len(pending), 100):  # the template's BatchSize
            batch = pending[start : start + 100]
            event = {"Records": [record for record, _ in batch]}
            try:
                response = self._handler(event, sam.LambdaContext(CASCADE))
                failed = {f["itemIdentifier"] for f in response.get("batchItemFailures", [])}
            except Exception:  # every record failed (Powertools raises): all of them again
                logger.exception("cascade batch failed")
                failed = {record["dynamodb"]["SequenceNumber"] for record, _ in batch}
            for record, attempts in batch:
                if record["dynamodb"]["SequenceNumber"] not in failed:
                    continue
                if attempts + 1 < MAX_ATTEMPTS:
                    self._retrying.append((record, attempts + 1))
                else:
                    logger.error("cascade gave up on a record", extra={"record": record})
        return len(pending)

    def _as_ttl_if_swept(self, record: dict[str, Any]) -> dict[str, Any]:
        """A sweep's delete, with the identity DynamoDB TTL's deletes carry in AWS."""
        row_keys = record["dynamodb"].get("Keys", {})
        swept = (row_keys.get("pk", {}).get("S"), row_keys.get("sk", {}).get("S"))
        if record.get("eventName") != "REMOVE" or swept not in self._swept:
            return record
        self._swept.discard(swept)
        return dict(record, userIdentity=TTL_IDENTITY)

    def sweep(self) -> int:
        """Delete the session headers whose ``expires_at`` has passed, as TTL would; their
        REMOVE records then cascade. How many it deleted."""
        now = math.floor(self._clock())
        deleted = 0
        for header in self._expired_headers(now):
            try:
                self._client.delete_item(
                    TableName=self._table_name,
                    Key=header,
                    ConditionExpression="expires_at <= :now_s",  # not one revived meanwhile
                    ExpressionAttributeValues={":now_s": {"N": str(now)}},
                )
                self._swept.add((header["pk"]["S"], header["sk"]["S"]))
                deleted += 1
            except self._client.exceptions.ConditionalCheckFailedException:
                continue
        return deleted

    def _expired_headers(self, now: int) -> Iterator[dict[str, Any]]:
        request: dict[str, Any] = {
            "TableName": self._table_name,
            "FilterExpression": "sk = :session AND expires_at <= :now_s",
            "ExpressionAttributeValues": {
                ":session": {"S": keys.SESSION_SK},
                ":now_s": {"N": str(now)},
            },
            "ProjectionExpression": "pk, sk",
        }
        while True:
            response = self._client.scan(**request)
            yield from response.get("Items", [])
            if "LastEvaluatedKey" not in response:
                return
            request["ExclusiveStartKey"] = response["LastEvaluatedKey"]

    def start(self, *, poll_seconds: float = 1.0, sweep_seconds: float = 60.0) -> None:
        """Poll and sweep in a daemon thread until ``stop``."""

        def loop() -> None:
            next_sweep = 0.0
            while not self._stop.wait(poll_seconds):
                try:
                    if time.monotonic() >= next_sweep:
                        self.sweep()
                        next_sweep = time.monotonic() + sweep_seconds
                    self.run_once()
                except Exception:  # keep the dev server's cascade alive; say what went wrong
                    logger.exception("local cascade round failed")

        self._thread = threading.Thread(target=loop, name="local-cascade", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
