"""The table's shape, so the library can create its table anywhere (no template.yaml, no YAML).

template.yaml's ``ChatTable`` is the deployed form of the same shape; a test checks the two agree.
"""

from __future__ import annotations

from typing import Any

from chat_sessions.keys import ACTIVITY_INDEX

TABLE_SHAPE: dict[str, Any] = {
    "BillingMode": "PAY_PER_REQUEST",
    "AttributeDefinitions": [
        {"AttributeName": "pk", "AttributeType": "S"},
        {"AttributeName": "sk", "AttributeType": "S"},
        {"AttributeName": "user_id", "AttributeType": "S"},
        {"AttributeName": "updated_at", "AttributeType": "S"},
    ],
    "KeySchema": [
        {"AttributeName": "pk", "KeyType": "HASH"},
        {"AttributeName": "sk", "KeyType": "RANGE"},
    ],
    "GlobalSecondaryIndexes": [
        {
            "IndexName": ACTIVITY_INDEX,
            "KeySchema": [
                {"AttributeName": "user_id", "KeyType": "HASH"},
                {"AttributeName": "updated_at", "KeyType": "RANGE"},
            ],
            "Projection": {"ProjectionType": "ALL"},
        }
    ],
}
TTL_ATTRIBUTE = "expires_at"
STREAM_VIEW_TYPE = "OLD_IMAGE"
"""The cascade reads a removed header's ``last_seq`` from the old image."""


def create_table(client: Any, table_name: str, *, stream: bool = True) -> None:
    """Create ``table_name`` with the keys, index, stream and TTL the store needs; wait until
    it is active. ``stream=False`` leaves the stream out (nothing then purges removed
    messages: fine for tests and scripts, not for a deployment, which uses template.yaml)."""
    specification = {"StreamEnabled": True, "StreamViewType": STREAM_VIEW_TYPE}
    client.create_table(
        TableName=table_name,
        StreamSpecification=specification if stream else {"StreamEnabled": False},
        **TABLE_SHAPE,
    )
    client.get_waiter("table_exists").wait(
        TableName=table_name, WaiterConfig={"Delay": 1, "MaxAttempts": 30}
    )
    client.update_time_to_live(
        TableName=table_name,
        TimeToLiveSpecification={"AttributeName": TTL_ATTRIBUTE, "Enabled": True},
    )
