"""GET /v1/health: liveness, no auth and no DynamoDB call."""

from chat_sessions import coldstart  # first: init runs with the collector paused

# isort: split
from chat_sessions.api import http_app, lambda_handler
from chat_sessions.schemas import HealthPublic

app = http_app()


@app.get("/v1/health")
def health() -> HealthPublic:
    return HealthPublic()


handler = lambda_handler(app)
coldstart.finish()
