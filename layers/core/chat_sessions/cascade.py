"""The stream consumer that physically removes what sessions leave behind (docs/lifecycle.md).

The table's stream reaches it through filter criteria (template.yaml, ``CascadeFunction``) that
pass two kinds of record only:

- ``REMOVE`` of a session header: a user's delete, or DynamoDB TTL's (``userIdentity`` of type
  ``Service``, ``dynamodb.amazonaws.com``). The old image's ``last_seq`` (``reserved_seq`` past
  an unfinished staged batch) bounds the purge, so a session re-created with the same id keeps
  its new messages.
- ``INSERT`` of a trim marker (written by a clear, a retention trim, or when an expired session is
  replaced): purge below the header's ``first_seq``, then delete the marker.
- ``INSERT`` of a delete-all request: delete the user's session headers, each of which cascades
  in turn through the first kind of record.

Every purge is idempotent, so a replayed batch deletes nothing extra. A record that fails is
reported alone (Powertools batch utility, ``ReportBatchItemFailures``): the records before it are
checkpointed, and after the configured retries it goes to the dead-letter queue instead of
blocking the shard.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import (
    BatchProcessor,
    EventType,
    process_partial_response,
)
from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import DynamoDBRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from . import keys
from .observability import logger, metrics, tracer
from .store import ChatStore

TTL_PRINCIPAL = "dynamodb.amazonaws.com"
DELETION_BUDGET_SECONDS = 240
"""A delete-all stops after this long (the function's timeout is 300 s) and resumes on retry."""

processor = BatchProcessor(event_type=EventType.DynamoDBStreams)


class UnexpectedRecordError(ValueError):
    """A record the filter criteria should not have passed, or one without the image we need."""


def cascade(store: ChatStore, record: DynamoDBRecord) -> int:
    """Apply one stream record; how many rows it deleted."""
    stream = record.dynamodb
    if stream is None:
        raise UnexpectedRecordError("the record has no dynamodb section")
    row_keys = stream.raw_event.get("Keys", {})
    pk, sk = row_keys.get("pk", {}).get("S"), row_keys.get("sk", {}).get("S")
    event = record.raw_event.get("eventName")
    if not isinstance(pk, str) or not isinstance(sk, str):
        raise UnexpectedRecordError("the record's keys are not this table's")
    if event == "REMOVE" and sk == keys.SESSION_SK:
        old = stream.raw_event.get("OldImage", {})
        if "last_seq" not in old:
            raise UnexpectedRecordError("a removed header without its old image (needs OLD_IMAGE)")
        # Rows of a staged batch that never committed lie above last_seq, up to reserved_seq
        # (staging_last on a reservation taken before reserved_seq existed).
        bounds = ("last_seq", "staging_last", "reserved_seq")
        reached = max(int(old.get(name, {"N": "0"})["N"]) for name in bounds)
        incarnation = old.get("incarnation", {}).get("S")
        deleted = store.purge_session(pk, up_to_seq=reached, incarnation=incarnation)
        expired = record.user_identity.get("principalId") == TTL_PRINCIPAL
        metrics.add_metric(
            name="SessionsExpired" if expired else "SessionsDeleted", unit=MetricUnit.Count, value=1
        )
    elif event == "INSERT" and sk.startswith(keys.TRIM_PREFIX):
        deleted = store.purge_trimmed(pk, sk)
        store.delete_row(pk, sk)
    elif event == "INSERT" and sk.startswith(keys.DELETION_PREFIX):
        deleted = store.run_deletion(pk, sk, budget_seconds=DELETION_BUDGET_SECONDS)
    else:
        # The filter criteria pass nothing else; skipping (not failing) keeps the shard moving.
        logger.warning("ignored a stream record", extra={"event": event, "kind": sk.split("#")[0]})
        return 0
    metrics.add_metric(name="RowsPurged", unit=MetricUnit.Count, value=deleted)
    return deleted


def make_handler(store: ChatStore | None = None) -> Any:
    """The Lambda entry point, over ``store`` (the process-wide one from settings by default)."""

    def record_handler(record: DynamoDBRecord) -> int:
        from .service import get_store

        return cascade(store or get_store(), record)

    @logger.inject_lambda_context
    @tracer.capture_lambda_handler(capture_response=False)
    @metrics.log_metrics
    def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
        return dict(
            process_partial_response(
                event=event, record_handler=record_handler, processor=processor, context=context
            )
        )

    return handler


handler = make_handler()
