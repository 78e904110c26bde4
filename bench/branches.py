"""What branches cost (docs/branches.md): a fork at 10 and at 1,000 messages, a fork further
back, writes to a branch beside the same on ``main``, the newest 20 of a branch 1, 10 and 100
forks deep, a regeneration and a compacting turn beside a plain one. Run by ``make bench`` with
the storage benchmark."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable
from functools import partial
from typing import Any

from agents import Agent

from bench.meter import Cost, Meter
from chat_sessions import ChatStore
from chat_sessions.agent_config import OfflineModel
from chat_sessions.compaction import summariser
from chat_sessions.turns import Rewrite, TurnSettings, run_turn
from chat_sessions_local.dynamodb_local import DynamoDBLocal
from chat_sessions_local.tables import create_table

USER = "bench-user"
TEXT = "x" * 600


def pair() -> list[dict[str, Any]]:
    return [{"role": "user", "content": TEXT}, {"role": "assistant", "content": TEXT}]


def _history(store: ChatStore, session: str, messages: int) -> None:
    store.create_session(USER, session, title="bench")
    for _ in range(messages // 98):
        store.append_items(USER, session, [m for _ in range(49) for m in pair()])
    for _ in range(messages % 98 // 2):
        store.append_items(USER, session, pair())


def _deep(store: ChatStore, session: str, depth: int) -> None:
    """Each level forks the newest message of the one before and adds a pair of its own."""
    _history(store, session, 2)
    for _ in range(depth):
        store.fork_branch(USER, session)
        store.append_items(USER, session, pair())


def branch_costs(
    server: DynamoDBLocal, table: str = "chat-bench-branches"
) -> list[tuple[str, Cost]]:
    client = server.client()
    create_table(client, table, stream=False)
    meter = Meter(client, server.client(), table)
    store = ChatStore(table, client=client, session_ttl_seconds=7 * 86_400)
    rows: list[tuple[str, Cost]] = []

    def measure(operation: str, action: Callable[[], object]) -> None:
        """Round trips are sequential: calls made together (``Table.together``) count once."""
        overlapped = store.table.overlapped
        with meter.measure() as cost:
            action()
        cost.round_trips -= store.table.overlapped - overlapped
        rows.append((operation, cost))

    for messages in (10, 1_000):
        _history(store, f"f-{messages}", messages)
        measure(
            f"fork at the newest message, history {messages:,}",
            partial(store.fork_branch, USER, f"f-{messages}"),
        )
    back = _seq_back(store, "f-1000", 20)
    measure(
        "fork 20 messages back (an edit), history 1,000",
        lambda: store.fork_branch(USER, "f-1000", source="main", at_seq=back),
    )
    active = store.get_session(USER, "f-10").active_branch
    measure(
        "append a pair to main", lambda: store.append_items(USER, "f-10", pair(), branch="main")
    )
    measure(
        "append a pair to a branch, named",
        lambda: store.append_items(USER, "f-10", pair(), branch=active),
    )
    measure(
        "append a pair naming no branch (a branch active)",
        lambda: store.append_items(USER, "f-10", pair()),
    )
    for depth in (1, 10, 100):
        _deep(store, f"d-{depth}", depth)
        measure(
            f"read the newest 20, {depth} fork{'s' if depth > 1 else ''} deep",
            partial(store.read_newest, USER, f"d-{depth}", 20),
        )
    measure("switch to main", lambda: store.activate_branch(USER, "d-10", "main"))
    measure("list branches (11)", lambda: store.list_branches(USER, "d-10", limit=20))
    _history(store, "t-1000", 1_000)
    agent = Agent(name="assistant", model=OfflineModel())
    measure("chat turn, history 1,000 (for reference)", partial(_turn, store, agent, "t-1000"))
    measure(
        "regenerate the last answer, history 1,000",
        partial(_turn, store, agent, "t-1000", rewrite=Rewrite(regenerate=True)),
    )
    compacting = TurnSettings(context_turns=10, context_token_budget=1_000, compaction=True)
    measure(
        "chat turn that compacts (budget 1,000 tokens), history 1,000",
        partial(_turn, store, agent, "t-1000", settings=compacting),
    )
    measure(
        "the next turn, using the summary",
        partial(_turn, store, agent, "t-1000", settings=compacting),
    )
    return rows


def branch_table(rows: list[tuple[str, Cost]]) -> str:
    """The table, its calls counted by kind (reads made together finish in any order)."""
    header = ["operation", "round trips", "calls", "read CU", "write CU billed (table + index)"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for name, cost in rows:
        kinds = Counter(cost.operations)
        calls = " + ".join(
            f"{kind} x{count}" if count > 1 else kind for kind, count in sorted(kinds.items())
        )
        writes = f"{cost.billed_write} + {cost.billed_index_write} index"
        lines.append(
            f"| {name} | {cost.round_trips} | {calls} | {cost.reported_read:g} | {writes} |"
        )
    return "\n".join(lines)


def _turn(
    store: ChatStore,
    agent: Agent[Any],
    session: str,
    *,
    rewrite: Rewrite | None = None,
    settings: TurnSettings | None = None,
) -> None:
    message = "" if rewrite is not None and rewrite.regenerate else "What next?"
    asyncio.run(
        run_turn(
            store,
            agent,
            USER,
            session,
            message,
            _ignore,
            settings,
            rewrite=rewrite,
            summarise=summariser(None),
        )
    )


async def _ignore(name: str, data: dict[str, Any]) -> None:
    return None


def _seq_back(store: ChatStore, session: str, back: int) -> int:
    _, newest = store.read_newest(USER, session, back, branch="main")
    return newest[0].seq
