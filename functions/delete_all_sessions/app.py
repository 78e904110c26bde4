"""DELETE /v1/sessions?confirm=delete-all-my-sessions: delete every session the caller owns.

Asynchronous: 202 with the request, which the stream consumer carries out.
"""

from chat_sessions import coldstart  # first: init runs with the collector paused

# isort: split
from typing import Annotated

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Query

from chat_sessions import service
from chat_sessions.api import caller, http_app, json_response, lambda_handler
from chat_sessions.schemas import DeletionPublic

app = http_app()


@app.delete(
    "/v1/sessions",
    status_code=202,
    responses={
        202: {
            "description": "Accepted: the deletion runs in the background; poll Location",
            "content": {"application/json": {"model": DeletionPublic}},
        },
    },
)
def delete_all_sessions(
    confirm: Annotated[
        str | None,
        Query(max_length=64, description=f"must be {service.CONFIRM_DELETE_ALL!r}"),
    ] = None,
) -> Response[DeletionPublic]:
    deletion = service.delete_all_sessions(caller(app), confirm)
    location = f"/v1/deletions/{deletion.deletion_id}"
    return json_response(deletion, status=202, headers={"Location": location})


handler = lambda_handler(app)
coldstart.finish()
