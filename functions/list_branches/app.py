"""GET /v1/sessions/{session_id}/branches: one page of the session's branches, main first."""

from chat_sessions import coldstart  # first: init runs with the collector paused

# isort: split
from chat_sessions import service
from chat_sessions.api import Cursor, Limit, caller, http_app, lambda_handler
from chat_sessions.models import ApiSessionId
from chat_sessions.schemas import BranchListPublic

app = http_app()


@app.get("/v1/sessions/<session_id>/branches")
def list_branches(
    session_id: ApiSessionId, limit: Limit = 20, cursor: Cursor = None
) -> BranchListPublic:
    return service.list_branches(caller(app), session_id, limit, cursor)


handler = lambda_handler(app)
coldstart.finish()
