"""The chat turn through the HTTP API, for clients that cannot read streams: the same FastAPI app,
answering buffered JSON through Mangum."""

from chat_sessions import coldstart  # first: init runs with the collector paused

# isort: split
from chat_sessions.chat_app import buffered_handler, default_chat_app

app = default_chat_app()
handler = buffered_handler(app)
coldstart.finish()
