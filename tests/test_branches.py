"""Branches (docs/branches.md): forks that copy nothing, views of shared history, the active
branch, listing, renaming and deletion, and the pins that keep shared rows."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from chat_sessions import ChatStore
from chat_sessions.errors import (
    BranchNotFoundError,
    InvalidInputError,
    MainBranchError,
    MessageNotFoundError,
)
from chat_sessions.keys import partition_key
from support import rows_of

USER = "user-a"
NO_SUCH_BRANCH = "b_" + "2" * 20


def turn(i: int) -> list[dict[str, Any]]:
    return [{"role": "user", "content": f"q{i}"}, {"role": "assistant", "content": f"a{i}"}]


def texts(store: ChatStore, session: str, **options: Any) -> list[str]:
    _, messages = store.read_newest(USER, session, options.pop("limit", None), **options)
    return [m.item["content"] for m in messages]


def history(store: ChatStore, session: str, turns: int) -> list[int]:
    """A session of ``turns`` user/assistant pairs; the seqs of its messages."""
    store.create_session(USER, session)
    seqs: list[int] = []
    for i in range(turns):
        result = store.append_items(USER, session, turn(i))
        seqs += range(result.first_seq, result.last_seq + 1)
    return seqs


def calls_of(store: ChatStore) -> list[str]:
    calls: list[str] = []
    store.client.meta.events.register(
        "before-call.dynamodb", lambda model, **_: calls.append(model.name)
    )
    return calls


@pytest.mark.parametrize("turns", [3, 60])
def test_a_fork_writes_two_items_whatever_the_history(
    store: ChatStore, dynamodb_client: Any, table_name: str, turns: int
) -> None:
    seqs = history(store, "s", turns)
    pk = partition_key(USER, "s")
    before = len(rows_of(dynamodb_client, table_name, pk))

    branch = store.fork_branch(USER, "s", at_seq=seqs[-3])

    after = rows_of(dynamodb_client, table_name, pk)
    assert len(after) == before + 2  # its record and its base: no message copied
    assert {row["sk"]["S"] for row in after} >= {
        f"BRANCH#{branch.branch_id}",
        f"BRBASE#{branch.branch_id}",
    }
    assert branch.message_count == len(seqs) - 2
    assert branch.parent_branch == "main"
    assert branch.fork_seq == seqs[-3]


def test_a_branch_reads_the_shared_history_up_to_its_fork_point(store: ChatStore) -> None:
    seqs = history(store, "s", 3)

    branch = store.fork_branch(USER, "s", at_seq=seqs[2], activate=False)

    assert texts(store, "s", branch=branch.branch_id) == ["q0", "a0", "q1"]
    assert texts(store, "s", branch=branch.branch_id, limit=2) == ["a0", "q1"]
    assert texts(store, "s") == ["q0", "a0", "q1", "a1", "q2", "a2"]  # main is untouched


def test_a_fork_with_no_point_shares_everything_and_zero_shares_nothing(store: ChatStore) -> None:
    history(store, "s", 2)

    everything = store.fork_branch(USER, "s", activate=False)
    nothing = store.fork_branch(USER, "s", at_seq=0, activate=False)

    assert texts(store, "s", branch=everything.branch_id) == ["q0", "a0", "q1", "a1"]
    assert everything.message_count == 4
    assert texts(store, "s", branch=nothing.branch_id) == []
    assert nothing.message_count == 0


def test_a_fork_point_outside_the_branch_is_not_found(store: ChatStore) -> None:
    seqs = history(store, "s", 2)
    short = store.fork_branch(USER, "s", at_seq=seqs[0], activate=False)

    with pytest.raises(MessageNotFoundError):
        store.fork_branch(USER, "s", source=short.branch_id, at_seq=seqs[2])
    with pytest.raises(MessageNotFoundError):
        store.fork_branch(USER, "s", at_seq=seqs[1] + 1)  # between two messages
    with pytest.raises(BranchNotFoundError):
        store.fork_branch(USER, "s", source=NO_SUCH_BRANCH)
    with pytest.raises(InvalidInputError):
        store.fork_branch(USER, "s", source="../main")


def test_forks_of_forks_read_their_whole_path(store: ChatStore) -> None:
    seqs = history(store, "s", 2)
    first = store.fork_branch(USER, "s", at_seq=seqs[1])  # q0 a0

    second = store.fork_branch(USER, "s", source=first.branch_id)

    assert texts(store, "s", branch=second.branch_id) == ["q0", "a0"]
    assert second.parent_branch == first.branch_id
    assert second.message_count == 2


def test_the_active_branch_is_what_reads_without_a_branch_see(store: ChatStore) -> None:
    seqs = history(store, "s", 2)

    branch = store.fork_branch(USER, "s", at_seq=seqs[1])

    session = store.get_session(USER, "s")
    assert session.active_branch == branch.branch_id
    assert session.message_count == 2
    assert texts(store, "s") == ["q0", "a0"]
    assert store.get_branch(USER, "s", branch.branch_id).active

    store.activate_branch(USER, "s", "main")

    assert store.get_session(USER, "s").active_branch == "main"
    assert store.get_session(USER, "s").message_count == 4
    assert texts(store, "s") == ["q0", "a0", "q1", "a1"]


def test_listing_shows_main_first_then_the_newest_branches(store: ChatStore) -> None:
    history(store, "s", 1)
    made = [store.fork_branch(USER, "s", activate=False, name=f"n{i}") for i in range(3)]

    page = store.list_branches(USER, "s", limit=2)
    rest = store.list_branches(USER, "s", limit=2, cursor=page.next_cursor)

    assert [b.branch_id for b in page.branches] == ["main", made[2].branch_id]
    assert [b.branch_id for b in rest.branches] == [made[1].branch_id, made[0].branch_id]
    assert rest.next_cursor is None
    assert [b.name for b in rest.branches] == ["n1", "n0"]
    assert [b.active for b in page.branches] == [True, False]


def test_a_first_page_of_one_is_main_and_a_cursor(store: ChatStore) -> None:
    history(store, "s", 1)
    other = store.fork_branch(USER, "s", activate=False)

    page = store.list_branches(USER, "s", limit=1)
    rest = store.list_branches(USER, "s", limit=1, cursor=page.next_cursor)

    assert [b.branch_id for b in page.branches] == ["main"]
    assert [b.branch_id for b in rest.branches] == [other.branch_id]
    assert rest.next_cursor is None


def test_renaming(store: ChatStore) -> None:
    history(store, "s", 1)
    branch = store.fork_branch(USER, "s", activate=False)

    assert store.rename_branch(USER, "s", branch.branch_id, "shorter").name == "shorter"
    assert store.rename_branch(USER, "s", branch.branch_id, None).name is None
    with pytest.raises(MainBranchError):
        store.rename_branch(USER, "s", "main", "x")
    with pytest.raises(BranchNotFoundError):
        store.rename_branch(USER, "s", NO_SUCH_BRANCH, "x")


def test_deleting_the_active_branch_makes_main_active(store: ChatStore) -> None:
    history(store, "s", 1)
    branch = store.fork_branch(USER, "s", at_seq=0)

    assert store.delete_branch(USER, "s", branch.branch_id) is True

    assert store.get_session(USER, "s").active_branch == "main"
    assert store.delete_branch(USER, "s", branch.branch_id) is False
    with pytest.raises(BranchNotFoundError):
        store.get_branch(USER, "s", branch.branch_id)
    with pytest.raises(MainBranchError):
        store.delete_branch(USER, "s", "main")
    assert [b.branch_id for b in store.list_branches(USER, "s").branches] == ["main"]


def test_a_re_created_session_has_none_of_the_old_ones_branches(store: ChatStore) -> None:
    history(store, "s", 1)
    old = store.fork_branch(USER, "s")
    store.delete_session(USER, "s")

    store.create_session(USER, "s")

    assert [b.branch_id for b in store.list_branches(USER, "s").branches] == ["main"]
    with pytest.raises(BranchNotFoundError):
        store.read_newest(USER, "s", None, branch=old.branch_id)
    assert store.get_session(USER, "s").active_branch == "main"


def test_another_users_branch_is_not_found(store: ChatStore) -> None:
    history(store, "s", 1)
    branch = store.fork_branch(USER, "s")
    store.create_session("user-b", "s")

    with pytest.raises(BranchNotFoundError):
        store.get_branch("user-b", "s", branch.branch_id)


def test_a_pop_of_a_message_a_branch_shares_keeps_it_for_that_branch(
    store: ChatStore,
) -> None:
    seqs = history(store, "s", 2)
    branch = store.fork_branch(USER, "s", at_seq=seqs[1], activate=False)

    popped = [store.pop_item(USER, "s") for _ in range(3)]  # a1 q1, then a0: shared

    assert [m.item["content"] for m in popped if m is not None] == ["a1", "q1", "a0"]
    assert texts(store, "s") == ["q0"]
    assert store.get_session(USER, "s").message_count == 1
    assert texts(store, "s", branch=branch.branch_id) == ["q0", "a0"]
    store.append_items(USER, "s", turn(5))
    assert texts(store, "s") == ["q0", "q5", "a5"]
    assert store.list_messages(USER, "s", limit=10).messages[1].item["content"] == "q5"
    assert store.pop_item(USER, "s") is not None
    assert [store.pop_item(USER, "s") for _ in range(2)][1].item["content"] == "q0"  # type: ignore[union-attr]
    assert store.pop_item(USER, "s") is None
    assert texts(store, "s", branch=branch.branch_id) == ["q0", "a0"]
    store.clear_items(USER, "s")
    assert texts(store, "s") == []


def test_a_branch_that_pops_what_its_own_fork_shares_keeps_it(store: ChatStore) -> None:
    history(store, "s", 1)
    parent = store.fork_branch(USER, "s")
    store.append_items(USER, "s", turn(1))
    child = store.fork_branch(USER, "s", activate=False)  # shares parent's q1 a1

    store.activate_branch(USER, "s", parent.branch_id)
    popped = store.pop_item(USER, "s")

    assert popped is not None and popped.item["content"] == "a1"
    assert texts(store, "s") == ["q0", "a0", "q1"]
    assert store.get_branch(USER, "s", parent.branch_id).message_count == 3
    assert texts(store, "s", branch=child.branch_id) == ["q0", "a0", "q1", "a1"]


def test_clearing_main_keeps_the_rows_a_branch_shares(
    store: ChatStore, dynamodb_client: Any, table_name: str
) -> None:
    seqs = history(store, "s", 3)
    branch = store.fork_branch(USER, "s", at_seq=seqs[1], activate=False)
    pk = partition_key(USER, "s")

    store.clear_items(USER, "s")
    marker = next(
        r["sk"]["S"]
        for r in rows_of(dynamodb_client, table_name, pk)
        if r["sk"]["S"].startswith("TRIM#")
    )
    purged = store.purge_trimmed(pk, marker)

    assert purged == 4  # q1 a1 q2 a2: above the pin
    assert texts(store, "s") == []
    assert texts(store, "s", branch=branch.branch_id) == ["q0", "a0"]


def test_a_deleted_sessions_branches_go_with_its_cascade(
    store: ChatStore, dynamodb_client: Any, table_name: str
) -> None:
    history(store, "s", 1)
    store.fork_branch(USER, "s")
    store.fork_branch(USER, "s", at_seq=0)
    pk = partition_key(USER, "s")
    old = next(r for r in rows_of(dynamodb_client, table_name, pk) if r["sk"]["S"] == "SESSION")
    store.delete_session(USER, "s")

    store.purge_session(
        pk, up_to_seq=int(old["last_seq"]["N"]), incarnation=old["incarnation"]["S"]
    )

    assert rows_of(dynamodb_client, table_name, pk) == []


def test_a_header_that_replaces_an_expired_one_leaves_its_branches_to_the_cascade(
    store: ChatStore, dynamodb_client: Any, table_name: str, clock: Any
) -> None:
    history(store, "s", 1)
    store.fork_branch(USER, "s")
    clock.advance(3600 + 1)
    store.create_session(USER, "s")  # over the expired header: a marker for what it left
    pk = partition_key(USER, "s")
    marker = next(
        r["sk"]["S"]
        for r in rows_of(dynamodb_client, table_name, pk)
        if r["sk"]["S"].startswith("TRIM#")
    )

    store.purge_trimmed(pk, marker)

    left = {r["sk"]["S"].split("#")[0] for r in rows_of(dynamodb_client, table_name, pk)}
    assert left == {"SESSION", "TRIM"}  # the marker goes after the purge, in the cascade


def test_appending_to_a_branch_leaves_main_as_it_was(store: ChatStore) -> None:
    seqs = history(store, "s", 2)
    branch = store.fork_branch(USER, "s", at_seq=seqs[1], activate=False)

    store.append_items(USER, "s", turn(9), branch=branch.branch_id)

    assert texts(store, "s", branch=branch.branch_id) == ["q0", "a0", "q9", "a9"]
    assert texts(store, "s") == ["q0", "a0", "q1", "a1"]
    assert store.get_branch(USER, "s", branch.branch_id).message_count == 4
    assert store.get_session(USER, "s").message_count == 4  # main's, the active one


def test_a_batch_naming_no_branch_goes_to_the_active_one(
    make_store: Callable[..., ChatStore],
) -> None:
    store = make_store()
    seqs = history(store, "s", 1)
    branch = store.fork_branch(USER, "s", at_seq=seqs[0])
    writer = make_store()
    calls = calls_of(writer)

    writer.append_items(USER, "s", [{"role": "assistant", "content": "other"}])

    assert texts(store, "s") == ["q0", "other"]
    assert texts(store, "s", branch="main") == ["q0", "a0"]
    assert store.get_session(USER, "s").message_count == 2  # the active branch's, kept exact
    assert calls == ["TransactWriteItems", "TransactWriteItems"]  # main's condition said no
    store.activate_branch(USER, "s", "main")
    calls.clear()
    writer.append_items(USER, "s", [{"role": "user", "content": "m"}])
    assert calls == ["TransactWriteItems"]
    assert texts(store, "s", branch=branch.branch_id) == ["q0", "other"]


@pytest.mark.parametrize("depth", [1, 10, 100])
def test_the_newest_20_of_a_deep_branch_take_a_bounded_number_of_calls(
    make_store: Callable[..., ChatStore], depth: int
) -> None:
    """Each level forks its parent's newest message and adds a turn of its own."""
    store = make_store()
    history(store, "s", 1)
    for level in range(depth):
        store.fork_branch(USER, "s")  # from the active branch, at its newest; made active
        store.append_items(USER, "s", turn(level + 1))
    reader = make_store()
    calls = calls_of(reader)

    _, newest = reader.read_newest(USER, "s", 20)

    expected = [text for i in range(depth + 1) for text in (f"q{i}", f"a{i}")][-20:]
    assert [m.item["content"] for m in newest] == expected
    # main's Query (the header says which is active), the header, the record and base, the
    # own window, then one Query a segment: 10 at most for 20 rows of 2 a segment.
    assert len(calls) <= 4 + min(depth, 10)
    assert reader.get_session(USER, "s").message_count == 2 * (depth + 1)


def test_a_pop_on_a_branch_takes_its_own_rows_then_shortens_what_it_shares(
    store: ChatStore,
) -> None:
    seqs = history(store, "s", 2)
    branch = store.fork_branch(USER, "s", at_seq=seqs[2])  # q0 a0 q1
    store.append_items(USER, "s", [{"role": "assistant", "content": "b1"}])

    popped = [store.pop_item(USER, "s") for _ in range(3)]

    assert [m.item["content"] for m in popped if m is not None] == ["b1", "q1", "a0"]
    assert texts(store, "s") == ["q0"]
    assert store.get_branch(USER, "s", branch.branch_id).message_count == 1
    assert store.get_session(USER, "s").message_count == 1
    assert texts(store, "s", branch="main") == ["q0", "a0", "q1", "a1"]  # shared, never removed
    assert store.pop_item(USER, "s") is not None
    assert store.pop_item(USER, "s") is None


def test_clearing_a_branch_empties_its_view_and_purges_only_its_own_rows(
    store: ChatStore, dynamodb_client: Any, table_name: str
) -> None:
    seqs = history(store, "s", 2)
    branch = store.fork_branch(USER, "s", at_seq=seqs[1])
    store.append_items(USER, "s", turn(7))
    pk = partition_key(USER, "s")

    store.clear_items(USER, "s")
    marker = next(
        r["sk"]["S"]
        for r in rows_of(dynamodb_client, table_name, pk)
        if r["sk"]["S"].startswith("TRIM#")
    )

    assert texts(store, "s") == []
    assert store.get_session(USER, "s").message_count == 0
    assert store.purge_trimmed(pk, marker) == 2  # q7 a7
    assert texts(store, "s", branch="main") == ["q0", "a0", "q1", "a1"]
    store.append_items(USER, "s", turn(8))
    assert texts(store, "s", branch=branch.branch_id) == ["q8", "a8"]


def test_a_deleted_branch_leaves_the_rows_its_forks_share(
    store: ChatStore, dynamodb_client: Any, table_name: str
) -> None:
    history(store, "s", 1)
    parent = store.fork_branch(USER, "s")
    store.append_items(USER, "s", turn(1))
    store.append_items(USER, "s", turn(2))
    _, view = store.read_newest(USER, "s", None)
    child = store.fork_branch(USER, "s", at_seq=view[3].seq)  # q0 a0 q1 a1
    pk = partition_key(USER, "s")

    store.delete_branch(USER, "s", parent.branch_id)
    marker = next(
        r["sk"]["S"]
        for r in rows_of(dynamodb_client, table_name, pk)
        if r["sk"]["S"].startswith("TRIM#")
    )

    assert store.purge_trimmed(pk, marker) == 2  # q2 a2: above the pin
    assert texts(store, "s", branch=child.branch_id) == ["q0", "a0", "q1", "a1"]


def test_the_retention_cap_counts_a_branchs_own_rows(
    make_store: Callable[..., ChatStore],
) -> None:
    store = make_store(max_stored_items=4)
    history(store, "s", 2)
    store.fork_branch(USER, "s")

    for i in range(3):
        store.append_items(USER, "s", turn(10 + i))

    assert texts(store, "s") == ["q0", "a0", "q1", "a1", "q11", "a11", "q12", "a12"]


def test_a_batch_too_large_for_one_transaction_is_staged_into_the_branch(
    store: ChatStore,
) -> None:
    history(store, "s", 1)
    branch = store.fork_branch(USER, "s")
    items = [{"role": "user", "content": f"m{i}"} for i in range(150)]

    result = store.append_items(USER, "s", items)

    assert result.appended == 150
    assert texts(store, "s")[-150:] == [f"m{i}" for i in range(150)]
    assert texts(store, "s", branch="main") == ["q0", "a0"]
    assert store.get_branch(USER, "s", branch.branch_id).message_count == 152


async def test_a_chat_turn_reads_and_stores_the_branch_active_when_it_began(
    store: ChatStore,
) -> None:
    from agents import Agent
    from agents.testing import ModelStep, ScriptedModel, assistant_message

    from chat_sessions.turns import run_turn

    seqs = history(store, "s", 2)
    branch = store.fork_branch(USER, "s", at_seq=seqs[1])  # q0 a0
    model = ScriptedModel([ModelStep(output=[assistant_message("again")])])
    seen: list[str] = []

    async def emit(name: str, data: dict[str, Any]) -> None:
        seen.append(name)

    result = await run_turn(store, Agent(name="a", model=model), USER, "s", "q1 again", emit)

    assert result.branch == branch.branch_id
    assert texts(store, "s")[:3] == ["q0", "a0", "q1 again"]
    assert texts(store, "s", branch="main") == ["q0", "a0", "q1", "a1"]
    assert result.message_count == store.get_session(USER, "s").message_count == 4


async def test_the_sdk_session_works_on_a_named_branch(store: ChatStore) -> None:
    from chat_sessions import DynamoDBSession

    seqs = history(store, "s", 1)
    branch = store.fork_branch(USER, "s", at_seq=seqs[0], activate=False)
    session = DynamoDBSession("s", user_id=USER, store=store, branch=branch.branch_id)

    await session.add_items([{"role": "assistant", "content": "b"}])
    assert [dict(i).get("content") for i in await session.get_items()] == ["q0", "b"]
    assert (await session.pop_item()) == {"role": "assistant", "content": "b"}
    await session.clear_session()

    assert await session.get_items() == []
    assert texts(store, "s") == ["q0", "a0"]


@pytest.mark.integration
@pytest.mark.parametrize("backend", ["dynamodb_local"], indirect=True)
def test_writers_on_two_branches_lose_nothing_and_never_interleave(
    make_store: Callable[..., ChatStore],
) -> None:
    store = make_store()
    seqs = history(store, "s", 1)
    left = store.fork_branch(USER, "s", at_seq=seqs[1], activate=False).branch_id
    right = store.fork_branch(USER, "s", at_seq=seqs[0], activate=False).branch_id

    def write(branch: str, writer: int) -> None:
        mine = make_store()
        for i in range(10):
            pair = [
                {"role": "user", "content": f"{writer}.{i}.q"},
                {"role": "assistant", "content": f"{writer}.{i}.a"},
            ]
            mine.append_items(USER, "s", pair, branch=branch)

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(write, [left, left, right, right], range(4)))

    for branch, shared in ((left, ["q0", "a0"]), (right, ["q0"])):
        got = texts(store, "s", branch=branch)
        assert got[: len(shared)] == shared
        own = got[len(shared) :]
        assert len(own) == 40
        assert all(own[i][:-1] == own[i + 1][:-1] for i in range(0, 40, 2))  # pairs whole
        assert store.get_branch(USER, "s", branch).message_count == len(shared) + 40
    assert texts(store, "s", branch="main") == ["q0", "a0"]


@pytest.mark.integration
@pytest.mark.parametrize("backend", ["dynamodb_local"], indirect=True)
def test_forks_racing_appends_and_pops_each_share_an_exact_prefix(
    make_store: Callable[..., ChatStore],
) -> None:
    store = make_store()
    history(store, "s", 5)
    forks: list[str] = []
    stop = threading.Event()

    def churn() -> None:
        mine = make_store()
        for i in range(15):
            mine.append_items(USER, "s", turn(100 + i), branch="main")
            mine.pop_item(USER, "s", branch="main")
        stop.set()

    def fork() -> None:
        mine = make_store()
        while not stop.is_set():
            forks.append(mine.fork_branch(USER, "s", source="main", activate=False).branch_id)

    with ThreadPoolExecutor(2) as pool:
        for done in [pool.submit(churn), pool.submit(fork)]:
            done.result()

    assert forks
    for branch in forks:  # every fork reads back whole, and main's rows it shares are all there
        _, shared = store.read_newest(USER, "s", None, branch=branch)
        assert len(shared) == store.get_branch(USER, "s", branch).message_count
        assert [m.seq for m in shared] == sorted(m.seq for m in shared)


@pytest.mark.parametrize("order", ["asc", "desc"])
def test_paging_a_branch_walks_its_whole_path(store: ChatStore, order: str) -> None:
    history(store, "s", 2)
    store.fork_branch(USER, "s")
    store.append_items(USER, "s", turn(5))
    _, view = store.read_newest(USER, "s", None)
    store.fork_branch(USER, "s", at_seq=view[4].seq)  # q0 a0 q1 a1 q5
    store.append_items(USER, "s", turn(6))
    whole = texts(store, "s")
    pages, cursor = [], None
    while True:
        page = store.list_messages(USER, "s", limit=3, cursor=cursor, order=order)  # type: ignore[arg-type]
        pages.append([m.item["content"] for m in page.messages])
        cursor = page.next_cursor
        if cursor is None:
            break

    assert [text for page in pages for text in page] == (whole if order == "asc" else whole[::-1])
    assert whole == ["q0", "a0", "q1", "a1", "q5", "q6", "a6"]
    assert all(len(page) == 3 for page in pages[:-1])


def _scripted(*answers: str) -> tuple[Any, Any]:
    from agents import Agent
    from agents.testing import ModelStep, ScriptedModel, assistant_message

    model = ScriptedModel([ModelStep(output=[assistant_message(text)]) for text in answers])
    return Agent(name="a", model=model), model


async def _ignore(name: str, data: dict[str, Any]) -> None:
    return None


def _inputs(model: Any) -> list[str]:
    return [str(item.get("content")) for item in model.last_call.input if isinstance(item, dict)]


async def test_an_edit_runs_on_the_history_before_it_and_becomes_the_active_branch(
    store: ChatStore,
) -> None:
    from chat_sessions.turns import Rewrite, run_turn

    seqs = history(store, "s", 3)
    agent, model = _scripted("edited answer")

    result = await run_turn(
        store, agent, USER, "s", "q1 edited", _ignore, rewrite=Rewrite(replaces_seq=seqs[2])
    )

    assert _inputs(model) == ["q0", "a0", "q1 edited"]  # the context stops before q1
    session = store.get_session(USER, "s")
    assert session.active_branch == result.branch != "main"
    assert texts(store, "s")[:3] == ["q0", "a0", "q1 edited"]
    assert result.message_count == session.message_count == 4
    branch = store.get_branch(USER, "s", result.branch)
    assert (branch.fork_seq, branch.parent_branch, branch.message_count) == (seqs[1], "main", 4)
    assert texts(store, "s", branch="main") == ["q0", "a0", "q1", "a1", "q2", "a2"]


async def test_regenerate_asks_again_with_the_same_message(store: ChatStore) -> None:
    from chat_sessions.turns import Rewrite, run_turn

    history(store, "s", 2)
    agent, model = _scripted("a1, again")

    result = await run_turn(store, agent, USER, "s", "", _ignore, rewrite=Rewrite(regenerate=True))

    assert _inputs(model) == ["q0", "a0", "q1"]
    assert texts(store, "s")[:3] == ["q0", "a0", "q1"]
    assert len(texts(store, "s")) == 4
    assert store.get_branch(USER, "s", result.branch).message_count == 4
    assert texts(store, "s", branch="main") == ["q0", "a0", "q1", "a1"]


async def test_an_edit_whose_turn_fails_leaves_no_branch_and_frees_the_session(
    store: ChatStore,
) -> None:
    from agents import Agent
    from agents.testing import ScriptedModel

    from chat_sessions.errors import TurnFailedError
    from chat_sessions.turns import Rewrite, run_turn

    seqs = history(store, "s", 2)
    agent = Agent(name="a", model=ScriptedModel([RuntimeError("provider down")]))

    with pytest.raises(TurnFailedError):
        await run_turn(store, agent, USER, "s", "x", _ignore, rewrite=Rewrite(replaces_seq=seqs[2]))

    assert [b.branch_id for b in store.list_branches(USER, "s").branches] == ["main"]
    store.begin_turn(USER, "s", "next", lease_seconds=60)  # the lease was released


async def test_only_a_user_message_of_the_branch_can_be_edited(store: ChatStore) -> None:
    from chat_sessions.turns import Rewrite, run_turn

    seqs = history(store, "s", 1)
    agent, _ = _scripted("never")

    with pytest.raises(InvalidInputError):
        await run_turn(store, agent, USER, "s", "x", _ignore, rewrite=Rewrite(replaces_seq=seqs[1]))
    with pytest.raises(MessageNotFoundError):
        await run_turn(store, agent, USER, "s", "x", _ignore, rewrite=Rewrite(replaces_seq=7))
    assert [b.branch_id for b in store.list_branches(USER, "s").branches] == ["main"]


async def test_editing_the_first_message_shares_nothing(store: ChatStore) -> None:
    from chat_sessions.turns import Rewrite, run_turn

    seqs = history(store, "s", 2)
    agent, model = _scripted("fresh")

    result = await run_turn(store, agent, USER, "s", "q0'", _ignore, rewrite=Rewrite(seqs[0]))

    assert _inputs(model) == ["q0'"]
    assert store.get_branch(USER, "s", result.branch).fork_seq == 0
    assert len(texts(store, "s")) == 2


async def test_usage_is_stored_with_each_turn_and_summed_per_branch_and_session(
    store: ChatStore,
) -> None:
    from agents import Agent
    from agents.testing import ModelStep, ScriptedModel, assistant_message
    from agents.usage import Usage

    from chat_sessions.turns import Rewrite, run_turn

    def spending(tokens_in: int, tokens_out: int) -> Agent[Any]:
        usage = Usage(requests=1, input_tokens=tokens_in, output_tokens=tokens_out)
        step = ModelStep(output=[assistant_message("ok")], usage=usage)
        return Agent(name="a", model=ScriptedModel([step]))

    store.create_session(USER, "s")
    await run_turn(store, spending(10, 1), USER, "s", "first", _ignore)
    edited = await run_turn(
        store, spending(20, 2), USER, "s", "again", _ignore, rewrite=Rewrite(regenerate=True)
    )
    await run_turn(store, spending(30, 3), USER, "s", "more", _ignore)

    branch = store.get_branch(USER, "s", edited.branch)
    main = store.get_branch(USER, "s", "main")
    session = store.get_session(USER, "s")
    assert (branch.usage.input_tokens, branch.usage.output_tokens) == (50, 5)
    assert (main.usage.input_tokens, main.usage.output_tokens) == (10, 1)
    assert (session.usage.input_tokens, session.usage.total_tokens) == (60, 66)
    _, messages = store.read_newest(USER, "s", None)
    opened = [m.usage.input_tokens for m in messages if m.usage is not None]
    assert opened == [20, 30]  # on each turn's user message, on this branch


# ------------------------------------------------------------- races and lives (regressions)


def _markers(client: Any, table: str, pk: str) -> list[str]:
    return [r["sk"]["S"] for r in rows_of(client, table, pk) if r["sk"]["S"].startswith("TRIM#")]


def test_a_clear_then_a_delete_keep_what_a_fork_shares(
    store: ChatStore, dynamodb_client: Any, table_name: str
) -> None:
    history(store, "s", 1)
    parent = store.fork_branch(USER, "s", at_seq=0)
    store.append_items(USER, "s", turn(1))
    child = store.fork_branch(USER, "s", source=parent.branch_id, activate=False)

    store.clear_items(USER, "s", branch=parent.branch_id)
    store.delete_branch(USER, "s", parent.branch_id)
    pk = partition_key(USER, "s")
    for marker in _markers(dynamodb_client, table_name, pk):  # in any order: both are no-ops
        store.purge_trimmed(pk, marker)

    assert texts(store, "s", branch=child.branch_id) == ["q1", "a1"]


def test_a_session_an_append_created_has_an_incarnation_for_its_edits(
    store: ChatStore,
) -> None:
    from chat_sessions.store.lease import TurnCommit

    store.append_items(USER, "s", turn(0), create_missing=True)
    store.begin_turn(USER, "s", "t1", lease_seconds=60)
    edit = store.plan_edit(USER, "s")
    branch = store.commit_edit(USER, "s", edit, turn(9), turn=TurnCommit("t1"))

    assert not branch.branch_id.startswith("b_222222")
    assert texts(store, "s") == ["q9", "a9"]
    store.activate_branch(USER, "s", "main")  # and a switch on it needs none of its own
    assert texts(store, "s") == ["q0", "a0"]


def test_an_append_naming_no_branch_follows_a_switch_that_wins_the_race(
    store: ChatStore, make_store: Callable[..., ChatStore], monkeypatch: pytest.MonkeyPatch
) -> None:
    from chat_sessions.store import branch_append

    history(store, "s", 1)
    branch = store.fork_branch(USER, "s")
    other = make_store()
    real = branch_append.updates
    switched: list[object] = []

    def racing(*args: Any, **kwargs: Any) -> Any:
        built = real(*args, **kwargs)
        if not switched:  # the attempt is built; the switch commits before it does
            switched.append(other.activate_branch(USER, "s", "main"))
        return built

    monkeypatch.setattr(branch_append, "updates", racing)
    store.append_items(USER, "s", [{"role": "user", "content": "late"}])

    assert texts(store, "s", branch="main") == ["q0", "a0", "late"]
    assert texts(store, "s", branch=branch.branch_id) == ["q0", "a0"]


def test_an_edit_whose_history_was_cleared_meanwhile_stores_nothing(store: ChatStore) -> None:
    from chat_sessions.errors import ConflictError
    from chat_sessions.store.lease import TurnCommit

    history(store, "s", 3)
    store.begin_turn(USER, "s", "t1", lease_seconds=60)
    edit = store.plan_edit(USER, "s")
    store.clear_items(USER, "s")

    with pytest.raises((ConflictError, MessageNotFoundError)):
        store.commit_edit(USER, "s", edit, turn(9), turn=TurnCommit("t1"))
    assert [b.branch_id for b in store.list_branches(USER, "s").branches] == ["main"]


def test_a_branch_append_retried_after_a_clear_of_main_is_stored_once(store: ChatStore) -> None:
    from chat_sessions.idempotency import IdempotencyRecord

    history(store, "s", 1)
    branch = store.fork_branch(USER, "s", activate=False)
    record = IdempotencyRecord(key="k1", request_hash="h1", response='{"appended":1}', status=201)
    once = [{"role": "user", "content": "once"}]

    store.append_items(USER, "s", once, idempotency=record, branch=branch.branch_id)
    store.clear_items(USER, "s", branch="main")
    again = store.append_items(USER, "s", once, idempotency=record, branch=branch.branch_id)

    assert again.replay is not None
    assert texts(store, "s", branch=branch.branch_id) == ["q0", "a0", "once"]


def test_a_pop_into_a_path_racing_an_append_pops_the_appended_message(
    store: ChatStore, make_store: Callable[..., ChatStore], monkeypatch: pytest.MonkeyPatch
) -> None:
    from chat_sessions.store import branch_history

    history(store, "s", 1)
    branch = store.fork_branch(USER, "s", activate=False)
    other = make_store()
    real = branch_history._shorten

    def racing(*args: Any, **kwargs: Any) -> Any:
        built = real(*args, **kwargs)
        if not texts(other, "s", branch=branch.branch_id)[2:]:
            other.append_items(
                USER, "s", [{"role": "user", "content": "new"}], branch=branch.branch_id
            )
        return built

    monkeypatch.setattr(branch_history, "_shorten", racing)
    popped = store.pop_item(USER, "s", branch=branch.branch_id)

    assert popped is not None and popped.item["content"] == "new"
    assert texts(store, "s", branch=branch.branch_id) == ["q0", "a0"]
