"""Message rows and their chunk rows: how an encoded item is laid out in the table, and read back.

A message is one ``MSG#<seq>`` row (``BRMSG#<branch>#<seq>`` on a branch other than ``main``); a
large one keeps its compressed payload in ``CHUNK#<seq>#<i>`` rows (``BRCHUNK#…``) next to it (see
``codec``). Rows that cannot be decoded are skipped with a warning that names
the row, never its content.
"""

from __future__ import annotations

import logging
from typing import Any

from chat_sessions import keys
from chat_sessions.clock import from_iso
from chat_sessions.codec import CorruptItemError, EncodedItem, chunk_count, decode_item
from chat_sessions.models import StoredMessage, Usage

from .context import StoreContext
from .wire import Item, n, number, s

logger = logging.getLogger(__name__)


def chunk_key(pk: str, seq: int, index: int, branch: str = keys.MAIN_BRANCH) -> Item:
    return {"pk": s(pk), "sk": s(keys.chunk_sk(seq, index, branch))}


def message_key(pk: str, seq: int, branch: str = keys.MAIN_BRANCH) -> Item:
    return {"pk": s(pk), "sk": s(keys.message_sk(seq, branch))}


def message_rows(
    pk: str,
    seq: int,
    entry: EncodedItem,
    created_at: str,
    branch: str = keys.MAIN_BRANCH,
    usage: tuple[int, int] | None = None,
) -> list[Item]:
    """The message row of ``entry`` at ``seq`` in ``branch``'s own rows, then its chunk rows.
    ``usage``: the (input, output) tokens of the chat turn this row opens."""
    message: Item = {
        **message_key(pk, seq, branch),
        "created_at": s(created_at),
        **entry.attributes,
        "starts_turn": {"BOOL": entry.starts_turn},
    }
    if entry.privileged:
        message["vouched"] = {"BOOL": True}
    if usage is not None:
        message.update(turn_input_tokens=n(usage[0]), turn_output_tokens=n(usage[1]))
    chunks = [
        {**chunk_key(pk, seq, i, branch), "data": {"B": data}}
        for i, data in enumerate(entry.chunks)
    ]
    return [message, *chunks]


def between(
    pk: str, first_seq: int, last_seq: int, branch: str = keys.MAIN_BRANCH
) -> dict[str, Any]:
    """A consistent, ascending Query of ``branch``'s own message rows with seqs in the range."""
    return {
        "KeyConditionExpression": "pk = :pk AND sk BETWEEN :low AND :high",
        "ExpressionAttributeValues": {
            ":pk": s(pk),
            ":low": s(keys.message_sk(first_seq, branch)),
            ":high": s(keys.message_sk(last_seq, branch)),
        },
        "ConsistentRead": True,
    }


def parts_of(row: Item) -> int:
    """How many chunk rows a message row has (0 when unreadable: nothing to fetch)."""
    try:
        return chunk_count(row)
    except CorruptItemError:
        return 0


def decode(ctx: StoreContext, pk: str, rows: list[Item]) -> list[StoredMessage]:
    """Stored messages for ``rows`` (same order), fetching their chunks in one batch."""
    wanted = [
        chunk_key(pk, keys.seq_of(sk), i, keys.branch_of(sk))
        for row in rows
        for i in range(parts_of(row))
        if (sk := row["sk"]["S"])
    ]
    chunks = {item["sk"]["S"]: bytes(item["data"]["B"]) for item in ctx.table.batch_get(wanted)}
    messages: list[StoredMessage] = []
    for row in rows:
        sort_key = row["sk"]["S"]
        seq, branch = keys.seq_of(sort_key), keys.branch_of(sort_key)
        try:
            parts = chunk_count(row)
            payload = [
                chunks[sk] for i in range(parts) if (sk := keys.chunk_sk(seq, i, branch)) in chunks
            ]
            item = decode_item(row, payload)
            created_at = from_iso(row["created_at"]["S"])
        except (CorruptItemError, KeyError, ValueError) as exc:
            logger.warning(
                "skipping unreadable message row",
                extra={"sk": sort_key, "reason": str(exc) or type(exc).__name__},
            )
            continue
        vouched = row.get("vouched") == {"BOOL": True}
        usage = None
        if "turn_input_tokens" in row:
            spent = number(row, "turn_input_tokens"), number(row, "turn_output_tokens")
            usage = Usage(input_tokens=spent[0], output_tokens=spent[1], total_tokens=sum(spent))
        messages.append(
            StoredMessage(seq=seq, item=item, created_at=created_at, vouched=vouched, usage=usage)
        )
    return messages
