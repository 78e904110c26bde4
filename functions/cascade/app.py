"""The table's stream consumer: removes what deleted, expired and cleared sessions leave."""

from chat_sessions import coldstart  # first: init runs with the collector paused

# isort: split
from chat_sessions.cascade import handler

__all__ = ["handler"]
coldstart.finish()
