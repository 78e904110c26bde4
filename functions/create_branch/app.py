"""POST /v1/sessions/{session_id}/branches: fork a branch at a message of another."""

from chat_sessions import coldstart  # first: init runs with the collector paused

# isort: split
from chat_sessions import service
from chat_sessions.api import caller, http_app, lambda_handler
from chat_sessions.models import ApiSessionId
from chat_sessions.schemas import BranchCreate, BranchPublic

app = http_app()


@app.post("/v1/sessions/<session_id>/branches", status_code=201)
def create_branch(session_id: ApiSessionId, body: BranchCreate) -> BranchPublic:
    return service.create_branch(caller(app), session_id, body)


handler = lambda_handler(app)
coldstart.finish()
