"""PATCH /v1/sessions/{session_id}/branches/{branch_id}: rename, and/or make it the active one."""

from chat_sessions import coldstart  # first: init runs with the collector paused

# isort: split
from chat_sessions import service
from chat_sessions.api import caller, http_app, lambda_handler
from chat_sessions.models import ApiSessionId, BranchId
from chat_sessions.schemas import BranchPublic, BranchUpdate

app = http_app()


@app.patch("/v1/sessions/<session_id>/branches/<branch_id>")
def update_branch(
    session_id: ApiSessionId, branch_id: BranchId, body: BranchUpdate
) -> BranchPublic:
    return service.update_branch(caller(app), session_id, branch_id, body)


handler = lambda_handler(app)
coldstart.finish()
