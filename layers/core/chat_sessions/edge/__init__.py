"""The HTTP edge, stated once for every route function, the chat app and the local server:
routes and their limits, identity, request screening, and (``chat_sessions.http``) the status
table and error body."""
