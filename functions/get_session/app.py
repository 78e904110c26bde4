"""GET /v1/sessions/{session_id}: one of the caller's sessions."""

from chat_sessions import coldstart  # first: init runs with the collector paused

# isort: split
from chat_sessions import service
from chat_sessions.api import caller, http_app, lambda_handler
from chat_sessions.models import ApiSessionId
from chat_sessions.schemas import SessionPublic

app = http_app()


@app.get("/v1/sessions/<session_id>")
def get_session(session_id: ApiSessionId) -> SessionPublic:
    return service.get_session(caller(app), session_id)


handler = lambda_handler(app)
coldstart.finish()
