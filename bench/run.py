"""The storage benchmark: round trips and capacity units per operation, on DynamoDB Local.

    make bench             # prints the table and rewrites it in docs/performance.md

Capacity and round trips are what we compare: they do not depend on how loaded this machine is.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import DynamoDBRecord

from bench.meter import Cost, Meter
from chat_sessions import ChatStore, DynamoDBSession
from chat_sessions.cascade import cascade
from chat_sessions.keys import partition_key
from chat_sessions_local.dynamodb_local import DynamoDBLocal
from chat_sessions_local.streams import StreamReader, passes
from chat_sessions_local.tables import create_table

DOC = Path(__file__).resolve().parents[1] / "docs" / "performance.md"
START, END = "<!-- bench:store:start -->", "<!-- bench:store:end -->"
CHAT = ("<!-- bench:chat:start -->", "<!-- bench:chat:end -->")
TIMINGS = ("<!-- bench:timings:start -->", "<!-- bench:timings:end -->")
IDEMPOTENCY = ("<!-- bench:idempotency:start -->", "<!-- bench:idempotency:end -->")
BRANCHES = ("<!-- bench:branches:start -->", "<!-- bench:branches:end -->")
RESUME = ("<!-- bench:resume:start -->", "<!-- bench:resume:end -->")
RESUME_TIMINGS = ("<!-- bench:resume-timings:start -->", "<!-- bench:resume-timings:end -->")
TEXT = "x" * 600  # one 600-byte message text
USER = "bench-user"


def pair() -> list[dict[str, Any]]:
    return [
        {"role": "user", "content": TEXT},
        {
            "type": "message",
            "role": "assistant",
            "content": [{"type": "output_text", "text": TEXT, "annotations": []}],
        },
    ]


@dataclass
class Row:
    operation: str
    cost: Cost

    def cells(self) -> list[str]:
        c = self.cost
        writes = f"{c.billed_write} + {c.billed_index_write} index" if c.billed_total_write else "0"
        return [
            self.operation,
            str(c.round_trips),
            " + ".join(dict.fromkeys(c.operations)) or "none",
            f"{c.reported_read:g}",
            f"{c.reported_write:g}",
            writes,
        ]


def fill(store: ChatStore, session_id: str, items: int) -> None:
    """History of ``items`` messages (pairs), written in large batches (not measured)."""
    batch = [m for _ in range(49) for m in pair()]  # 98 messages: one transaction
    while items > 0:
        take = min(items, len(batch))
        store.append_items(USER, session_id, batch[:take])
        items -= take


def run(server: DynamoDBLocal, table: str = "chat-bench") -> list[Row]:
    """Measure every operation on a new table ``table`` of ``server``."""
    client = server.client()
    create_table(client, table)
    meter = Meter(client, server.client(), table)
    store = ChatStore(table, client=client, session_ttl_seconds=7 * 86_400)
    cascades = Cascades(store, StreamReader(server.client(), table))
    rows: list[Row] = []

    def measure(operation: str, action: Callable[[], object]) -> None:
        with meter.measure() as cost:
            action()
        rows.append(Row(operation, cost))

    measure("create session", lambda: store.create_session(USER, "s-0"))
    measure("get session", lambda: store.get_session(USER, "s-0"))
    measure(
        "open a DynamoDBSession object",
        lambda: DynamoDBSession("s-0", user_id=USER, store=store),
    )
    for length in (0, 100, 1_000, 10_000):
        session_id = f"s-{length}"
        store.create_session(USER, session_id)
        fill(store, session_id, length)
        measure(
            f"append one pair (2 x 600 B) at history {length:,}",
            lambda sid=session_id: store.append_items(USER, sid, pair()),  # type: ignore[misc]
        )
    for length in (100, 10_000):
        measure(
            f"read newest 20 at history {length:,}",
            lambda sid=f"s-{length}": store.read_newest(USER, sid, 20),  # type: ignore[misc]
        )
    measure(
        "SDK turn at history 10,000: get_items(20) + add_items(pair)",
        lambda: asyncio.run(_sdk_turn(store, "s-10000")),
    )
    measure(
        "SDK turn at history 10,000, context_turns=10: get_items() + add_items(pair)",
        lambda: asyncio.run(_sdk_turn(store, "s-10000", context_turns=10)),
    )
    measure("page of 50 messages at history 10,000", lambda: store.list_messages(USER, "s-10000"))
    store.create_session(USER, "s-big")
    measure(
        "append 1,000 messages in one call (staged), 500 pairs",
        lambda: store.append_items(USER, "s-big", [m for _ in range(500) for m in pair()]),
    )
    store.create_session(USER, "s-cleared")
    fill(store, "s-cleared", 3_000)
    store.clear_items(USER, "s-cleared")
    measure(
        "read everything of a cleared, unpurged history of 3,000",
        lambda: store.read_newest(USER, "s-cleared", None),
    )
    for i in range(1, 25):
        store.create_session(USER, f"s-list-{i}", title=f"Session {i}", metadata={"topic": "bench"})
    measure("list 20 sessions", lambda: store.list_sessions(USER, limit=20))
    for i in range(600):
        store.create_session(USER, f"s-common-{i}", metadata={"kind": "common"})
    measure(
        "list 1 session by a metadata filter no newer session matches (600 ahead)",
        lambda: store.list_sessions(USER, limit=1, metadata={"topic": "bench"}),
    )
    measure(
        "rename + set metadata",
        lambda: store.update_session(USER, "s-0", title="Renamed", metadata={"k": "v"}),
    )
    measure("pop newest item at history 1,000", lambda: store.pop_item(USER, "s-1000"))
    # The retention cap: an append at the cap trims one turn, at the same cost at any history.
    capped = ChatStore(table, client=client, session_ttl_seconds=7 * 86_400, max_stored_items=200)
    capped.create_session(USER, "s-cap")
    appended = 0
    for total in (1_000, 10_000):
        fill(capped, "s-cap", total - appended)
        appended = total
        measure(
            f"append one pair at the cap (200 kept), {total:,} appended so far",
            lambda: capped.append_items(USER, "s-cap", pair()),
        )
        appended += 2
    cascades.of("s-cap")()  # apply the trims' markers (not measured)
    # Lifecycle: the API call is one write whatever the history; the stream consumer purges.
    measure("clear history of 100", lambda: store.clear_items(USER, "s-100"))
    measure("cascade of that clear: purge 100 messages", cascades.of("s-100"))
    store.create_session(USER, "s-10")
    fill(store, "s-10", 10)
    for length in (10, 1_000, 10_000):
        measure(
            f"delete session at history {length:,}",
            partial(store.delete_session, USER, f"s-{length}"),
        )
    for length in (10, 1_000, 10_000):
        measure(
            f"cascade of that delete: purge {length:,} messages",
            cascades.of(f"s-{length}"),
        )
    return rows


class Cascades:
    """The cascade's stream records per session, read before they are applied (not measured)."""

    def __init__(self, store: ChatStore, stream: StreamReader) -> None:
        self._store = store
        self._stream = stream
        self._pending: dict[str, list[dict[str, Any]]] = defaultdict(list)

    def of(self, session_id: str) -> Callable[[], object]:
        """What the stream consumer does for the session's records so far."""
        for record in self._stream.read():
            if passes(record):
                self._pending[record["dynamodb"]["Keys"]["pk"]["S"]].append(record)
        records = self._pending.pop(partition_key(USER, session_id), [])
        if not records:
            raise SystemExit(f"no cascade record for {session_id}")
        return lambda: [cascade(self._store, DynamoDBRecord(record)) for record in records]


async def _sdk_turn(store: ChatStore, session_id: str, context_turns: int | None = None) -> None:
    session = DynamoDBSession(session_id, user_id=USER, store=store, context_turns=context_turns)
    await (session.get_items() if context_turns else session.get_items(20))
    await session.add_items(pair())  # type: ignore[arg-type]


def table(rows: list[Row]) -> str:
    header = [
        "operation",
        "round trips",
        "calls",
        "read CU (reported)",
        "write CU (DynamoDB Local reports)",
        "write CU billed by AWS rules (table + index)",
    ]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row.cells()) + " |" for row in rows]
    return "\n".join(lines)


def documented_table(markers: tuple[str, str] = (START, END)) -> str:
    """A block as committed in docs/performance.md."""
    start, end = markers
    match = re.search(re.escape(start) + "\n(.*?)\n" + re.escape(end), DOC.read_text(), flags=re.S)
    if match is None:
        raise SystemExit(f"{DOC} has no {start} ... {end} block")
    return match.group(1)


def write_doc(markdown: str, markers: tuple[str, str] = (START, END)) -> None:
    start, end = markers
    text = DOC.read_text()
    block = f"{start}\n{markdown}\n{end}"
    updated, count = re.subn(re.escape(start) + ".*?" + re.escape(end), block, text, flags=re.S)
    if count != 1:
        raise SystemExit(f"{DOC} has no {start} ... {end} block")
    DOC.write_text(updated)


def main() -> None:
    os.environ.setdefault("OPENAI_AGENTS_DISABLE_TRACING", "1")  # no trace export from a bench
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--no-write", action="store_true", help="print only; leave the doc alone")
    args = parser.parse_args()
    started = time.monotonic()
    from bench.branches import branch_costs, branch_table
    from bench.chat import timings, turn_costs, turn_table
    from bench.idempotency import idempotency_costs
    from bench.resume import start_costs
    from bench.resume import timings as resume_timings

    with DynamoDBLocal() as server:
        markdown = table(run(server))
        chat = turn_table(turn_costs(server))
        measured = timings(server)
        keyed = turn_table(idempotency_costs(server))
        branched = branch_table(branch_costs(server))
        starts = turn_table(start_costs(server))
    streamed = resume_timings()
    print(markdown, chat, measured, keyed, branched, starts, streamed, sep="\n\n")
    print(f"\n(DynamoDB Local, {time.monotonic() - started:.0f} s)", file=sys.stderr)
    if not args.no_write:
        write_doc(markdown)
        write_doc(chat, CHAT)
        write_doc(measured, TIMINGS)
        write_doc(keyed, IDEMPOTENCY)
        write_doc(branched, BRANCHES)
        write_doc(starts, RESUME)
        write_doc(streamed, RESUME_TIMINGS)


if __name__ == "__main__":
    main()
