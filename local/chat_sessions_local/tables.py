"""Tables created from ``template.yaml``'s ``ChatTable``, so tests and local runs cannot drift from
what is deployed."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

TEMPLATE = Path(__file__).resolve().parents[2] / "template.yaml"


class _CloudFormationLoader(yaml.SafeLoader):
    """Reads CloudFormation short-form tags (``!Ref`` ...) as plain ``{"Tag": value}`` data."""


def _tag(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> dict[str, Any]:
    value: Any
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    elif isinstance(node, yaml.MappingNode):
        value = loader.construct_mapping(node, deep=True)
    else:
        raise yaml.constructor.ConstructorError(problem=f"unexpected {type(node).__name__}")
    return {suffix: value}


_CloudFormationLoader.add_multi_constructor("!", _tag)


def load_template(path: Path = TEMPLATE) -> dict[str, Any]:
    with path.open() as handle:
        return dict(yaml.load(handle, Loader=_CloudFormationLoader))  # noqa: S506 - safe subclass


def table_properties() -> dict[str, Any]:
    return dict(load_template()["Resources"]["ChatTable"]["Properties"])


def create_table(client: DynamoDBClient, table_name: str, *, stream: bool = True) -> None:
    """Create ``table_name`` with ChatTable's keys, indexes, stream and TTL; wait until active.

    ``stream=False`` leaves the stream out: tests that do not read it pass it, because every
    stream costs DynamoDB Local CPU for as long as it runs.
    """
    props = table_properties()
    client.create_table(
        TableName=table_name,
        BillingMode=props["BillingMode"],
        AttributeDefinitions=props["AttributeDefinitions"],
        KeySchema=props["KeySchema"],
        GlobalSecondaryIndexes=props.get("GlobalSecondaryIndexes", []),
        StreamSpecification=(
            {
                "StreamEnabled": True,
                "StreamViewType": props["StreamSpecification"]["StreamViewType"],
            }
            if stream
            else {"StreamEnabled": False}
        ),
    )
    client.get_waiter("table_exists").wait(
        TableName=table_name, WaiterConfig={"Delay": 1, "MaxAttempts": 30}
    )
    ttl = props["TimeToLiveSpecification"]
    client.update_time_to_live(
        TableName=table_name,
        TimeToLiveSpecification={"AttributeName": ttl["AttributeName"], "Enabled": ttl["Enabled"]},
    )
