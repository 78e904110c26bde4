"""GET /v1/sessions/{session_id}/messages: one page of the history."""

from chat_sessions import coldstart  # first: init runs with the collector paused

# isort: split
from chat_sessions import service
from chat_sessions.api import Cursor, Limit, caller, http_app, lambda_handler
from chat_sessions.models import ApiSessionId, BranchId, Order
from chat_sessions.schemas import MessageListPublic

app = http_app()


@app.get("/v1/sessions/<session_id>/messages")
def list_messages(
    session_id: ApiSessionId,
    limit: Limit = 50,
    cursor: Cursor = None,
    order: Order = "asc",
    branch: BranchId | None = None,
) -> MessageListPublic:
    return service.list_messages(caller(app), session_id, limit, cursor, order, branch)


handler = lambda_handler(app)
coldstart.finish()
