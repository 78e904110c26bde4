"""POST /v1/sessions: create a session, or return the caller's existing one with that id."""

from chat_sessions import coldstart  # first: init runs with the collector paused

# isort: split
from aws_lambda_powertools.event_handler import Response

from chat_sessions import service
from chat_sessions.api import caller, http_app, json_response, lambda_handler
from chat_sessions.schemas import SessionCreate, SessionPublic

app = http_app()


@app.post(
    "/v1/sessions",
    status_code=201,
    responses={
        201: {
            "description": "Created",
            "content": {"application/json": {"model": SessionPublic}},
        },
        200: {
            "description": "The caller already has a session with this id: it, unchanged",
            "content": {"application/json": {"model": SessionPublic}},
        },
    },
)
def create_session(body: SessionCreate) -> Response[SessionPublic]:
    session, created = service.create_session(caller(app), body)
    return json_response(session, status=201 if created else 200)


handler = lambda_handler(app)
coldstart.finish()
