"""Domain errors: one hierarchy, translated to HTTP once by the API edge.

Every error has a stable snake_case ``code``; callers decide by type (or code), never by message
text.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


class ChatSessionsError(Exception):
    """Base of every error chat-sessions raises on purpose."""

    code = "internal_error"
    retryable = False
    """Whether the same request can succeed later, as it is (docs/api.md's "retry" column)."""

    def __init__(self, message: str, *, details: Sequence[Any] = ()) -> None:
        super().__init__(message)
        self.message = message
        self.details = list(details)


class InvalidInputError(ChatSessionsError):
    """A value breaks a documented rule (id format, metadata bounds, empty batch...)."""

    code = "invalid_input"


class ConfirmationRequiredError(InvalidInputError):
    """A destructive request lacks its explicit confirmation."""

    code = "confirmation_required"


class InvalidCursorError(InvalidInputError):
    """A pagination cursor was not produced by us for this listing."""

    code = "invalid_cursor"


class NotFoundError(ChatSessionsError):
    """The thing does not exist, has expired, or belongs to someone else (never disclosed which)."""

    code = "not_found"


class SessionNotFoundError(NotFoundError):
    code = "session_not_found"


class DeletionNotFoundError(NotFoundError):
    code = "deletion_not_found"


class DeletionIncompleteError(ChatSessionsError):
    """A delete-all ran out of its time budget; the stream retries it and it resumes."""

    code = "deletion_incomplete"


class ConflictError(ChatSessionsError):
    """A concurrent write kept winning; nothing was written."""

    code = "conflict"
    retryable = True


class TooLargeError(ChatSessionsError):
    """Input over a documented size maximum; nothing was written."""

    code = "too_large"


class ItemTooLargeError(TooLargeError):
    code = "item_too_large"


class BatchTooLargeError(TooLargeError):
    code = "batch_too_large"


class ThrottledError(ChatSessionsError):
    """DynamoDB kept throttling after retries; safe to retry later."""

    code = "throttled"
    retryable = True


class UnavailableError(ChatSessionsError):
    """DynamoDB could not be reached or failed internally after retries; safe to retry later."""

    code = "unavailable"
    retryable = True


class MessageNotFoundError(NotFoundError):
    """No such message: nothing to pop (the history is empty), or a fork point that is not in
    the branch's history."""

    code = "message_not_found"


class BranchNotFoundError(NotFoundError):
    """No such branch in this session (docs/branches.md)."""

    code = "branch_not_found"


class MainBranchError(ConflictError):
    """``main`` cannot be deleted: delete the session, or clear it."""

    code = "main_branch"
    retryable = False


class RouteNotFoundError(NotFoundError):
    code = "route_not_found"


class MethodNotAllowedError(ChatSessionsError):
    """The path exists with other methods; ``allowed`` lists them."""

    code = "method_not_allowed"

    def __init__(self, message: str, *, allowed: list[str]) -> None:
        super().__init__(message)
        self.allowed = allowed


class UnauthorizedError(ChatSessionsError):
    """No verified identity reached us."""

    code = "unauthorized"


class MalformedJsonError(InvalidInputError):
    code = "malformed_json"


class ValidationFailedError(InvalidInputError):
    """The request does not match the schema; ``details`` has field paths."""

    code = "validation_failed"


class BodyTooLargeError(TooLargeError):
    code = "body_too_large"


class TurnInProgressError(ConflictError):
    """Another turn of this session is running; retry when it has finished."""

    code = "turn_in_progress"


class TurnLostError(ConflictError):
    """This turn's lease lapsed and another turn began; nothing of this turn was stored."""

    code = "turn_lost"


class TurnNotFoundError(NotFoundError):
    """No chat turn with this id in the session to re-attach to, or its stream log expired."""

    code = "turn_not_found"


class StreamIncompleteError(ChatSessionsError):
    """A resumed stream cannot be completed: the turn's invocation ended without logging its
    terminal event (it crashed). The session's messages say what was stored."""

    code = "stream_incomplete"
    retryable = False


class TitleSetByUserError(ConflictError):
    """The session's title was set by the user; it is never replaced by a generated one."""

    code = "title_set_by_user"
    retryable = False  # the user's title stays: retrying cannot help


class InvalidIdempotencyKeyError(InvalidInputError):
    """The Idempotency-Key header is not 1 to 255 visible ASCII characters."""

    code = "invalid_idempotency_key"


class IdempotencyKeyReusedError(InvalidInputError):
    """An Idempotency-Key came back with a different request within its 24 hours; nothing was
    written."""

    code = "idempotency_key_reused"


class UnsupportedMediaTypeError(ChatSessionsError):
    """A request body not declared as JSON (``application/json``, UTF-8)."""

    code = "unsupported_media_type"


class UntrustedHostError(ChatSessionsError):
    """The local server (``make dev``) was named by a name other than 127.0.0.1 or localhost: a
    page that points a name of its own at this machine (DNS rebinding) gets nothing."""

    code = "untrusted_host"
    retryable = False


class ItemNotAllowedError(ChatSessionsError):
    """The caller may append only ``user`` and ``assistant`` messages: instructions, tool calls
    and their outputs come from the agent's own turn or a trusted backend (docs/api.md)."""

    code = "item_not_allowed"


class TurnFailedError(ChatSessionsError):
    """The agent run failed outside our code (a tool, a guardrail, the SDK's own limits); nothing
    was stored. Subclasses name the model provider's failures and timeouts (chat_sessions.upstream
    maps a run's exception to one). ``retryable``: the same message can succeed later;
    ``retry_after_seconds``: when to try again, if known."""

    code = "agent_failed"
    retryable = False

    def __init__(self, message: str, *, retry_after_seconds: int | None = None) -> None:
        super().__init__(message)
        self.retry_after_seconds = retry_after_seconds


class ModelError(TurnFailedError):
    """The model provider refused the request (bad request or context length, key, model name,
    quota): trying again will not help until someone fixes it."""

    code = "model_error"


class ModelUnavailableError(TurnFailedError):
    """The model provider could not be reached or failed on its side, after the client's own
    retries."""

    code = "model_unavailable"
    retryable = True


class ModelRateLimitedError(ModelUnavailableError):
    """The model provider is rate limiting this deployment."""

    code = "model_rate_limited"


class TurnTimeoutError(TurnFailedError):
    """The turn ran past its time limit (``CHAT_SESSIONS_TURN_TIMEOUT_SECONDS``)."""

    code = "turn_timeout"
    retryable = True


class ModelTimeoutError(TurnTimeoutError):
    """A model call timed out (the provider's client or the SDK's per-call timeout)."""

    code = "model_timeout"
