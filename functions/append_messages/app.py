"""POST /v1/sessions/{session_id}/messages: append Agents SDK items, atomically and in order."""

from chat_sessions import coldstart  # first: init runs with the collector paused

# isort: split
from aws_lambda_powertools.event_handler import Response

from chat_sessions import service
from chat_sessions.api import (
    IdempotencyKey,
    caller,
    http_app,
    json_response,
    lambda_handler,
    replayed,
    trusted,
)
from chat_sessions.models import ApiSessionId, BranchId
from chat_sessions.schemas import AppendedPublic, MessagesAppend

app = http_app()


@app.post("/v1/sessions/<session_id>/messages", status_code=201)
def append_messages(
    session_id: ApiSessionId,
    body: MessagesAppend,
    idempotency_key: IdempotencyKey = None,
    branch: BranchId | None = None,
) -> Response[AppendedPublic]:
    appended, replay = service.append_messages(
        caller(app), session_id, body, idempotency_key, trusted=trusted(app), branch=branch
    )
    return json_response(appended, status=201, headers=replayed(replay))


handler = lambda_handler(app)
coldstart.finish()
