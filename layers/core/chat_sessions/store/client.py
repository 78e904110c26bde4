"""The boto3 client (created lazily, retrying throttles) and the translation of its errors."""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING

from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, ConnectionError, HTTPClientError

from chat_sessions.errors import ChatSessionsError, ThrottledError, UnavailableError

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

# botocore's standard mode retries these (and 5xx) with exponential backoff before we see them.
RETRY_CONFIG = Config(
    # botocore resends throttled, 5xx and timed-out calls quickly, with the same parameters;
    # the store's door (store/table.py) then resends within its own time budget.
    retries={"mode": "standard", "total_max_attempts": 3},
    connect_timeout=2,
    # DynamoDB answers in milliseconds; a read that waits longer is an answer lost.
    read_timeout=4,
)
THROTTLING_CODES = frozenset(
    {"ProvisionedThroughputExceededException", "ThrottlingException", "RequestLimitExceeded"}
)
UNAVAILABLE_CODES = frozenset(
    {"InternalServerError", "ServiceUnavailable", "ServiceUnavailableException"}
)


def new_client(endpoint_url: str | None = None, region: str | None = None) -> DynamoDBClient:
    """A DynamoDB client with the retry policy; imports boto3 only when first needed."""
    import boto3

    return boto3.client(
        "dynamodb", endpoint_url=endpoint_url, region_name=region, config=RETRY_CONFIG
    )


@lru_cache(maxsize=1)
def default_client() -> DynamoDBClient:
    """The process-wide client from settings; tests call ``default_client.cache_clear()``."""
    from chat_sessions.config import get_settings

    settings = get_settings()
    return new_client(settings.endpoint_url, settings.region)


def error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def translate(exc: Exception) -> Exception:
    """The domain error for a botocore failure, decided by error code only."""
    if isinstance(exc, ClientError):
        code = error_code(exc)
        if code in THROTTLING_CODES:
            return ThrottledError("DynamoDB is throttling requests; retry later")
        if code in UNAVAILABLE_CODES:
            return UnavailableError("DynamoDB is unavailable; retry later")
        return ChatSessionsError(f"DynamoDB rejected the request ({code})")
    if isinstance(exc, ConnectionError | HTTPClientError):
        return UnavailableError("DynamoDB could not be reached; retry later")
    if isinstance(exc, BotoCoreError):
        return ChatSessionsError(f"DynamoDB client failure ({type(exc).__name__})")
    return exc
