"""The chat-turn benchmark: DynamoDB cost per turn (exact), and two timings of this machine
(latency from the model's first token to the client's first SSE byte; import cost).

Run by ``make bench`` with the storage benchmark.
"""

from __future__ import annotations

import asyncio
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any
from unittest.mock import patch

import httpx
from agents import Agent

from bench import coldstart
from bench.meter import Cost, metered_store
from chat_sessions import ChatStore, service
from chat_sessions.agent_config import OfflineModel
from chat_sessions.chat_app import create_chat_app
from chat_sessions.turns import run_turn
from chat_sessions_local.dynamodb_local import DynamoDBLocal
from chat_sessions_local.issuer import DevIssuer
from chat_sessions_local.serving import serve
from chat_sessions_local.tables import create_table

ROOT = Path(__file__).resolve().parents[1]
USER = "bench-user"
HISTORY_LENGTHS = (0, 1_000, 10_000)
TEXT = "x" * 600


def turn_costs(server: DynamoDBLocal, table: str = "chat-bench-turns") -> list[tuple[str, Cost]]:
    """One chat turn (offline model) at each history length, metered."""
    meter, store = metered_store(server, table)
    agent = Agent(name="assistant", model=OfflineModel())
    rows = []
    for length in HISTORY_LENGTHS:
        session_id = f"t-{length}"
        store.create_session(USER, session_id, title="bench")
        pair = [{"role": "user", "content": TEXT}, {"role": "assistant", "content": TEXT}]
        for _ in range(length // 98):
            store.append_items(USER, session_id, pair * 49)
        overlapped = store.table.overlapped
        with meter.measure() as cost:
            asyncio.run(run_turn(store, agent, USER, session_id, "What next?", _ignore))
        cost.round_trips -= store.table.overlapped - overlapped  # sent together: one trip
        rows.append((f"chat turn at history {length:,}", cost))
    return rows


async def _ignore(name: str, data: dict[str, Any]) -> None:
    return None


def turn_table(rows: list[tuple[str, Cost]]) -> str:
    header = ["operation", "round trips", "calls", "read CU", "write CU billed (table + index)"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for name, cost in rows:
        calls = " + ".join(_listed(cost.operations))
        writes = f"{cost.billed_write} + {cost.billed_index_write} index"
        lines.append(
            f"| {name} | {cost.round_trips} | {calls} | {cost.reported_read:g} | {writes} |"
        )
    return "\n".join(lines)


SENT_TOGETHER = ({"UpdateItem", "Query"}, {"GetItem", "Query"})
"""Pairs a turn's start and a resume send together (the lease or its holder, and a read): they
finish in either order, and are listed with the read second."""


def _listed(operations: list[str]) -> list[str]:
    first, rest = operations[:2], operations[2:]
    if set(first) in SENT_TOGETHER and first[0] == "Query":
        first.reverse()
    return first + rest


class _StampedModel(OfflineModel):
    """Notes when the model hands over its first token of each turn."""

    first_token_at: list[float]

    def __init__(self) -> None:
        super().__init__(pause=self._stamp)
        self.first_token_at = []
        self._turn_started = False

    async def stream_response(self, *args: Any, **kwargs: Any) -> Any:
        self._turn_started = True
        async for event in super().stream_response(*args, **kwargs):
            yield event

    async def _stamp(self) -> None:
        if self._turn_started:
            self.first_token_at.append(time.perf_counter())
            self._turn_started = False


def first_byte_latency(server: DynamoDBLocal, turns: int = 30) -> list[float]:
    """Milliseconds from the model's first token to the first token event at the client."""
    client = server.client()
    create_table(client, "chat-bench-latency", stream=False)
    store = ChatStore("chat-bench-latency", client=client)
    issuer = DevIssuer.load_or_create(
        "http://127.0.0.1", key_file=ROOT / ".cache" / "bench-key.pem"
    )
    model = _StampedModel()
    app = create_chat_app(
        agent=lambda: Agent(name="assistant", model=model),
        verifier=issuer.verifier,
    )
    headers = {"Authorization": f"Bearer {issuer.mint(USER)}", "Accept": "text/event-stream"}
    store.create_session(USER, "latency", title="bench")
    latencies = []
    with patch.object(service, "get_store", lambda: store), serve(app) as url:
        for _ in range(turns):
            with httpx.stream(
                "POST",
                f"{url}/v1/sessions/latency/chat",
                json={"message": "hello"},
                headers=headers,
            ) as response:
                lines = response.iter_lines()
                for line in lines:
                    if line == "event: token":
                        arrived = time.perf_counter()
                        latencies.append((arrived - model.first_token_at[-1]) * 1000)
                        break
                for _ in lines:  # the rest of the turn
                    pass
    return latencies


def import_cost(function: str, runs: int = 5) -> tuple[float, int]:
    """Median self-time sum (ms) and module count of importing a function's app.py."""
    probe = (
        "import importlib.util as u, sys; sys.path.insert(0, sys.argv[1]); "
        "s = u.spec_from_file_location('app', sys.argv[1] + '/app.py'); "
        "m = u.module_from_spec(s); s.loader.exec_module(m)"
    )
    totals = []
    for _ in range(runs):
        stderr = subprocess.run(
            [sys.executable, "-X", "importtime", "-c", probe, str(ROOT / "functions" / function)],
            capture_output=True,
            text=True,
            check=True,
            env={"POWERTOOLS_TRACE_DISABLED": "true", "PATH": "/usr/bin:/bin"},
        ).stderr
        rows = [r for r in stderr.splitlines() if r.startswith("import time:") and "self" not in r]
        totals.append((sum(int(r.split("|")[0].split(":")[1]) for r in rows) / 1000, len(rows)))
    totals.sort()
    return totals[len(totals) // 2]


def timings(server: DynamoDBLocal) -> str:
    latencies = first_byte_latency(server)
    crud_ms, crud_modules = import_cost("get_session")
    chat_ms, chat_modules = import_cost("chat")
    quantiles = statistics.quantiles(latencies, n=20)
    return "\n".join(
        [
            f"- First model token → first SSE byte at the client over loopback, {len(latencies)} "
            f"turns: median {statistics.median(latencies):.1f} ms, p95 {quantiles[18]:.1f} ms "
            "(target ≤ 20 ms).",
            f"- `python -X importtime` self-time sum, median of 5: CRUD function `get_session` "
            f"{crud_ms:.0f} ms ({crud_modules} modules); chat function {chat_ms:.0f} ms "
            f"({chat_modules} modules).",
            coldstart.report(),
            "- Measured on the 2-core dev box; timings vary with load, so no test asserts them.",
        ]
    )
