"""Branches (docs/branches.md): forks that copy nothing, views of shared history, the active
branch, listing, renaming and deletion, and the pins that keep shared rows."""

from __future__ import annotations

from typing import Any

import pytest

from chat_sessions import ChatStore
from chat_sessions.errors import (
    BranchNotFoundError,
    InvalidInputError,
    MainBranchError,
    MessageNotFoundError,
    MessageSharedError,
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


def test_main_cannot_pop_a_message_a_branch_shares(store: ChatStore) -> None:
    seqs = history(store, "s", 2)
    branch = store.fork_branch(USER, "s", at_seq=seqs[1], activate=False)

    popped = [store.pop_item(USER, "s"), store.pop_item(USER, "s")]  # not shared: popped
    assert [m.item["content"] for m in popped if m is not None] == ["a1", "q1"]
    with pytest.raises(MessageSharedError):
        store.pop_item(USER, "s")  # a0: the branch's fork point

    assert texts(store, "s", branch=branch.branch_id) == ["q0", "a0"]
    assert texts(store, "s") == ["q0", "a0"]


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
