"""GET /v1/sessions: the caller's sessions, newest activity first, filtered by metadata."""

from chat_sessions import coldstart  # first: init runs with the collector paused

# isort: split
from chat_sessions import service
from chat_sessions.api import Cursor, Limit, caller, http_app, lambda_handler, metadata_filter
from chat_sessions.schemas import SessionListPublic

app = http_app()


@app.get("/v1/sessions")
def list_sessions(limit: Limit = 20, cursor: Cursor = None) -> SessionListPublic:
    return service.list_sessions(caller(app), limit, cursor, metadata_filter(app))


handler = lambda_handler(app)
coldstart.finish()
