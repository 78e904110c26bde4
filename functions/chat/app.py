"""The chat turn on the function URL: Server-Sent Events from the FastAPI app, run by uvicorn
(run.sh) under the Lambda Web Adapter in response-streaming mode."""

from chat_sessions import coldstart  # first: init runs with the collector paused

# isort: split
from chat_sessions.chat_app import default_chat_app

app = default_chat_app()
coldstart.finish()
