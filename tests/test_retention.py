"""The retention cap: at most N stored messages per session, oldest whole turns removed first
(moto and DynamoDB Local)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest

from chat_sessions import ChatStore
from chat_sessions.keys import partition_key
from support import rows_of

USER = "user-r"
SESSION = "capped"
PK = partition_key(USER, SESSION)


def turn(tag: str) -> list[dict[str, Any]]:
    """One agent turn: the user's message, a tool call, its output, the answer."""
    return [
        {"role": "user", "content": f"{tag}: question"},
        {"type": "function_call", "call_id": f"call-{tag}", "name": "lookup", "arguments": "{}"},
        {"type": "function_call_output", "call_id": f"call-{tag}", "output": f"{tag}: data"},
        {
            "type": "message",
            "role": "assistant",
            "content": [{"type": "output_text", "text": f"{tag}: answer", "annotations": []}],
        },
    ]


def stored(store: ChatStore) -> list[dict[str, Any]]:
    session, messages = store.read_newest(USER, SESSION, None)
    items = [m.item for m in messages]
    assert session.message_count == len(items)
    return items


def tags_of(items: list[dict[str, Any]]) -> list[str]:
    """The turn tag of each item, checking that the items form whole turns in order."""
    assert len(items) % 4 == 0, items
    tags = []
    for start in range(0, len(items), 4):
        tag = items[start]["content"].split(":")[0]
        assert items[start : start + 4] == turn(tag), f"turn {tag} is not whole"
        tags.append(tag)
    return tags


@pytest.fixture
def capped(make_store: Callable[..., ChatStore]) -> ChatStore:
    store = make_store(max_stored_items=10)
    store.create_session(USER, SESSION)
    return store


def test_over_the_cap_the_oldest_whole_turns_go(capped: ChatStore) -> None:
    for number in range(1, 6):
        capped.append_items(USER, SESSION, turn(f"t{number}"))
        assert len(stored(capped)) <= 10

    assert tags_of(stored(capped)) == ["t4", "t5"]  # 8 items; a third turn would make 12


@pytest.mark.stream
def test_trimmed_rows_are_purged_by_the_cascade(
    capped: ChatStore, local_cascade: Any, dynamodb_client: Any, table_name: str
) -> None:
    for number in range(1, 6):
        capped.append_items(USER, SESSION, turn(f"t{number}"))

    local_cascade.run_once()

    kinds = [row["sk"]["S"].split("#")[0] for row in rows_of(dynamodb_client, table_name, PK)]
    assert kinds == ["MSG"] * 8 + ["SESSION"]  # no trimmed row, no marker left
    assert tags_of(stored(capped)) == ["t4", "t5"]


def test_the_newest_turn_stays_even_alone_over_the_cap(
    make_store: Callable[..., ChatStore],
) -> None:
    store = make_store(max_stored_items=3)
    store.create_session(USER, SESSION)
    store.append_items(USER, SESSION, turn("big"))  # 4 items > 3
    assert tags_of(stored(store)) == ["big"]

    store.append_items(USER, SESSION, turn("next"))

    assert tags_of(stored(store)) == ["next"]


def test_no_turn_boundary_means_no_trim_and_nothing_lost(
    make_store: Callable[..., ChatStore],
) -> None:
    store = make_store(max_stored_items=4)
    store.create_session(USER, SESSION)
    store.append_items(USER, SESSION, turn("t1"))
    answers = [{"role": "assistant", "content": f"more {i}"} for i in range(3)]

    store.append_items(USER, SESSION, answers)  # continues t1: cutting would split it

    assert stored(store) == turn("t1") + answers
    store.append_items(USER, SESSION, turn("t2"))
    assert tags_of(stored(store)) == ["t2"]


def test_trimming_costs_the_same_at_any_history_length(
    make_store: Callable[..., ChatStore],
) -> None:
    """Round trips and rows read by an append at the cap, at turn 20 and at turn 100."""
    store = make_store(max_stored_items=40)
    store.create_session(USER, SESSION)
    calls: list[str] = []
    rows_read: list[int] = []
    store.client.meta.events.register(
        "before-call.dynamodb", lambda model, **_: calls.append(model.name)
    )
    store.client.meta.events.register(
        "after-call.dynamodb.Query", lambda parsed, **_: rows_read.append(parsed["ScannedCount"])
    )

    costs = []
    for number in range(1, 101):
        calls.clear()
        rows_read.clear()
        store.append_items(USER, SESSION, turn(f"t{number}"))
        if number in (20, 100):
            costs.append((list(calls), sum(rows_read)))

    assert costs[0] == costs[1]
    assert costs[0][0] == ["TransactWriteItems", "Query", "TransactWriteItems"]
    assert costs[0][1] <= 4 + 20  # the excess plus the look-ahead for the next turn's start
    assert tags_of(stored(store))[0] == "t91"


def test_concurrent_appends_under_the_cap_keep_whole_turns(
    backend: str, make_store: Callable[..., ChatStore]
) -> None:
    if backend == "moto":
        pytest.skip("moto is not thread-safe; concurrency is tested against DynamoDB Local")
    make_store().create_session(USER, SESSION)
    writers, turns_each, cap = 4, 8, 12
    errors: list[BaseException] = []

    def write(writer: int) -> None:
        store = make_store(max_stored_items=cap)
        try:
            for number in range(turns_each):
                store.append_items(USER, SESSION, turn(f"w{writer}-{number}"))
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(w,)) for w in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    tags = tags_of(stored(make_store()))  # whole turns only, and the count matches them
    assert len(tags) == cap // 4  # the newest 3 of 32 turns
    for writer in range(writers):  # a writer's surviving turns are its newest ones, in order
        own = [int(t.split("-")[1]) for t in tags if t.startswith(f"w{writer}-")]
        assert own == list(range(turns_each - len(own), turns_each))


def interleave_once(store: ChatStore, before_call: int, action: Callable[[], object]) -> None:
    """Run ``action`` (another writer) just before the store's ``before_call``-th transaction."""
    seen = {"transactions": 0}

    def hook(**_: Any) -> None:
        seen["transactions"] += 1
        if seen["transactions"] == before_call:
            action()

    store.client.meta.events.register("before-call.dynamodb.TransactWriteItems", hook)


def test_a_trim_planned_before_a_pop_is_planned_again(
    make_store: Callable[..., ChatStore],
) -> None:
    store = make_store(max_stored_items=4)
    store.create_session(USER, SESSION)
    store.append_items(USER, SESSION, turn("t1"))
    other = make_store()
    interleave_once(store, 2, lambda: other.pop_item(USER, SESSION))  # between plan and trim

    store.append_items(USER, SESSION, turn("t2"))

    assert tags_of(stored(store)) == ["t2"]  # and stored() checks message_count matches


def test_a_trim_planned_before_a_continuation_is_planned_again(
    make_store: Callable[..., ChatStore],
) -> None:
    store = make_store(max_stored_items=6)
    store.create_session(USER, SESSION)
    store.append_items(USER, SESSION, turn("t1"))
    more = {"role": "assistant", "content": "t1: more"}
    other = make_store(max_stored_items=6)
    interleave_once(store, 2, lambda: other.append_items(USER, SESSION, [more]))

    store.append_items(USER, SESSION, turn("t2"))

    assert tags_of(stored(store)) == ["t2"]  # t1 and its continuation went together


def test_rows_written_before_the_turn_flag_are_read_to_find_turns(
    make_store: Callable[..., ChatStore], dynamodb_client: Any, table_name: str
) -> None:
    store = make_store(max_stored_items=10)
    store.create_session(USER, SESSION)
    for number in (1, 2):
        store.append_items(USER, SESSION, turn(f"t{number}"))
    for row in rows_of(dynamodb_client, table_name, PK):  # as rows stored by earlier versions
        if row["sk"]["S"].startswith("MSG#"):
            dynamodb_client.update_item(
                TableName=table_name,
                Key={"pk": row["pk"], "sk": row["sk"]},
                UpdateExpression="REMOVE starts_turn",
            )

    store.append_items(USER, SESSION, turn("t3"))

    assert tags_of(stored(store)) == ["t2", "t3"]  # only the oldest turn went


async def test_a_chat_turn_reports_the_count_after_its_trim(
    make_store: Callable[..., ChatStore],
) -> None:
    from agents import Agent
    from agents.testing import ScriptedModel, assistant_message

    from chat_sessions.turns import run_turn

    store = make_store(max_stored_items=4)
    store.create_session(USER, SESSION)
    store.append_items(USER, SESSION, turn("t1"))
    agent = Agent(name="assistant", model=ScriptedModel([[assistant_message("hi")]]))

    async def ignore(name: str, data: dict[str, Any]) -> None:
        return None

    result = await run_turn(store, agent, USER, SESSION, "hello", ignore)

    assert result.message_count == len(stored(store)) == 2
