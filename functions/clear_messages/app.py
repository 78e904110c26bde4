"""DELETE /v1/sessions/{session_id}/messages: remove every message; the session stays."""

from chat_sessions import coldstart  # first: init runs with the collector paused

# isort: split
from aws_lambda_powertools.event_handler import Response

from chat_sessions import service
from chat_sessions.api import caller, http_app, lambda_handler, no_content
from chat_sessions.models import ApiSessionId, BranchId

app = http_app()


@app.delete("/v1/sessions/<session_id>/messages", status_code=204)
def clear_messages(session_id: ApiSessionId, branch: BranchId | None = None) -> Response[None]:
    service.clear_messages(caller(app), session_id, branch)
    return no_content()


handler = lambda_handler(app)
coldstart.finish()
