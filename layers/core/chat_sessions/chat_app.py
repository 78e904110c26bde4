"""The chat app (docs/chat.md): one FastAPI app for the streaming function URL (Server-Sent Events,
under the Lambda Web Adapter) and for the buffered HTTP API routes (JSON, under Mangum).

The edge (``edge.asgi``) checks identity and the request before the app sees it; errors before a
stream starts use the API's status table and body (``chat_sessions.http``).
After it starts, they become a terminal ``error`` event. A client that disconnects does not stop
the turn: it completes and is stored (or, failing, stores nothing).
"""

from __future__ import annotations

import asyncio
import logging
import re
import uuid
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import Depends, FastAPI, Header, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field, model_validator
from starlette.types import ASGIApp, Receive, Scope, Send

from . import service
from .aio import complete_despite_cancellation
from .compaction import summariser
from .edge.asgi import EdgeMiddleware, caller, install_error_handlers
from .edge.events import with_encoded_path
from .edge.identity import Caller
from .errors import TurnNotFoundError
from .event_stream import LiveTurn, last_event_id_of, replay_frames, resumed_frames
from .idempotency import (
    KEY_HEADER,
    KEY_HEADER_DESCRIPTION,
    REPLAYED_HEADER,
    IdempotentRequest,
    derived_session_id,
)
from .models import ApiSessionId, BranchId, ChatSession
from .resumption import Resumption
from .schemas import SessionPublic
from .titles import generate_title
from .turns import Rewrite, TurnResult, TurnSettings, run_turn

if TYPE_CHECKING:  # jwt and cryptography load only where a token is verified (the function URL)
    from .tokens import TokenVerifier

logger = logging.getLogger(__name__)
MAX_MESSAGE_CHARS = 32_000


class ChatRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    message: str = Field(default="", max_length=MAX_MESSAGE_CHARS)
    """The user's message (1 to 32,000 characters); none for a regeneration."""
    branch: BranchId | None = None
    """The branch the turn runs on and stores into; the active one when absent."""
    replaces_seq: int | None = Field(default=None, ge=1)
    """Edit: the user message this turn replaces (docs/branches.md). The turn runs on the history
    before it and is stored as a new branch, made active."""
    regenerate: bool = False
    """Ask again: replace the branch's last user message (or ``replaces_seq``) with itself."""

    @model_validator(mode="after")
    def _a_message_unless_regenerating(self) -> ChatRequest:
        if self.regenerate and self.message:
            raise ValueError("a regeneration takes no message: it asks the replaced one again")
        if not self.regenerate and not self.message:
            raise ValueError("message must be 1 to 32,000 characters")
        return self

    def rewrite(self) -> Rewrite | None:
        if self.replaces_seq is None and not self.regenerate:
            return None
        return Rewrite(replaces_seq=self.replaces_seq, regenerate=self.regenerate)


class ChatUsage(BaseModel):
    input_tokens: int
    output_tokens: int
    total_tokens: int


class ChatReply(BaseModel):
    """The buffered answer: what the stream's events add up to."""

    session_id: str
    output: str
    new_items: list[dict[str, Any]]
    usage: ChatUsage
    branch: str
    """Where the turn was stored: the branch it ran on, or the new one an edit made."""


User = Annotated[Caller, Depends(caller)]
IdempotencyKey = Annotated[
    str | None,
    Header(
        alias=KEY_HEADER.lower(),
        description=f"{KEY_HEADER_DESCRIPTION} On POST /v1/chat the key also names the session.",
    ),
]
LastEventId = Annotated[
    str | None,
    Header(
        alias="last-event-id",
        description="The id of the last event the client has: the stream resumes after it.",
    ),
]
TURN_ID = re.compile(r"[0-9a-f]{32}")
"""A turn's id, as ``turn`` events name it."""
CHAT_ROUTE = "POST /v1/sessions/{session_id}/chat"
NEW_CHAT_ROUTE = "POST /v1/chat"

TURN_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "model": ChatReply,
        "description": "The turn: buffered JSON, or with Accept: text/event-stream, Server-Sent "
        "Events (token, tool_call, tool_output, then done or error)",
        "content": {"text/event-stream": {"schema": {"type": "string"}}},
    }
}


RESUME_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "Server-Sent Events: the turn's events after Last-Event-ID, with their "
        "first ids, then the live rest, then its done or error",
        "content": {"text/event-stream": {"schema": {"type": "string"}}},
    }
}


@dataclass(frozen=True)
class _Chat:
    """What a turn needs besides the store (``service.get_store``): made on first use."""

    agent: Callable[[], Any]
    settings: TurnSettings
    title_model: Callable[[], Any] | None

    async def name(self, message: str) -> str:
        return await generate_title(message, self.title_model() if self.title_model else None)

    async def turn(
        self,
        request: Request,
        user_id: str,
        session_id: str,
        body: ChatRequest,
        idempotency: IdempotentRequest | None,
        announce: bool = False,
        opened: ChatSession | None = None,
        turn_id: str | None = None,
    ) -> Response:
        stream = "text/event-stream" in request.headers.get("accept", "")
        store, turn_id = service.get_store(), turn_id or uuid.uuid4().hex
        live = LiveTurn(store, user_id, session_id, turn_id, logged=stream)
        if announce:
            live.announce()
        started = asyncio.Event()

        def on_started(session: ChatSession) -> None:
            live.start(session.history_start)
            started.set()

        task = asyncio.create_task(
            run_turn(
                live.store,
                self.agent(),
                user_id,
                session_id,
                body.message,
                live.emit,
                self.settings,
                on_started,
                title_for=self.name,
                idempotency=idempotency,
                rewrite=body.rewrite(),
                summarise=summariser(self.title_model),
                branch=body.branch,
                turn_id=live.turn_id,
                opened=opened,
            )
        )
        # Lease and window first: a 404 or 409 is a plain JSON error, before any stream.
        waiting = asyncio.create_task(started.wait())
        await asyncio.wait({task, waiting}, return_when=asyncio.FIRST_COMPLETED)
        waiting.cancel()
        if task.done() and not started.is_set():
            result = task.result()  # raises the domain error, or is a replayed turn
            if stream:
                announced = session_id if announce else None
                return _event_stream(replay_frames(result, announced), replayed=True)
            return _json_reply(result)
        finished = asyncio.create_task(live.finish(task))
        if stream:
            return _event_stream(live.frames(finished))
        await complete_despite_cancellation(finished)
        return _json_reply(task.result())

    async def resume(
        self, user_id: str, session_id: str, turn_id: str, last_event_id: str | None
    ) -> Response:
        if not TURN_ID.fullmatch(turn_id):
            raise TurnNotFoundError("no such turn in this session, or its stream log expired")
        resumption = await Resumption.open(
            service.get_store(),
            user_id,
            session_id,
            turn_id,
            last_event_id_of(last_event_id),
            self.settings.lease_seconds,
        )
        return _event_stream(resumed_frames(resumption))


def create_chat_app(
    *,
    agent: Callable[[], Any],
    verifier: Callable[[], TokenVerifier],
    settings: TurnSettings | None = None,
    title_model: Callable[[], Any] | None = None,
    page_config: Callable[[], Mapping[str, Any]] | None = None,
) -> FastAPI:
    """The app behind the edge; its dependencies are factories, resolved on first use (cold
    start stays small). The store is the service's (``service.get_store``). With
    ``page_config``, the chat page is served at ``/`` too (``web``, docs/page.md)."""
    app = FastAPI(
        title="chat-sessions chat",
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
        redirect_slashes=False,  # a trailing slash is an unknown route, as on API Gateway
    )
    install_error_handlers(app)
    chat = _Chat(agent, settings or TurnSettings(), title_model)

    @app.post("/v1/sessions/{session_id}/chat", responses=TURN_RESPONSES)
    async def chat_turn(
        request: Request,
        user: User,
        session_id: ApiSessionId,
        body: ChatRequest,
        idempotency_key: IdempotencyKey = None,
    ) -> Response:
        keyed = None
        if idempotency_key is not None:
            keyed = IdempotentRequest.of(idempotency_key, CHAT_ROUTE, session_id, body)
        return await chat.turn(request, user.user_id, session_id, body, keyed)

    @app.post("/v1/chat", responses=TURN_RESPONSES)
    async def chat_new_session(
        request: Request, user: User, body: ChatRequest, idempotency_key: IdempotencyKey = None
    ) -> Response:
        keyed, wanted = None, None
        if idempotency_key is not None:
            # A retry must land in the first call's session to find its record there.
            keyed = IdempotentRequest.of(idempotency_key, NEW_CHAT_ROUTE, None, body)
            wanted = derived_session_id(keyed.key)
        # The session is made with the turn's lease taken: its model starts after this write.
        # The agent first: a deployment that cannot make one must not leave a lease behind.
        chat.agent()
        turn_id = uuid.uuid4().hex
        open_chat = partial(service.open_chat, lease_seconds=chat.settings.lease_seconds)
        session, made = await asyncio.to_thread(open_chat, user.user_id, wanted, turn_id)
        opened = session if made else None
        return await chat.turn(
            request, user.user_id, session.session_id, body, keyed, True, opened, turn_id
        )

    @app.get("/v1/sessions/{session_id}/turns/{turn_id}/events", responses=RESUME_RESPONSES)
    async def resume_turn(
        user: User,
        session_id: ApiSessionId,
        turn_id: str,
        last_event_id: LastEventId = None,
    ) -> Response:
        """Re-attach to a running or just-finished turn: the events after ``Last-Event-ID`` (all
        without it), then the live rest, then its ``done`` or ``error`` (docs/chat.md)."""
        return await chat.resume(user.user_id, session_id, turn_id, last_event_id)

    @app.post("/v1/sessions/{session_id}/title")
    async def regenerate_title(user: User, session_id: ApiSessionId) -> SessionPublic:
        """A new generated title from the first user message; 409 if the user set the title."""
        first = await asyncio.to_thread(service.first_user_text, user.user_id, session_id)
        title = await chat.name(first)
        return await asyncio.to_thread(service.set_generated_title, user.user_id, session_id, title)

    @app.get("/v1/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    app.add_middleware(EdgeMiddleware, verifier=verifier)
    if page_config is not None:  # outermost: the page needs no token
        app.add_middleware(_Page, config=page_config)
    return app


class _Page:
    """The chat page (``web.page.PageMiddleware``), made on the first request: a cold start that
    serves a turn does not import it."""

    def __init__(self, app: ASGIApp, config: Callable[[], Mapping[str, Any]]) -> None:
        self.app, self.config = app, config
        self.page: ASGIApp | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.page is None:
            from .web.page import PageMiddleware

            self.page = PageMiddleware(self.app, self.config)
        await self.page(scope, receive, send)


def default_chat_app() -> FastAPI:
    """The app as deployed: store, agent and verifier from settings, each made on first use."""
    from .agent_config import AgentSettings, build_agent

    return create_chat_app(
        agent=build_agent,
        verifier=_verifier_from_settings,
        settings=AgentSettings().turn_settings(),
        title_model=lambda: build_agent().model,
        page_config=_deployed_page_config,
    )


def _deployed_page_config() -> dict[str, Any]:
    """Imported on first use, as the page is (``_Page``)."""
    from .web.config import deployed_page_config

    return deployed_page_config()


def _verifier_from_settings() -> TokenVerifier:
    """Imported on first use: behind API Gateway (Mangum) no token is verified here."""
    from .tokens import verifier_from_settings

    return verifier_from_settings()


def buffered_handler(app: FastAPI) -> Callable[[dict[str, Any], Any], dict[str, Any]]:
    """The Lambda handler for API Gateway events: Mangum, with an event loop ensured per call.

    Mangum reads ``asyncio.get_event_loop()``, which raises once anything in the process has run
    and closed a loop (``asyncio.run``); one loop is made and kept instead.
    """
    from mangum import Mangum

    adapter = Mangum(app, lifespan="off")

    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        try:
            asyncio.get_event_loop()
        except RuntimeError:
            asyncio.set_event_loop(asyncio.new_event_loop())
        # The path only: the app's own edge (``EdgeMiddleware``) screens the rest.
        return dict(adapter(with_encoded_path(event), context))

    return handler


def _json_reply(result: TurnResult) -> Response:
    headers = {REPLAYED_HEADER: "true"} if result.replayed else None
    return JSONResponse(_reply(result).model_dump(mode="json"), headers=headers)


def _event_stream(events: AsyncIterator[str], replayed: bool = False) -> Response:
    headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    if replayed:
        headers[REPLAYED_HEADER] = "true"
    return StreamingResponse(events, media_type="text/event-stream", headers=headers)


def _reply(result: TurnResult) -> ChatReply:
    return ChatReply(
        session_id=result.session_id,
        output=result.output,
        new_items=result.stored_items[1:],
        usage=ChatUsage(
            input_tokens=result.input_tokens,
            output_tokens=result.output_tokens,
            total_tokens=result.total_tokens,
        ),
        branch=result.branch,
    )
