"""What docs/openapi.json says about each route beyond its types: its tag, operationId, summary,
description and examples, and the chat stream's events. The facts come from docs/api.md and
docs/chat.md; ``openapi.py`` applies them to the generated document.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any, NotRequired

from pydantic import Field, TypeAdapter
from typing_extensions import TypedDict  # pydantic takes typing's only from Python 3.12

from chat_sessions.chat_app import ChatUsage
from chat_sessions.clock import from_iso
from chat_sessions.models import (
    MAX_METADATA_KEY_CHARS,
    MAX_METADATA_KEYS,
    MAX_METADATA_VALUE_CHARS,
    StoredMessage,
)
from chat_sessions.schemas import MessagePublic

TAGS: tuple[tuple[str, str], ...] = (
    ("sessions", "Conversations: create, list by metadata, read, update, delete, retitle."),
    ("messages", "A session's history of Agents SDK items: list, append, clear, remove the last."),
    (
        "branches",
        "A session's tree of conversations: fork at a message, list, rename, switch, delete.",
    ),
    ("chat", "Agent turns: a message in, the answer out, as JSON or Server-Sent Events."),
    ("deletions", "Deleting every session of the caller in the background, and its progress."),
    ("health", "Liveness, without a token."),
)
"""The document's tags, in the order Swagger UI shows them, with their descriptions."""


@dataclass(frozen=True)
class Operation:
    tag: str
    operation_id: str
    summary: str
    description: str
    request_examples: Mapping[str, Any] = field(default_factory=dict)
    """JSON request bodies, by example name."""
    response_examples: Mapping[int, Mapping[str, Any]] = field(default_factory=dict)
    """JSON response bodies, by status and example name."""
    query_parameters: tuple[dict[str, Any], ...] = ()
    """Query parameters the route reads that its signature cannot declare."""
    events: tuple[str, ...] = ()
    """The Server-Sent Events the route streams (names in ``SSE_EVENTS``)."""
    stream_examples: Mapping[str, str] = field(default_factory=dict)
    """Example streams (``text/event-stream`` bodies), by example name."""


# --- Parameters -----------------------------------------------------------------------------

PARAMETER_DESCRIPTIONS: dict[str, str] = {
    "session_id": "The session's id (the caller's own, or the one the API chose), "
    "percent-encoded as UTF-8: `caf%C3%A9%20%231` is `café #1`.",
    "deletion_id": "The id a `DELETE /v1/sessions` answered (its `Location` header).",
    "limit": "The page size, 1-100.",
    "cursor": "The previous page's `next_cursor`, exactly as received; absent for the first page.",
    "order": "`asc`: oldest first; `desc`: newest first. Keep it the same while paging.",
    "branch_id": "`main`, or the id `POST /v1/sessions/{session_id}/branches` answered.",
    "branch": "The branch (`main`, or an id `POST /v1/sessions/{session_id}/branches` "
    "answered); absent: the session's active branch. One the session does not have is 404 "
    "`branch_not_found`.",
}
"""For parameters the code leaves without a description."""

METADATA_PREFIX = "metadata."
METADATA_FILTER: dict[str, Any] = {
    "name": "metadata",
    "in": "query",
    "required": False,
    "style": "form",
    "explode": True,
    "description": "Only sessions whose metadata has every given pair: each pair is its own "
    "query parameter `metadata.<key>=<value>`, e.g. `?metadata.topic=travel`. Here, an object "
    'of those parameters: `{"metadata.topic": "travel"}`.',
    "schema": {
        "type": "object",
        "propertyNames": {
            "pattern": "^metadata\\.",
            "minLength": len(METADATA_PREFIX) + 1,
            "maxLength": len(METADATA_PREFIX) + MAX_METADATA_KEY_CHARS,
        },
        "additionalProperties": {"type": "string", "maxLength": MAX_METADATA_VALUE_CHARS},
        "maxProperties": MAX_METADATA_KEYS,
    },
    "example": {"metadata.topic": "travel"},
}
"""``?metadata.<key>=<value>``: as a form-exploded object, whose property names carry the
prefix, so Swagger UI and schemathesis send the very names the API reads."""


# --- The chat stream ------------------------------------------------------------------------


class SseSessionEvent(TypedDict):
    """First, on `POST /v1/chat` only: the new session."""

    session_id: str


class SseTurnEvent(TypedDict):
    """First on every live turn (after `session`), once the lease is held and before the model
    starts. Re-attach to the turn's stream with its id on the function URL: GET
    /v1/sessions/{session_id}/turns/{turn_id}/events, with Last-Event-ID (docs/chat.md)."""

    turn_id: str
    message: Annotated[
        str,
        Field(
            description="The user message the turn answers (a regeneration's: the one asked again)."
        ),
    ]
    branch: Annotated[str, Field(description="Where the turn will be stored.")]


class SseTokenEvent(TypedDict):
    """The next piece of the answer's text (a replayed turn sends it whole, as one token)."""

    delta: str


class SseToolCallEvent(TypedDict):
    """The agent called a tool."""

    name: str
    call_id: str
    arguments: Annotated[str, Field(description="The call's arguments, a JSON text.")]


class SseToolOutputEvent(TypedDict):
    """What the tool of `call_id` returned."""

    call_id: str
    output: Annotated[str, Field(description="JSON text when the tool returned no string.")]


class SseDoneEvent(TypedDict):
    """Terminal: the turn is stored."""

    message_count: Annotated[
        int,
        Field(
            description="The session's messages after the turn. A plain append that raced the "
            "turn is not counted; GET /v1/sessions/{session_id} has the exact figure."
        ),
    ]
    usage: Annotated[ChatUsage, Field(description="The tokens this turn spent.")]
    title: Annotated[
        str | None, Field(description="The session's title (generated after the first turn).")
    ]
    branch: Annotated[
        str,
        Field(description="Where the turn was stored: its branch, or the new one an edit made."),
    ]


class SseErrorEvent(TypedDict):
    """Terminal: the turn failed after the stream started; nothing was stored."""

    code: str
    message: str
    retryable: Annotated[bool, Field(description="Whether the same message may succeed later.")]
    retry_after: NotRequired[
        Annotated[int, Field(description="Seconds to wait before retrying, when known.")]
    ]


SSE_EVENTS: dict[str, TypeAdapter[Any]] = {
    "session": TypeAdapter(SseSessionEvent),
    "turn": TypeAdapter(SseTurnEvent),
    "token": TypeAdapter(SseTokenEvent),
    "tool_call": TypeAdapter(SseToolCallEvent),
    "tool_output": TypeAdapter(SseToolOutputEvent),
    "done": TypeAdapter(SseDoneEvent),
    "error": TypeAdapter(SseErrorEvent),
}
"""Each event's name and the type of its ``data``."""
TURN_EVENTS = ("turn", "token", "tool_call", "tool_output", "done", "error")
"""What every chat turn may stream (``POST /v1/chat`` sends ``session`` first)."""


def sse_text(events: list[tuple[str, dict[str, Any]]]) -> str:
    """Events in the chat app's wire format: ``id``, ``event`` and one line of JSON ``data``."""
    return "".join(
        f"id: {number}\nevent: {name}\n"
        f"data: {json.dumps(data, ensure_ascii=False, separators=(',', ':'))}\n\n"
        for number, (name, data) in enumerate(events, start=1)
    )


# --- Example bodies -------------------------------------------------------------------------

USAGE = {"input_tokens": 812, "output_tokens": 164, "total_tokens": 976}
NO_USAGE = {"input_tokens": 0, "output_tokens": 0, "total_tokens": 0}
SESSION = {
    "session_id": "trip-to-lisbon",
    "title": "Trip to Lisbon",
    "metadata": {"topic": "travel"},
    "message_count": 4,
    "created_at": "2026-11-21T17:29:34.123456Z",
    "updated_at": "2026-11-21T17:30:12.905118Z",
    "expires_at": "2026-11-28T17:30:12.000000Z",
    "ttl_seconds": 604800,
    "usage": USAGE,
    "active_branch": "main",
    "turn_in_progress": None,
}
NEW_SESSION = {
    **SESSION,
    "message_count": 0,
    "updated_at": SESSION["created_at"],
    "expires_at": "2026-11-28T17:29:34.000000Z",
    "usage": NO_USAGE,
}
UNNAMED_SESSION = {
    **NEW_SESSION,
    "session_id": "082b99fddf794ef7bf50e7e1ae2fc977",
    "title": None,
    "metadata": {},
    "ttl_seconds": 86400,
    "expires_at": "2026-11-22T17:29:34.000000Z",
}
ANSWER = "Alfama is the quieter of the two: small streets, few bars."
PORTO_ANSWER = "Two days in Porto: the Ribeira first, then the port cellars of Gaia."
TOOL_OUTPUT = "Alfama: 12 hotels, quiet streets. Chiado: 30 hotels, lively at night."


def assistant_item(item_id: str, text: str) -> dict[str, Any]:
    """An answer as the Agents SDK stores it."""
    return {
        "id": item_id,
        "type": "message",
        "role": "assistant",
        "status": "completed",
        "content": [{"type": "output_text", "text": text, "annotations": [], "logprobs": []}],
    }


def listed(seq: int, item: dict[str, Any]) -> dict[str, Any]:
    """A stored item as ``GET .../messages`` lists it (by the API's own conversion)."""
    stored = StoredMessage(seq=seq, item=item, created_at=from_iso(TURN_STORED_AT))
    return MessagePublic.of(stored).model_dump(mode="json")


USER_ITEM = {"role": "user", "content": "Which is quieter?"}
TOOL_CALL_ITEM = {
    "type": "function_call",
    "call_id": "call_8Yq2",
    "name": "search_hotels",
    "arguments": '{"city":"Lisbon"}',
}
TOOL_OUTPUT_ITEM = {"type": "function_call_output", "call_id": "call_8Yq2", "output": TOOL_OUTPUT}
ASSISTANT_ITEM = assistant_item("msg_67f2a1c9e8", ANSWER)
TURN_STORED_AT = "2026-11-21T17:30:12.905118Z"
"""A turn's items are stored together, in one transaction."""
MESSAGES = [
    listed(1795282212905117 + offset, item)
    for offset, item in enumerate([USER_ITEM, TOOL_CALL_ITEM, TOOL_OUTPUT_ITEM, ASSISTANT_ITEM])
]
"""One turn that used a tool, as ``GET .../messages`` lists it."""
CURSOR = (
    "eyJ2IjoxLCJrIjoic2Vzc2lvbnMiLCJ1IjoiMjAyNi0xMS0yMVQxNzozMDoxMi45MDUxMThaIiwicCI6InRyaXAtdG8t"
    "bGlzYm9uIn0"
)
"""A real cursor: where the listing continues after the session above."""
DELETION = {
    "deletion_id": "54a7e4016f094bc889c00bbb8af2f803",
    "status": "pending",
    "sessions_deleted": 0,
    "requested_at": "2026-11-21T18:02:47.970153Z",
    "completed_at": None,
}
BRANCH_ID = "b_gk4odm3oct3kncjfjnvb"
MAIN_BRANCH = {
    "branch_id": "main",
    "name": None,
    "parent_branch": None,
    "fork_seq": None,
    "message_count": 4,
    "created_at": SESSION["created_at"],
    "updated_at": TURN_STORED_AT,
    "active": False,
}
BRANCH = {
    "branch_id": BRANCH_ID,
    "name": "Quieter areas",
    "parent_branch": "main",
    "fork_seq": MESSAGES[0]["seq"],
    "message_count": 1,
    "created_at": "2026-11-21T17:31:40.211093Z",
    "updated_at": "2026-11-21T17:31:40.211093Z",
    "active": True,
}
"""A fork of the turn above at its user message (the first of ``MESSAGES``), made active."""
TOOL_OUTPUT = "Alfama: 12 hotels, quiet streets. Chiado: 30 hotels, lively at night."
CHAT_REPLY = {
    "session_id": "trip-to-lisbon",
    "output": ANSWER,
    "new_items": [TOOL_CALL_ITEM, TOOL_OUTPUT_ITEM, ASSISTANT_ITEM],
    "usage": USAGE,
    "branch": "main",
}
TURN_ID = "4f1c0e9a7b2d4c6e8a0b1c2d3e4f5a6b"
TURN_STREAM = sse_text(
    [
        ("turn", {"turn_id": TURN_ID, "message": USER_ITEM["content"], "branch": "main"}),
        ("tool_call", {k: TOOL_CALL_ITEM[k] for k in ("name", "call_id", "arguments")}),
        ("tool_output", {k: TOOL_OUTPUT_ITEM[k] for k in ("call_id", "output")}),
        ("token", {"delta": "Alfama is the quieter of the two: "}),
        ("token", {"delta": "small streets, few bars."}),
        (
            "done",
            {"message_count": 8, "usage": USAGE, "title": "Trip to Lisbon", "branch": "main"},
        ),
    ]
)
FAILED_TURN_STREAM = sse_text(
    [
        ("turn", {"turn_id": TURN_ID, "message": USER_ITEM["content"], "branch": "main"}),
        ("token", {"delta": "Alfama is "}),
        (
            "error",
            {
                "code": "model_unavailable",
                "message": "the model provider failed",
                "retryable": True,
                "retry_after": 5,
            },
        ),
    ]
)
NEW_CHAT_ID = "f50146dcbefb4113cc82ef8ce0df778c"
NEW_CHAT_STREAM = sse_text(
    [
        ("session", {"session_id": NEW_CHAT_ID}),
        ("turn", {"turn_id": TURN_ID, "message": "Plan a weekend in Porto", "branch": "main"}),
        ("token", {"delta": "Two days in Porto: "}),
        ("token", {"delta": "the Ribeira first, then the port cellars of Gaia."}),
        (
            "done",
            {
                "message_count": 2,
                "usage": USAGE,
                "title": "Plan a weekend in Porto",
                "branch": "main",
            },
        ),
    ]
)
NEW_CHAT_REPLY = {
    "session_id": NEW_CHAT_ID,
    "output": PORTO_ANSWER,
    "new_items": [assistant_item("msg_0c3d77b41a", PORTO_ANSWER)],
    "usage": USAGE,
    "branch": "main",
}

# --- The routes -----------------------------------------------------------------------------

NOT_YOURS = "An unknown, expired or another user's session is 404 `session_not_found`, never 403."
ON_A_BRANCH = (
    "On the branch `branch` names; absent, the session's active branch (`main` until another "
    "is made active). One the session does not have is 404 `branch_not_found`."
)
PAGING = "Pass `next_cursor` back as `cursor` until it is `null`."
TURN_RULES = (
    "The message is 1-32,000 characters. Without `Accept: text/event-stream` the answer is the "
    "buffered JSON reply; with it, Server-Sent Events (see the 200 response). Through the HTTP "
    "API the answer arrives in one piece; the chat function URL streams it as it happens.\n\n"
    "The turn (the message and everything the agent produced) is stored atomically when the "
    "run completes, also if the client has gone; on failure nothing is stored. One turn at a "
    "time per session: 409 `turn_in_progress` while another runs. Errors found before the "
    "stream starts use the status table; after it starts they are a terminal `error` event.\n\n"
    "With `Idempotency-Key`, a retry of a finished turn gets its reply again (as JSON, or as a "
    "short replayed stream ending in the same `done`) without running the model, marked "
    "`Idempotent-Replayed: true`; a retry while the turn still runs is 409 `turn_in_progress`."
)

OPERATIONS: dict[str, Operation] = {
    "POST /v1/sessions": Operation(
        tag="sessions",
        operation_id="createSession",
        summary="Create a session",
        description="Every field is optional: without `session_id` the API picks an id. "
        "`ttl_seconds` is the session's idle lifetime (every write moves `expires_at` to now + "
        "`ttl_seconds`), within the deployment's bounds, else 422 `invalid_input`; absent, the "
        "deployment's. `metadata`: at most 16 string pairs, keys of 1-64 and values of at most "
        "512 characters, 2 KiB as JSON.\n\n"
        "Idempotent by id: when the caller already has a session with this `session_id`, the "
        "answer is 200 with that session, unchanged.",
        request_examples={
            "with your own id": {
                "session_id": "trip-to-lisbon",
                "title": "Trip to Lisbon",
                "metadata": {"topic": "travel"},
            },
            "an id chosen by the API, one day idle lifetime": {"ttl_seconds": 86400},
        },
        response_examples={
            201: {"created": NEW_SESSION, "created with a generated id": UNNAMED_SESSION},
            200: {"the caller's existing session": SESSION},
        },
    ),
    "GET /v1/sessions": Operation(
        tag="sessions",
        operation_id="listSessions",
        summary="List your sessions",
        description="The caller's sessions, newest activity first. "
        f"{PAGING}\n\n"
        "Filter by metadata with `metadata.<key>=<value>` query parameters, for example "
        "`?metadata.topic=travel`; every pair must match. Each call reads a bounded slice of "
        "the index (at most 4 pages), so a sparse filter may answer fewer than `limit` "
        "sessions, even none, with a `next_cursor`: keep paging until it is `null`.",
        query_parameters=(METADATA_FILTER,),
        response_examples={
            200: {
                "a page with more to come": {"sessions": [SESSION], "next_cursor": CURSOR},
                "the last page": {"sessions": [SESSION], "next_cursor": None},
            }
        },
    ),
    "GET /v1/sessions/{session_id}": Operation(
        tag="sessions",
        operation_id="getSession",
        summary="Get a session",
        description=f"One of the caller's sessions, with its `message_count` and `usage`. "
        f"{NOT_YOURS}",
        response_examples={200: {"a session": SESSION}},
    ),
    "PATCH /v1/sessions/{session_id}": Operation(
        tag="sessions",
        operation_id="updateSession",
        summary="Change a session's title or metadata",
        description="Absent fields stay as they are. `title: null` removes the title (so a "
        "title can be generated again); `metadata` replaces the whole object. "
        f"{NOT_YOURS}",
        request_examples={
            "rename": {"title": "Lisbon, May"},
            "remove the title, replace the metadata": {
                "title": None,
                "metadata": {"topic": "travel", "year": "2027"},
            },
        },
        response_examples={200: {"the updated session": SESSION | {"title": "Lisbon, May"}}},
    ),
    "DELETE /v1/sessions/{session_id}": Operation(
        tag="sessions",
        operation_id="deleteSession",
        summary="Delete a session",
        description="The session and its messages are gone at once; their items are "
        "physically removed within seconds by the stream cascade. Idempotent: 204 also when "
        "the session does not exist.",
    ),
    "POST /v1/sessions/{session_id}/title": Operation(
        tag="sessions",
        operation_id="regenerateTitle",
        summary="Generate a new title",
        description="A new title from the session's first user message: written by the model "
        "when one is configured (at most six words), otherwise the message's first words (at "
        "most 60 characters). 409 `title_set_by_user` when the user set the title: PATCH "
        "`title: null` first. 404 `message_not_found` when there is no user message yet. "
        f"{NOT_YOURS}",
        response_examples={200: {"the retitled session": SESSION}},
    ),
    "GET /v1/sessions/{session_id}/messages": Operation(
        tag="messages",
        operation_id="listMessages",
        summary="List a session's messages",
        description="One page of the history, oldest first (`order=desc`: newest first). "
        f"{PAGING} Keep the same `order`.\n\n"
        '`item` is the stored Agents SDK item, exactly; `text` is its display text (`""` for '
        "items without text, such as a function call). "
        f"{ON_A_BRANCH} {NOT_YOURS}",
        response_examples={
            200: {
                "a turn with a tool call": {
                    "messages": MESSAGES,
                    "next_cursor": None,
                }
            }
        },
    ),
    "POST /v1/sessions/{session_id}/messages": Operation(
        tag="messages",
        operation_id="appendMessages",
        summary="Append messages",
        description="Stores 1-1,000 Agents SDK input items atomically, in order: their seqs "
        "are `first_seq` … `last_seq`. The body is up to 5 MiB, one item up to 1 MiB as JSON; "
        "over that, 413 and nothing is written. The session's `message_count` is on "
        "GET /v1/sessions/{session_id}.\n\n"
        "With `Idempotency-Key`, a retry with the same body within 24 hours answers the "
        "recorded batch (`Idempotent-Replayed: true`) and writes nothing.\n\n"
        "Only `user` and `assistant` messages, unless the token holds the deployment's "
        "trusted-writer scope: instructions, tool calls and outputs are 403 `item_not_allowed` "
        f"(docs/api.md, Prompt integrity). {ON_A_BRANCH} {NOT_YOURS}",
        request_examples={
            "a user message and the answer": {
                "items": [
                    USER_ITEM,
                    {
                        "type": "message",
                        "role": "assistant",
                        "content": [{"type": "output_text", "text": ANSWER, "annotations": []}],
                    },
                ]
            }
        },
        response_examples={
            201: {
                "two items stored": {
                    "appended": 2,
                    "first_seq": 1795282212905117,
                    "last_seq": 1795282212905118,
                }
            }
        },
    ),
    "DELETE /v1/sessions/{session_id}/messages": Operation(
        tag="messages",
        operation_id="clearMessages",
        summary="Clear a session's messages",
        description="Every message is gone at once (and physically removed by the stream "
        "cascade, but the ones other branches share, which stay theirs); the session stays. "
        f"{ON_A_BRANCH} {NOT_YOURS}",
    ),
    "DELETE /v1/sessions/{session_id}/messages/last": Operation(
        tag="messages",
        operation_id="popMessage",
        summary="Remove the last message",
        description="Removes and returns the newest message. 404 `message_not_found` when the "
        "history is empty. A message another branch shares stays for that branch. "
        f"{ON_A_BRANCH} {NOT_YOURS}",
        response_examples={200: {"the removed message": {"message": MESSAGES[-1]}}},
    ),
    "GET /v1/sessions/{session_id}/branches": Operation(
        tag="branches",
        operation_id="listBranches",
        summary="List a session's branches",
        description=f"`main` first, then the other branches, newest first. {PAGING} {NOT_YOURS}",
        response_examples={
            200: {"main and a fork": {"branches": [MAIN_BRANCH, BRANCH], "next_cursor": None}}
        },
    ),
    "POST /v1/sessions/{session_id}/branches": Operation(
        tag="branches",
        operation_id="createBranch",
        summary="Fork a branch",
        description="A new branch that shares the history of `source` (absent: the active "
        "branch) up to and including the message `from_seq` (absent: its newest message; `0`: "
        "none, an empty branch), and goes its own way after it. It becomes the active branch "
        "unless `activate` is `false`. The fork writes a few items whatever the history's "
        "length; nothing is copied.\n\n"
        "404 `message_not_found` when `from_seq` is not in the source's history, 404 "
        f"`branch_not_found` for an unknown `source`. {NOT_YOURS}",
        request_examples={
            "edit from a message, and switch to it": {
                "from_seq": MESSAGES[0]["seq"],
                "name": "Quieter areas",
            },
            "an empty branch, in the background": {"from_seq": 0, "activate": False},
        },
        response_examples={201: {"forked and active": BRANCH}},
    ),
    "GET /v1/sessions/{session_id}/branches/{branch_id}": Operation(
        tag="branches",
        operation_id="getBranch",
        summary="Get a branch",
        description="One branch: where it was forked from (`parent_branch`, `fork_seq`), its "
        "`message_count` (the messages it shares and its own) and whether it is active. 404 "
        f"`branch_not_found` when the session has no such branch. {NOT_YOURS}",
        response_examples={200: {"a fork": BRANCH, "main": MAIN_BRANCH}},
    ),
    "PATCH /v1/sessions/{session_id}/branches/{branch_id}": Operation(
        tag="branches",
        operation_id="updateBranch",
        summary="Rename a branch, or make it active",
        description="`name` renames it (`null` removes the name; absent: unchanged). "
        "`active: true` makes it the active branch: the one every message route and chat "
        "turn naming no branch uses. At least one of the two. `main` has no name: naming it "
        "is 409 `main_branch`, and nothing changes. 404 `branch_not_found` when the session "
        f"has no such branch. {NOT_YOURS}",
        request_examples={
            "rename": {"name": "Quieter areas, May"},
            "switch to it": {"active": True},
        },
        response_examples={200: {"the branch, active": BRANCH}},
    ),
    "DELETE /v1/sessions/{session_id}/branches/{branch_id}": Operation(
        tag="branches",
        operation_id="deleteBranch",
        summary="Delete a branch",
        description="The branch and its own messages, but the ones other branches share "
        "(they stay theirs); `main` becomes active if it was. Idempotent: 204 also when the "
        "session has no such branch. `main` is 409 `main_branch`: delete or clear the session "
        f"instead. {NOT_YOURS}",
    ),
    "POST /v1/sessions/{session_id}/chat": Operation(
        tag="chat",
        operation_id="chatInSession",
        summary="Run a chat turn",
        description=f"One user message to the agent, on this session's history. {TURN_RULES}\n\n"
        f"{NOT_YOURS}",
        request_examples={"a message": {"message": USER_ITEM["content"]}},
        response_examples={200: {"a turn that used a tool": CHAT_REPLY}},
        events=TURN_EVENTS,
        stream_examples={
            "a turn that used a tool": TURN_STREAM,
            "a turn that failed": FAILED_TURN_STREAM,
        },
    ),
    "POST /v1/chat": Operation(
        tag="chat",
        operation_id="chatInNewSession",
        summary="Start a chat in a new session",
        description="Creates a session and runs its first turn, as "
        "POST /v1/sessions/{session_id}/chat does; the stream starts with a `session` event "
        f"naming it. {TURN_RULES}\n\n"
        "With `Idempotency-Key` the new session's id is derived from the key, so a retry lands "
        "in the same session: use a new key for each new conversation.",
        request_examples={"a message": {"message": "Plan a weekend in Porto"}},
        response_examples={200: {"the first turn": NEW_CHAT_REPLY}},
        events=("session", *TURN_EVENTS),
        stream_examples={"the first turn": NEW_CHAT_STREAM},
    ),
    "DELETE /v1/sessions": Operation(
        tag="deletions",
        operation_id="deleteAllSessions",
        summary="Delete all your sessions",
        description="Deletes every session the caller owns at the time of the request, in the "
        "background. Only with `confirm=delete-all-my-sessions`; otherwise 422 "
        "`confirmation_required` and nothing is deleted. Answers 202 with the deletion and "
        "`Location: /v1/deletions/{deletion_id}`: poll it.",
        response_examples={202: {"accepted": DELETION}},
    ),
    "GET /v1/deletions/{deletion_id}": Operation(
        tag="deletions",
        operation_id="getDeletion",
        summary="Follow a deletion",
        description="`status` is `pending`, `running` (`sessions_deleted` so far) or `done`. "
        "Readable for 30 days; another user's or an unknown deletion is 404 "
        "`deletion_not_found`.",
        response_examples={
            200: {
                "running": DELETION | {"status": "running", "sessions_deleted": 120},
                "done": DELETION
                | {
                    "status": "done",
                    "sessions_deleted": 312,
                    "completed_at": "2026-11-21T18:02:55.120448Z",
                },
            }
        },
    ),
    "GET /v1/health": Operation(
        tag="health",
        operation_id="getHealth",
        summary="Check liveness",
        description='200 `{"status": "ok"}`. No token needed, and no DynamoDB call.',
        response_examples={200: {"healthy": {"status": "ok"}}},
    ),
}
"""Every route of ``chat_sessions.edge.routes.ROUTES``, by route key, in the order Swagger UI
shows them."""
