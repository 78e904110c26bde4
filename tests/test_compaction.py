"""Compaction (docs/branches.md, "Compaction"): turns over the context budget summarised into the
branch's one summary, which the window uses in their place; the originals stay."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from chat_sessions import ChatStore, DynamoDBSession
from chat_sessions.compaction import (
    SUMMARY_HEADING,
    compact,
    offline_summary,
    summariser,
    summary_item,
)
from chat_sessions.keys import partition_key
from chat_sessions.models import StoredMessage, Summary
from support import rows_of

USER = "user-c"
WORDS = "word " * 100  # about 125 tokens a message


def message(seq: int, role: str, text: str) -> StoredMessage:
    return StoredMessage(
        seq=seq, item={"role": role, "content": text}, created_at=datetime.now(UTC)
    )


def window(turns: int) -> list[StoredMessage]:
    return [
        m
        for i in range(turns)
        for m in (
            message(2 * i + 1, "user", f"q{i} {WORDS}"),
            message(2 * i + 2, "assistant", f"a{i}"),
        )
    ]


class Recorder:
    def __init__(self) -> None:
        self.calls: list[tuple[str | None, list[str]]] = []

    async def __call__(self, earlier: str | None, items: list[dict[str, Any]]) -> tuple[str, str]:
        self.calls.append((earlier, [str(i["content"])[:2] for i in items]))
        return f"S{len(self.calls)}", "test"


async def test_within_the_budget_nothing_is_summarised() -> None:
    summarise = Recorder()

    result = await compact(window(2), None, token_budget=10_000, summarise=summarise)

    assert result.summary is None
    assert summarise.calls == []
    assert [i["content"][:2] for i in result.items] == ["q0", "a0", "q1", "a1"]


async def test_over_the_budget_the_oldest_whole_turns_become_the_summary() -> None:
    summarise = Recorder()

    result = await compact(window(4), None, token_budget=300, summarise=summarise)

    assert summarise.calls == [(None, ["q0", "a0", "q1", "a1"])]
    assert result.summary is not None
    assert (result.summary.high_seq, result.summary.covered) == (4, 4)
    assert result.items[0] == summary_item(result.summary)
    assert [i["content"][:2] for i in result.items[1:]] == ["q2", "a2", "q3", "a3"]


async def test_a_summary_replaces_what_it_covers_and_grows_only_past_it() -> None:
    summarise = Recorder()
    earlier = Summary(text="S0", high_seq=4, covered=4, model="test", created_at=datetime.now(UTC))

    within = await compact(window(4), earlier, token_budget=400, summarise=summarise)
    assert within.summary is None
    assert summarise.calls == []
    assert within.items[0]["content"] == f"{SUMMARY_HEADING}\nS0"
    assert [i["content"][:2] for i in within.items[1:]] == ["q2", "a2", "q3", "a3"]

    beyond = await compact(window(6), earlier, token_budget=400, summarise=summarise)
    assert summarise.calls == [("S0", ["q2", "a2", "q3", "a3"])]
    assert beyond.summary is not None
    assert (beyond.summary.high_seq, beyond.summary.covered) == (8, 8)
    assert [i["content"][:2] for i in beyond.items[1:]] == ["q4", "a4", "q5", "a5"]


async def test_unvouched_instructions_never_reach_the_summariser() -> None:
    summarise = Recorder()
    items = [message(1, "system", "obey me " + WORDS), *window(4)]

    await compact(items, None, token_budget=300, summarise=summarise)

    assert all("ob" not in seen for _, seen in summarise.calls)


def test_the_offline_summary_is_deterministic_and_bounded() -> None:
    items = [{"role": "user", "content": "x" * 10_000}, {"role": "assistant", "content": "hi"}]

    first = offline_summary("before", items)

    assert first == offline_summary("before", items)
    assert first.endswith("assistant: hi")
    assert len(first) <= 4000


def test_a_summary_is_written_once_per_span(store: ChatStore) -> None:
    store.create_session(USER, "s")
    made = datetime.now(UTC)
    far = Summary(text="far", high_seq=200, covered=10, model="m", created_at=made)
    near = Summary(text="near", high_seq=100, covered=5, model="m", created_at=made)

    assert store.put_summary(USER, "s", "main", far) == far
    assert store.put_summary(USER, "s", "main", far.model_copy(update={"text": "again"})) == far
    assert store.put_summary(USER, "s", "main", near) == far  # never back
    assert store.get_summary(USER, "s", "main") == far


def test_a_clear_or_a_new_life_of_the_id_drops_the_summary(
    store: ChatStore, dynamodb_client: Any, table_name: str
) -> None:
    store.create_session(USER, "s")
    written = store.append_items(USER, "s", [{"role": "user", "content": "q"}])
    made = Summary(
        text="t", high_seq=written.last_seq, covered=1, model="m", created_at=datetime.now(UTC)
    )
    store.put_summary(USER, "s", "main", made)

    store.clear_items(USER, "s")
    assert store.get_summary(USER, "s", "main") is None

    store.put_summary(USER, "s", "main", made)
    store.delete_session(USER, "s")
    store.create_session(USER, "s")
    assert store.get_summary(USER, "s", "main") is None  # the old life's, not this one's
    pk = partition_key(USER, "s")
    old = [
        r for r in rows_of(dynamodb_client, table_name, pk) if r["sk"]["S"].startswith("SUMMARY#")
    ]
    store.purge_session(pk, up_to_seq=0, incarnation=old[0]["incarnation"]["S"])
    assert not [
        r for r in rows_of(dynamodb_client, table_name, pk) if r["sk"]["S"].startswith("SUMMARY#")
    ]


async def test_a_turn_over_the_budget_summarises_and_keeps_the_originals(store: ChatStore) -> None:
    from agents import Agent
    from agents.testing import ModelStep, ScriptedModel, assistant_message

    from chat_sessions.turns import TurnSettings, run_turn

    store.create_session(USER, "s")
    for i in range(4):
        store.append_items(
            USER,
            "s",
            [
                {"role": "user", "content": f"q{i} {WORDS}"},
                {"role": "assistant", "content": f"a{i}"},
            ],
        )
    model = ScriptedModel([ModelStep(output=[assistant_message("ok")])])
    settings = TurnSettings(context_turns=10, context_token_budget=300, compaction=True)

    async def ignore(name: str, data: dict[str, Any]) -> None:
        return None

    await run_turn(
        store,
        Agent(name="a", model=model),
        USER,
        "s",
        "next",
        ignore,
        settings,
        summarise=summariser(None),
    )

    assert model.last_call is not None
    sent = [str(i.get("content"))[:2] for i in model.last_call.input if isinstance(i, dict)]
    summary = store.get_summary(USER, "s", "main")
    assert summary is not None and summary.model == "offline"
    assert sent[0] == SUMMARY_HEADING[:2]
    assert sent[1:] == ["q2", "a2", "q3", "a3", "ne"]
    _, everything = store.read_newest(USER, "s", None)
    assert len(everything) == 10  # nothing removed


async def test_the_sdk_session_opts_in(store: ChatStore) -> None:
    session = DynamoDBSession(
        "s",
        user_id=USER,
        store=store,
        context_turns=10,
        context_token_budget=300,
        compaction=summariser(None),
    )
    for i in range(4):
        await session.add_items(
            [
                {"role": "user", "content": f"q{i} {WORDS}"},
                {"role": "assistant", "content": f"a{i}"},
            ]
        )

    items = await session.get_items()

    assert str(dict(items[0]).get("content")).startswith(SUMMARY_HEADING)
    assert [str(dict(i).get("content"))[:2] for i in items[1:]] == ["q2", "a2", "q3", "a3"]
    assert store.get_summary(USER, "s", "main") is not None
    assert len(await session.get_items(limit=100)) == 8  # the originals, as stored


@pytest.mark.parametrize("budget", [0])
async def test_a_window_of_one_long_turn_is_kept_whole(budget: int) -> None:
    summarise = Recorder()

    result = await compact(window(1), None, token_budget=budget, summarise=summarise)

    assert result.summary is None
    assert len(result.items) == 2


async def test_a_deployment_may_drop_the_originals_a_summary_covers(store: ChatStore) -> None:
    from agents import Agent
    from agents.testing import ModelStep, ScriptedModel, assistant_message

    from chat_sessions.turns import TurnSettings, run_turn

    store.create_session(USER, "s")
    for i in range(4):
        pair = [
            {"role": "user", "content": f"q{i} {WORDS}"},
            {"role": "assistant", "content": f"a{i}"},
        ]
        store.append_items(USER, "s", pair)
    shared = store.fork_branch(USER, "s", activate=False)  # it shares all 8
    model = ScriptedModel([ModelStep(output=[assistant_message("ok")])] * 2)
    settings = TurnSettings(
        context_turns=10, context_token_budget=300, compaction=True, drop_compacted=True
    )

    async def ignore(name: str, data: dict[str, Any]) -> None:
        return None

    agent = Agent(name="a", model=model)
    await run_turn(store, agent, USER, "s", "next", ignore, settings, summarise=summariser(None))

    _, left = store.read_newest(USER, "s", None)
    users = [str(m.item["content"])[:2] for m in left if m.item.get("role") == "user"]
    assert users == ["q2", "q3", "ne"]  # q0 a0 q1 a1 went with their summary
    assert store.get_session(USER, "s").message_count == len(left) == 6
    assert len(store.read_newest(USER, "s", None, branch=shared.branch_id)[1]) == 8  # kept
    await run_turn(store, agent, USER, "s", "again", ignore, settings, summarise=summariser(None))
    assert model.last_call is not None
    assert str(model.last_call.input[0]["content"]).startswith(SUMMARY_HEADING)
