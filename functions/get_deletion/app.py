"""GET /v1/deletions/{deletion_id}: how far a delete-all request of the caller's has got."""

from chat_sessions import coldstart  # first: init runs with the collector paused

# isort: split
from chat_sessions import service
from chat_sessions.api import caller, http_app, lambda_handler
from chat_sessions.models import DeletionId
from chat_sessions.schemas import DeletionPublic

app = http_app()


@app.get("/v1/deletions/<deletion_id>")
def get_deletion(deletion_id: DeletionId) -> DeletionPublic:
    return service.get_deletion(caller(app), deletion_id)


handler = lambda_handler(app)
coldstart.finish()
