"""DELETE /v1/sessions/{session_id}/branches/{branch_id}: a branch (not main); idempotent."""

from chat_sessions import coldstart  # first: init runs with the collector paused

# isort: split
from aws_lambda_powertools.event_handler import Response

from chat_sessions import service
from chat_sessions.api import caller, http_app, lambda_handler, no_content
from chat_sessions.models import ApiSessionId, BranchId

app = http_app()


@app.delete("/v1/sessions/<session_id>/branches/<branch_id>", status_code=204)
def delete_branch(session_id: ApiSessionId, branch_id: BranchId) -> Response[None]:
    service.delete_branch(caller(app), session_id, branch_id)
    return no_content()


handler = lambda_handler(app)
coldstart.finish()
