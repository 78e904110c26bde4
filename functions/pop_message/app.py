"""DELETE /v1/sessions/{session_id}/messages/last: remove and return the newest message."""

from chat_sessions import coldstart  # first: init runs with the collector paused

# isort: split
from chat_sessions import service
from chat_sessions.api import caller, http_app, lambda_handler
from chat_sessions.models import ApiSessionId, BranchId
from chat_sessions.schemas import PoppedPublic

app = http_app()


@app.delete("/v1/sessions/<session_id>/messages/last")
def pop_message(session_id: ApiSessionId, branch: BranchId | None = None) -> PoppedPublic:
    return service.pop_message(caller(app), session_id, branch)


handler = lambda_handler(app)
coldstart.finish()
