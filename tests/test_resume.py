"""Resumable streams (docs/chat.md, "Resumable streams"): a turn's events logged in batches and
read back by a client that re-attaches, over real HTTP; the recorder's batching and retries; the
log's place in the session's lifecycle."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest
from test_chat_app import USER, ChatServer, chat_server, parse_sse

from chat_sessions import ChatStore, resumption
from chat_sessions.agent_config import offline_reply
from chat_sessions.errors import StreamIncompleteError
from chat_sessions.resumption import Resumption, StreamRecorder
from chat_sessions.store.stream_log import Batch, Event
from support import FakeClock

__all__ = ["chat_server"]  # the fixture, shared with test_chat_app
EXPIRES = int(time.time()) + 3600


def resume(
    server: ChatServer,
    turn_id: str,
    last_event_id: str | None = None,
    *,
    user: str = USER,
    session_id: str = "c1",
) -> httpx.Response:
    headers = server.headers(user)
    if last_event_id is not None:
        headers["Last-Event-ID"] = last_event_id
    return httpx.get(
        f"{server.url}/v1/sessions/{session_id}/turns/{turn_id}/events",
        headers=headers,
        timeout=30,
    )


def resumed_events(response: httpx.Response) -> list[dict[str, Any]]:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/event-stream")
    return list(parse_sse(iter(response.text.splitlines())))


@contextmanager
def streaming(server: ChatServer, message: str) -> Iterator[Iterator[dict[str, Any]]]:
    """A turn's events as they arrive; leaving the block hangs up."""
    with httpx.stream(
        "POST",
        f"{server.url}/v1/sessions/c1/chat",
        json={"message": message},
        headers=server.headers(),
        timeout=30,
    ) as response:
        yield parse_sse(response.iter_lines())


def full_turn(server: ChatServer, message: str) -> list[dict[str, Any]]:
    with streaming(server, message) as events:
        return list(events)


# --------------------------------------------------------------------------------- over HTTP


def test_a_finished_turn_resumes_with_exactly_the_events_it_sent(chat_server: ChatServer) -> None:
    live = full_turn(chat_server, "what did I miss")
    turn_id = live[0]["data"]["turn_id"]

    from_start = resumed_events(resume(chat_server, turn_id))
    after_five = resumed_events(resume(chat_server, turn_id, "5"))

    assert from_start == live  # same ids, names and data, the same done
    assert after_five == live[5:]
    assert resumed_events(resume(chat_server, turn_id, str(len(live)))) == []
    text = "".join(e["data"]["delta"] for e in from_start if e["event"] == "token")
    assert text == offline_reply("what did I miss")


def test_a_new_chats_turn_resumes_from_its_turn_event(chat_server: ChatServer) -> None:
    with httpx.stream(
        "POST",
        f"{chat_server.url}/v1/chat",
        json={"message": "a new one"},
        headers=chat_server.headers(),
        timeout=30,
    ) as response:
        live = list(parse_sse(response.iter_lines()))
    session_id = live[0]["data"]["session_id"]

    resumed = resumed_events(resume(chat_server, live[1]["data"]["turn_id"], session_id=session_id))

    assert [e["event"] for e in live[:2]] == ["session", "turn"]
    assert resumed == live[1:]  # the session event is the URL's: not logged


def test_a_client_that_dropped_mid_answer_gets_the_rest_then_the_live_end(
    chat_server: ChatServer,
) -> None:
    chat_server.gate.held = True
    with streaming(chat_server, "one two three four five six") as events:
        chat_server.gate.let_through(2)
        seen = [next(events), next(events), next(events)]  # turn, then two words
    # The client went away; the model is held before its third word.
    turn_id = seen[0]["data"]["turn_id"]
    assert chat_server.store.get_session(USER, "c1").turn_in_progress == turn_id
    got: list[httpx.Response] = []
    reader = threading.Thread(target=lambda: got.append(resume(chat_server, turn_id, "3")))
    reader.start()
    time.sleep(0.3)  # the resume is waiting on the log: the rest is not written yet
    assert reader.is_alive()
    chat_server.gate.open()
    reader.join(30)

    rest = resumed_events(got[0])
    assert [e["id"] for e in rest] == [str(i) for i in range(4, 4 + len(rest))]
    words = [e["data"]["delta"] for e in seen[1:] + rest if e["event"] == "token"]
    assert "".join(words) == offline_reply("one two three four five six")
    assert rest[-1]["event"] == "done" and rest[-1]["data"]["message_count"] == 2
    assert chat_server.store.get_session(USER, "c1").turn_in_progress is None


def test_a_second_reader_follows_a_running_turn_from_its_start(chat_server: ChatServer) -> None:
    chat_server.gate.held = True
    got: list[list[dict[str, Any]]] = []
    with streaming(chat_server, "watch me") as events:
        turn = next(events)
        assert turn["data"]["message"] == "watch me"
        second = threading.Thread(
            target=lambda: got.append(resumed_events(resume(chat_server, turn["data"]["turn_id"])))
        )
        second.start()
        chat_server.gate.open()
        live = [turn, *events]
        second.join(30)
    assert got[0] == live


def test_an_unknown_turn_or_another_users_is_not_found(chat_server: ChatServer) -> None:
    live = full_turn(chat_server, "mine")
    turn_id = live[0]["data"]["turn_id"]
    chat_server.store.create_session("mallory", "c1")

    unknown = resume(chat_server, "0" * 32)
    malformed = resume(chat_server, "SESSION%23x")
    others = resume(chat_server, turn_id, user="mallory")  # her own session c1: no such turn
    no_session = resume(chat_server, turn_id, session_id="c2")

    assert (unknown.status_code, unknown.json()["error"]["code"]) == (404, "turn_not_found")
    assert (malformed.status_code, malformed.json()["error"]["code"]) == (404, "turn_not_found")
    assert (others.status_code, others.json()["error"]["code"]) == (404, "turn_not_found")
    assert (no_session.status_code, no_session.json()["error"]["code"]) == (
        404,
        "session_not_found",
    )
    assert "mine" not in others.text


@pytest.mark.parametrize("bad", ["-1", "abc", "1.5", "9" * 12, "1 2", "0x1"])
def test_a_bad_last_event_id_is_refused(chat_server: ChatServer, bad: str) -> None:
    turn_id = full_turn(chat_server, "hi")[0]["data"]["turn_id"]

    answer = resume(chat_server, turn_id, bad)

    assert (answer.status_code, answer.json()["error"]["code"]) == (422, "invalid_input")


def test_a_resume_needs_a_token(chat_server: ChatServer) -> None:
    turn_id = full_turn(chat_server, "hi")[0]["data"]["turn_id"]

    answer = httpx.get(f"{chat_server.url}/v1/sessions/c1/turns/{turn_id}/events")

    assert (answer.status_code, answer.json()["error"]["code"]) == (401, "unauthorized")


def test_a_cleared_history_hides_its_turns_logs(chat_server: ChatServer) -> None:
    turn_id = full_turn(chat_server, "forget this")[0]["data"]["turn_id"]
    chat_server.store.clear_items(USER, "c1")

    answer = resume(chat_server, turn_id)

    assert (answer.status_code, answer.json()["error"]["code"]) == (404, "turn_not_found")


def test_a_buffered_turn_is_not_logged(chat_server: ChatServer) -> None:
    from test_chat_app import chat_buffered

    assert chat_buffered(chat_server, "no one will resume this").status_code == 200
    assert log_rows(chat_server.store) == []


def test_a_new_chat_on_a_branch_is_refused_before_it_streams(chat_server: ChatServer) -> None:
    answer = httpx.post(
        f"{chat_server.url}/v1/chat",
        json={"message": "hi", "branch": "b_" + "a" * 20},
        headers={**chat_server.headers(), "Idempotency-Key": "k-branch"},
    )

    assert (answer.status_code, answer.json()["error"]["code"]) == (404, "branch_not_found")
    made = chat_server.store.list_sessions(USER).sessions
    assert [s.turn_in_progress for s in made if s.session_id != "c1"] == [None]  # released


def test_a_failed_turn_resumes_with_its_error(chat_server: ChatServer) -> None:
    from test_chat_app import failing_agent
    from test_upstream import RATE_LIMITED

    chat_server.agent[0] = failing_agent(RATE_LIMITED.make())
    live = full_turn(chat_server, "hello?")

    assert [e["event"] for e in live] == ["turn", "error"]
    assert resumed_events(resume(chat_server, live[0]["data"]["turn_id"])) == live


# ------------------------------------------------------------------------- the log in storage


def log_rows(store: ChatStore, session_id: str = "c1") -> list[dict[str, Any]]:
    client = store._ctx.table.client
    pk = f"{USER}#{session_id}"
    found = client.query(
        TableName=store.table_name,
        KeyConditionExpression="pk = :pk AND begins_with(sk, :p)",
        ExpressionAttributeValues={":pk": {"S": pk}, ":p": {"S": "TURN#"}},
        ConsistentRead=True,
    )
    return list(found["Items"])


def test_the_log_is_a_few_batches_that_expire_and_go_with_the_session(
    chat_server: ChatServer,
) -> None:
    live = full_turn(chat_server, " ".join(["word"] * 60))
    rows = log_rows(chat_server.store)

    assert 1 <= len(rows) <= 3  # a turn of milliseconds: the first batch, the rest, the end
    assert len(live) > 60  # not a write per token
    expiries = {int(r["expires_at"]["N"]) for r in rows}
    assert len(expiries) == 1  # the whole log expires at once, an hour after the turn began
    assert time.time() + 3600 - 60 <= expiries.pop() <= time.time() + 3600
    assert [r["final"]["BOOL"] for r in rows] == [False] * (len(rows) - 1) + [True]
    header = chat_server.store.get_session(USER, "c1")
    chat_server.store.delete_session(USER, "c1")
    chat_server.store.purge_session(f"{USER}#c1", up_to_seq=header.last_seq)
    assert log_rows(chat_server.store) == []


def test_a_purge_leaves_the_logs_of_a_session_made_again_with_the_same_id(
    chat_server: ChatServer,
) -> None:
    old = chat_server.store.get_session(USER, "c1")
    chat_server.store.delete_session(USER, "c1")
    chat_server.store.create_session(USER, "c1")
    full_turn(chat_server, "a new life")

    chat_server.store.purge_session(f"{USER}#c1", up_to_seq=old.last_seq)

    assert len(log_rows(chat_server.store)) >= 1


# ------------------------------------------------------------------------------- the recorder


class Log:
    """A stand-in table for one turn's batches: what each key holds after the last write, with
    writes that fail on demand (before or after being applied)."""

    def __init__(self) -> None:
        self.batches: dict[int, Batch] = {}
        self.writes = 0
        self.fail: set[int] = set()
        """Write numbers (1-based) that raise without being applied."""
        self.lose_answer: set[int] = set()
        """Write numbers that are applied, then raise (the answer lost)."""

    def write(self, batch: Batch) -> None:
        self.writes += 1
        if self.writes in self.fail:
            raise ConnectionError("injected")
        self.batches[batch.index] = batch
        if self.writes in self.lose_answer:
            raise TimeoutError("injected: applied, answer lost")

    def events(self) -> list[Event]:
        return [e for index in sorted(self.batches) for e in self.batches[index].events]


def record(log: Log, events: list[Event], *, gap: float = 0.0, flush: float = 0.05) -> None:
    async def main() -> None:
        recorder = StreamRecorder(log.write, history_start=7, flush_seconds=flush)
        for event in events[:-1]:
            recorder.add(*event)
            await asyncio.sleep(gap)
        recorder.add(*events[-1], final=True)
        await recorder.close()

    asyncio.run(main())


def tokens(count: int) -> list[Event]:
    return [(i, "token", {"delta": f"w{i} "}) for i in range(1, count)] + [
        (count, "done", {"message_count": 2})
    ]


def test_a_burst_of_tokens_is_one_or_two_writes() -> None:
    log = Log()
    record(log, tokens(500))

    assert log.writes <= 3  # the first at once, the rest, the end
    assert log.events() == tokens(500)
    assert log.batches[max(log.batches)].final
    assert all(b.history_start == 7 for b in log.batches.values())


def test_writes_are_paced_not_per_token() -> None:
    log = Log()
    record(log, tokens(60), gap=0.01, flush=0.1)  # ~0.6 s of streaming

    assert 3 <= log.writes <= 10  # about one per flush interval, never one per token
    assert log.events() == tokens(60)


@pytest.mark.parametrize(
    "fault", ["fail", "lose_answer"], ids=["write failed", "applied, answer lost"]
)
@pytest.mark.parametrize("which", [1, 2, 3])
def test_a_write_that_fails_is_retried_as_a_superset(fault: str, which: int) -> None:
    log = Log()
    getattr(log, fault).add(which)
    record(log, tokens(40), gap=0.01, flush=0.05)

    assert log.events() == tokens(40)  # no duplicate, no gap, in order
    assert log.batches[max(log.batches)].final


def test_the_final_batch_is_retried_then_given_up() -> None:
    log = Log()
    log.fail.update(range(1, 100))
    record(log, tokens(3))

    assert log.writes == resumption.FINAL_ATTEMPTS
    assert log.batches == {}


def test_an_event_too_large_for_a_batch_is_logged_as_a_stand_in() -> None:
    huge = "x" * (resumption.MAX_BATCH_BYTES + 10)
    events: list[Event] = [
        (1, "turn", {"turn_id": "t", "message": "m", "branch": "main"}),
        (2, "tool_output", {"call_id": "c", "output": huge}),
        (3, "done", {"message_count": 3}),
    ]
    log = Log()
    record(log, events)

    logged = log.events()
    assert logged[1][2]["call_id"] == "c"  # still matches its tool call
    assert logged[1][2]["output"].startswith("[omitted from the stream log: 300010 bytes")
    assert [e[0] for e in logged] == [1, 2, 3]


def test_a_batch_cut_at_its_size_still_ends_the_log() -> None:
    big = "y" * 200_000
    events: list[Event] = [
        (1, "turn", {"turn_id": "t", "message": "m", "branch": "main"}),
        (2, "tool_output", {"call_id": "a", "output": big}),
        (3, "tool_output", {"call_id": "b", "output": big}),
        (4, "done", {"message_count": 5}),
    ]
    log = Log()

    async def main() -> None:
        recorder = StreamRecorder(log.write, history_start=7, flush_seconds=60)
        recorder.add(*events[0])
        await asyncio.sleep(0.05)  # the first batch is out; the recorder now waits 60 s
        for event in events[1:-1]:
            recorder.add(*event)
        recorder.add(*events[-1], final=True)  # a 400 KB flush: cut in two
        await asyncio.wait_for(recorder.close(), 10)

    asyncio.run(main())

    assert log.events() == events
    assert [len(log.batches[i].events) for i in sorted(log.batches)] == [1, 1, 2]
    assert log.batches[2].final


def test_failures_before_the_end_do_not_spend_the_final_attempts() -> None:
    log = Log()
    log.fail.update({2, 3, 4})  # the writes after the first, while tokens still come
    record(log, tokens(30), gap=0.01, flush=0.02)

    assert log.events() == tokens(30)
    assert log.batches[max(log.batches)].final


# ---------------------------------------------------------------------- a writer that vanished


@pytest.fixture
def quick_resume(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(resumption, "POLL_SECONDS", 0.02)
    monkeypatch.setattr(resumption, "LEASE_CHECK_SECONDS", 0.1)
    monkeypatch.setattr(resumption, "GRACE_SECONDS", 0.2)


def collected(resumed: Resumption) -> list[Event]:
    async def main() -> list[Event]:
        return [e async for e in resumed.events() if e is not None]

    return asyncio.run(main())


def opened_on(store: ChatStore, turn: str) -> Resumption:
    """A resume of ``turn`` of session "s" from its start."""
    return asyncio.run(Resumption.open(store, USER, "s", turn, 0, limit_seconds=60))


def test_a_write_that_lands_late_never_shrinks_a_batch(
    make_store: Callable[..., ChatStore],
) -> None:
    store = make_store(clock=time.time)
    session, _ = store.create_session(USER, "s")
    turn, start = "9" * 32, session.history_start
    store.log_stream(USER, "s", turn, Batch(0, tokens(4)[:3], False, start, EXPIRES))
    store.log_stream(USER, "s", turn, Batch(0, tokens(4)[:2], False, start, EXPIRES))  # stale

    assert store.read_stream_log(USER, "s", turn, 0)[0].events == tokens(4)[:3]


def test_a_log_with_a_gap_ends_with_stream_incomplete(
    make_store: Callable[..., ChatStore], quick_resume: None
) -> None:
    store = make_store(clock=time.time)
    session, _ = store.create_session(USER, "s")
    turn, start = "8" * 32, session.history_start
    store.log_stream(USER, "s", turn, Batch(0, tokens(6)[:2], False, start, EXPIRES))
    store.log_stream(USER, "s", turn, Batch(2, tokens(6)[4:], True, start, EXPIRES))
    opened = opened_on(store, turn)

    with pytest.raises(StreamIncompleteError):
        collected(opened)
    assert opened.last_id == 2  # up to the gap, never past it


def test_a_turn_whose_writer_crashed_ends_with_stream_incomplete(
    make_store: Callable[..., ChatStore], quick_resume: None
) -> None:
    store = make_store(clock=time.time)
    session, _ = store.create_session(USER, "s")
    turn, start = "a" * 32, session.history_start
    store.begin_turn(USER, "s", turn, lease_seconds=60)
    store.log_stream(USER, "s", turn, Batch(0, tokens(3)[:2], False, start, EXPIRES))
    store.end_turn(USER, "s", turn)  # as if the lease lapsed: no one will write the end

    opened = opened_on(store, turn)

    with pytest.raises(StreamIncompleteError):
        collected(opened)
    assert opened.last_id == 2  # what was logged was delivered first


def test_a_running_turn_with_nothing_logged_yet_is_followed(
    make_store: Callable[..., ChatStore], quick_resume: None
) -> None:
    store = make_store(clock=time.time)
    session, _ = store.create_session(USER, "s")
    turn, start = "b" * 32, session.history_start
    store.begin_turn(USER, "s", turn, lease_seconds=60)
    opened = opened_on(store, turn)

    def writer() -> None:
        time.sleep(0.15)
        store.log_stream(USER, "s", turn, Batch(0, tokens(4)[:2], False, start, EXPIRES))
        time.sleep(0.15)
        store.log_stream(USER, "s", turn, Batch(0, tokens(4)[:3], False, start, EXPIRES))
        store.log_stream(USER, "s", turn, Batch(1, tokens(4)[3:], True, start, EXPIRES))

    thread = threading.Thread(target=writer)
    thread.start()
    events = collected(opened)
    thread.join()

    assert events == tokens(4)  # batch 0 grew between reads: nothing twice, nothing missed


def test_the_session_shows_its_running_turn(make_store: Callable[..., ChatStore]) -> None:
    clock = FakeClock()
    store = make_store(clock=clock)
    store.create_session(USER, "s")
    store.create_session(USER, "t")
    store.begin_turn(USER, "s", "c" * 32, lease_seconds=60)
    store.begin_turn(USER, "t", "d" * 32, lease_seconds=60)

    assert store.get_session(USER, "s").turn_in_progress == "c" * 32
    listed = {s.session_id: s.turn_in_progress for s in store.list_sessions(USER).sessions}
    assert listed == {"s": "c" * 32, "t": "d" * 32}
    store.end_turn(USER, "s", "c" * 32)
    assert store.get_session(USER, "s").turn_in_progress is None
    clock.advance(61)  # a lapsed lease is no one's turn
    assert store.get_session(USER, "t").turn_in_progress is None
