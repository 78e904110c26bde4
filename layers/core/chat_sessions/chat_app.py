"""The chat app (docs/chat.md): one FastAPI app for the streaming function URL (Server-Sent Events,
under the Lambda Web Adapter) and for the buffered HTTP API routes (JSON, under Mangum).

Errors before a stream starts use the API's status table and body (``chat_sessions.http``).
After it starts, they become a terminal ``error`` event. A client that disconnects does not stop
the turn: it completes and is stored (or, failing, stores nothing).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Callable
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Header, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from .aio import complete_despite_cancellation
from .codec import starts_turn
from .errors import (
    ChatSessionsError,
    MalformedJsonError,
    MessageNotFoundError,
    UnauthorizedError,
    ValidationFailedError,
)
from .http import error_body, error_headers, status_of
from .idempotency import REPLAYED_HEADER, IdempotentRequest, derived_session_id
from .models import ApiSessionId, check_session_id
from .schemas import SessionPublic, display_text
from .store import ChatStore
from .titles import generate_title
from .tokens import TokenVerifier
from .turns import TurnFailedError, TurnResult, TurnSettings, run_turn

HEARTBEAT_SECONDS = 15.0
MAX_MESSAGE_CHARS = 32_000


class ChatRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    message: str = Field(min_length=1, max_length=MAX_MESSAGE_CHARS)


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


def _caller(request: Request, authorization: Annotated[str | None, Header()] = None) -> str:
    """The user, established before the body is even validated (as API Gateway does).

    Behind API Gateway (Mangum passes its event) the JWT authorizer already verified the token,
    as for every API function; on the function URL (no authorizer) the app verifies the bearer
    token itself.
    """
    event = request.scope.get("aws.event")
    if isinstance(event, dict):
        claims = event.get("requestContext", {}).get("authorizer", {}).get("jwt", {})
        subject = (claims.get("claims") or {}).get("sub")
        if not isinstance(subject, str) or not subject:
            raise UnauthorizedError("a valid bearer token is required")
        return subject
    verifier: TokenVerifier = request.app.state.verifier()
    return str(verifier.claims(authorization)["sub"])


User = Annotated[str, Depends(_caller)]
IdempotencyKey = Annotated[
    str | None,
    Header(
        description="1-255 visible ASCII characters. A retry with the same key and message "
        "within 24 hours returns the first turn's result without running the model; the same key "
        "with another message is a 422. On POST /v1/chat the key also names the new session.",
    ),
]
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


def create_chat_app(
    *,
    store: Callable[[], ChatStore],
    agent: Callable[[], Any],
    verifier: Callable[[], TokenVerifier],
    settings: TurnSettings | None = None,
    title_model: Callable[[], Any] | None = None,
) -> FastAPI:
    """The app; its dependencies are factories, resolved on first use (cold start stays small)."""
    app = FastAPI(title="chat-sessions chat", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.verifier = verifier
    turn_settings = settings or TurnSettings()

    @app.exception_handler(ChatSessionsError)
    async def domain_error(request: Request, error: ChatSessionsError) -> Response:
        return _error_response(error)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, error: RequestValidationError) -> Response:
        problems = list(error.errors())
        # Not JSON: undecodable, or (sent without a JSON content type) the whole body as text.
        if any(
            p.get("type") == "json_invalid"
            or (tuple(p.get("loc", ())) == ("body",) and isinstance(p.get("input"), str | bytes))
            for p in problems
        ):
            return _error_response(MalformedJsonError("the request body is not valid JSON"))
        details = [{"loc": list(p["loc"]), "type": p["type"], "msg": p["msg"]} for p in problems]
        return _error_response(ValidationFailedError("the request is invalid", details=details))

    async def turn(
        user_id: str,
        session_id: str,
        message: str,
        accept: str | None,
        announce: bool,
        idempotency: IdempotentRequest | None,
    ) -> Response:
        queue: asyncio.Queue[tuple[str, dict[str, Any]]] = asyncio.Queue()
        started = asyncio.Event()

        async def emit(name: str, data: dict[str, Any]) -> None:
            await queue.put((name, data))

        task = asyncio.create_task(
            run_turn(
                store(),
                agent(),
                user_id,
                session_id,
                message,
                emit,
                turn_settings,
                started.set,
                title_for=name_session,
                idempotency=idempotency,
            )
        )
        # Lease and window first: a 404 or 409 is a plain JSON error, before any stream.
        await asyncio.wait(
            {task, asyncio.create_task(started.wait())}, return_when=asyncio.FIRST_COMPLETED
        )
        stream = accept is not None and "text/event-stream" in accept
        if task.done() and not started.is_set():
            result = task.result()  # raises the domain error, or is a replayed turn
            if stream:
                replay = _replay_events(result, session_id if announce else None)
                return _event_stream(replay, replayed=True)
            return _json_reply(result)
        if stream:
            return _event_stream(_events(task, queue, session_id if announce else None))
        return _json_reply(await complete_despite_cancellation(task))

    @app.post("/v1/sessions/{session_id}/chat", responses=TURN_RESPONSES)
    async def chat(
        user_id: User,
        session_id: ApiSessionId,
        body: ChatRequest,
        accept: Annotated[str | None, Header()] = None,
        idempotency_key: IdempotencyKey = None,
    ) -> Response:
        session_id = check_session_id(session_id)
        request = None
        if idempotency_key is not None:
            request = IdempotentRequest.of(idempotency_key, CHAT_ROUTE, session_id, body)
        return await turn(user_id, session_id, body.message, accept, False, request)

    @app.post("/v1/chat", responses=TURN_RESPONSES)
    async def chat_new_session(
        user_id: User,
        body: ChatRequest,
        accept: Annotated[str | None, Header()] = None,
        idempotency_key: IdempotencyKey = None,
    ) -> Response:
        request, session_id = None, None
        if idempotency_key is not None:
            # A retry must land in the first call's session to find its record there.
            request = IdempotentRequest.of(idempotency_key, NEW_CHAT_ROUTE, None, body)
            session_id = derived_session_id(request.key)
        session, _ = await asyncio.to_thread(store().create_session, user_id, session_id)
        return await turn(user_id, session.session_id, body.message, accept, True, request)

    async def name_session(message: str) -> str:
        return await generate_title(message, title_model() if title_model else None)

    @app.post("/v1/sessions/{session_id}/title")
    async def regenerate_title(user_id: User, session_id: ApiSessionId) -> SessionPublic:
        """A new generated title from the first user message; 409 if the user set the title."""
        sessions = store()
        first = await asyncio.to_thread(_first_user_text, sessions, user_id, session_id)
        title = await name_session(first)
        session = await asyncio.to_thread(sessions.set_generated_title, user_id, session_id, title)
        return SessionPublic.of(session)

    @app.get("/v1/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    return app


def default_chat_app() -> FastAPI:
    """The app as deployed: store, agent and verifier from settings, each made on first use."""
    from .agent_config import AgentSettings, build_agent
    from .service import get_store
    from .tokens import verifier_from_settings

    return create_chat_app(
        store=get_store,
        agent=build_agent,
        verifier=verifier_from_settings,
        settings=AgentSettings().turn_settings(),
        title_model=lambda: build_agent().model,
    )


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
        return dict(adapter(event, context))

    return handler


def _first_user_text(store: ChatStore, user_id: str, session_id: str) -> str:
    page = store.list_messages(user_id, session_id, limit=50, order="asc")
    for message in page.messages:
        if starts_turn(message.item) and display_text(message.item):
            return display_text(message.item)
    raise MessageNotFoundError("the session has no user message to title yet")


def _error_response(error: ChatSessionsError) -> Response:
    return Response(
        error_body(error),
        status_code=status_of(error),
        media_type="application/json",
        headers=error_headers(error),
    )


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
    )


def _done(result: TurnResult) -> dict[str, Any]:
    usage = _reply(result).usage.model_dump()
    return {"message_count": result.message_count, "usage": usage, "title": result.title}


def _sse(event_id: int, name: str, data: dict[str, Any]) -> str:
    payload = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    return f"id: {event_id}\nevent: {name}\ndata: {payload}\n\n"


async def _events(
    task: asyncio.Task[TurnResult],
    queue: asyncio.Queue[tuple[str, dict[str, Any]]],
    new_session_id: str | None,
) -> AsyncIterator[str]:
    """The turn's events as SSE, then exactly one ``done`` or ``error``. If the client goes away
    (this generator is closed), the turn still runs to its end before the invocation ends."""
    event_id = 0
    try:
        if new_session_id is not None:
            event_id += 1
            yield _sse(event_id, "session", {"session_id": new_session_id})
        while not (task.done() and queue.empty()):
            getter = asyncio.ensure_future(queue.get())
            done, _ = await asyncio.wait(
                {getter, task}, timeout=HEARTBEAT_SECONDS, return_when=asyncio.FIRST_COMPLETED
            )
            if getter in done:
                name, data = getter.result()
                event_id += 1
                yield _sse(event_id, name, data)
                continue
            getter.cancel()
            if not done:
                yield ": keep-alive\n\n"  # a comment: keeps idle connections open
        event_id += 1
        error = task.exception()
        if error is None:
            yield _sse(event_id, "done", _done(task.result()))
        else:
            retryable = isinstance(error, TurnFailedError) and error.retryable
            code = error.code if isinstance(error, ChatSessionsError) else "internal_error"
            message = error.message if isinstance(error, ChatSessionsError) else "internal error"
            yield _sse(
                event_id,
                "error",
                {"code": code, "message": message, "retryable": retryable or code == "turn_lost"},
            )
    finally:
        if not task.done():
            # Keep the invocation alive until the turn is stored or released; its outcome is
            # already logged by the turn, and nobody is listening any more.
            with contextlib.suppress(Exception):
                await complete_despite_cancellation(task)


async def _replay_events(result: TurnResult, new_session_id: str | None) -> AsyncIterator[str]:
    """A recorded turn as a short stream in the live format: ``session`` (new sessions), then
    per stored item its ``tool_call``, ``tool_output`` or whole-message ``token``, then ``done``."""
    events: list[tuple[str, dict[str, Any]]] = []
    if new_session_id is not None:
        events.append(("session", {"session_id": new_session_id}))
    for item in result.stored_items[1:]:
        kind = item.get("type", "message")
        if kind == "function_call":
            names = ("name", "call_id", "arguments")
            events.append(("tool_call", {name: item.get(name) for name in names}))
        elif kind == "function_call_output":
            output = item.get("output")
            if not isinstance(output, str):
                output = json.dumps(output, ensure_ascii=False)
            events.append(("tool_output", {"call_id": item.get("call_id"), "output": output}))
        elif kind == "message" and item.get("role") == "assistant" and display_text(item):
            events.append(("token", {"delta": display_text(item)}))
    events.append(("done", _done(result)))
    for event_id, (name, data) in enumerate(events, start=1):
        yield _sse(event_id, name, data)
