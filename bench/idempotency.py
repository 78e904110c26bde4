"""What an Idempotency-Key costs: an append and a chat turn with a key, first and retried, beside
the same without a key. Run by ``make bench`` with the storage benchmark."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from agents import Agent

from bench.meter import Cost, metered_store
from chat_sessions import ChatStore
from chat_sessions.agent_config import OfflineModel
from chat_sessions.idempotency import IdempotentRequest
from chat_sessions.turns import run_turn
from chat_sessions_local.dynamodb_local import DynamoDBLocal

USER = "bench-user"
TEXT = "x" * 600


def idempotency_costs(
    server: DynamoDBLocal, table: str = "chat-bench-idempotency"
) -> list[tuple[str, Cost]]:
    meter, store = metered_store(server, table)
    agent = Agent(name="assistant", model=OfflineModel())
    pair = [{"role": "user", "content": TEXT}, {"role": "assistant", "content": TEXT}]
    append_record = IdempotentRequest("append-1", "hash").record(json.dumps({"appended": 2}), 201)
    turn_key = IdempotentRequest("turn-1", "hash")
    rows: list[tuple[str, Cost]] = []

    def measure(operation: str, action: Any) -> None:
        overlapped = store.table.overlapped
        with meter.measure() as cost:
            action()
        cost.round_trips -= store.table.overlapped - overlapped  # sent together: one trip
        rows.append((operation, cost))

    store.create_session(USER, "i-1", title="bench")
    measure("append one pair, no key", lambda: store.append_items(USER, "i-1", pair))
    measure(
        "append one pair with a key",
        lambda: store.append_items(USER, "i-1", pair, idempotency=append_record),
    )
    measure(
        "the same append retried (replayed)",
        lambda: store.append_items(USER, "i-1", pair, idempotency=append_record),
    )
    measure("chat turn, no key", lambda: asyncio.run(_turn(store, agent, None)))
    measure("chat turn with a key", lambda: asyncio.run(_turn(store, agent, turn_key)))
    measure("the same turn retried (replayed)", lambda: asyncio.run(_turn(store, agent, turn_key)))
    return rows


async def _turn(store: ChatStore, agent: Agent[Any], key: IdempotentRequest | None) -> None:
    await run_turn(store, agent, USER, "i-1", "What next?", _ignore, idempotency=key)


async def _ignore(name: str, data: dict[str, Any]) -> None:
    return None
