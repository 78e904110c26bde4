"""The browser chat page (docs/page.md): plain HTML, CSS and JavaScript in ``static/``, no build
step and nothing fetched from elsewhere. ``page.PageMiddleware`` serves it in front of the chat
app; ``config`` is its runtime config (sign-in mode, API and chat origins)."""
