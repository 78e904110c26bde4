"""GET /v1/sessions/{session_id}/branches/{branch_id}: one branch of a session."""

from chat_sessions import coldstart  # first: init runs with the collector paused

# isort: split
from chat_sessions import service
from chat_sessions.api import caller, http_app, lambda_handler
from chat_sessions.models import ApiSessionId, BranchId
from chat_sessions.schemas import BranchPublic

app = http_app()


@app.get("/v1/sessions/<session_id>/branches/<branch_id>")
def get_branch(session_id: ApiSessionId, branch_id: BranchId) -> BranchPublic:
    return service.get_branch(caller(app), session_id, branch_id)


handler = lambda_handler(app)
coldstart.finish()
