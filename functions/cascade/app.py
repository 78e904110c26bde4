"""The table's stream consumer: removes what deleted, expired and cleared sessions leave."""

from chat_sessions.cascade import handler

__all__ = ["handler"]
