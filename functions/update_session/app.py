"""PATCH /v1/sessions/{session_id}: rename, and/or replace the metadata."""

from chat_sessions import coldstart  # first: init runs with the collector paused

# isort: split
from chat_sessions import service
from chat_sessions.api import caller, http_app, lambda_handler
from chat_sessions.models import ApiSessionId
from chat_sessions.schemas import SessionPublic, SessionUpdate

app = http_app()


@app.patch("/v1/sessions/<session_id>")
def update_session(session_id: ApiSessionId, body: SessionUpdate) -> SessionPublic:
    return service.update_session(caller(app), session_id, body)


handler = lambda_handler(app)
coldstart.finish()
