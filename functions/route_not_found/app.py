"""Every other request ($default route): 404, or 405 with Allow when the path has other methods."""

from chat_sessions import coldstart  # first: init runs with the collector paused

# isort: split
from chat_sessions.api import http_app, lambda_handler

app = http_app()  # no routes: every request goes to the API's not-found handler
handler = lambda_handler(app)
coldstart.finish()
