"""``template.yaml`` read as data (CloudFormation tags kept), and the tables tests and local runs
create: the library's shape, checked against the template's ``ChatTable`` so neither drifts."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from chat_sessions.store import schema

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


def create_table(client: DynamoDBClient, table_name: str, *, stream: bool = True) -> None:
    """The library's own table creation (``chat_sessions.store.schema``), which a test checks
    against ChatTable. ``stream=False`` leaves the stream out: tests that do not read it pass
    it, because every stream costs DynamoDB Local CPU for as long as it runs."""
    schema.create_table(client, table_name, stream=stream)
