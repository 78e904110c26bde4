"""Session titles: generated after the first completed turn, or on request, never over a title
the user set (the store enforces that atomically)."""

from __future__ import annotations

import asyncio
import logging
import re
from typing import Any

logger = logging.getLogger(__name__)

MAX_GENERATED_CHARS = 60
TITLE_TIMEOUT_SECONDS = 3.0
"""A title waits inside the turn, after its run: bounded so a slow or rate-limited model (whose
client retries for minutes) cannot hold a finished turn past its function's timeout."""
TITLE_INSTRUCTIONS = (
    "Write a title of at most six words for a conversation that starts with the user's message. "
    "Reply with the title only: no quotes, no final punctuation."
)


def heuristic_title(message: str) -> str:
    """The first words of the message, cut at a word boundary."""
    text = re.sub(r"\s+", " ", message).strip()
    if len(text) <= MAX_GENERATED_CHARS:
        return text or "New chat"
    cut = text[: MAX_GENERATED_CHARS - 1].rsplit(" ", 1)[0]
    return f"{cut}…"


async def generate_title(
    message: str, model: Any | None, timeout_seconds: float = TITLE_TIMEOUT_SECONDS
) -> str:
    """A model-written title when a real model is configured; the heuristic otherwise, and
    whenever the model fails or is slow (a title is never worth failing a turn for)."""
    from .agent_config import OfflineModel

    if model is None or isinstance(model, OfflineModel):
        return heuristic_title(message)
    from agents import Agent, Runner

    from .upstream import log_failure, run_failure, turn_timeout

    try:
        async with asyncio.timeout(timeout_seconds):
            result = await Runner.run(
                Agent(name="title", instructions=TITLE_INSTRUCTIONS, model=model), message[:2000]
            )
        title = re.sub(r"\s+", " ", str(result.final_output)).strip().strip('"').strip()
    except Exception as exc:
        slow = isinstance(exc, TimeoutError)
        failure = turn_timeout(timeout_seconds) if slow else run_failure(exc)
        log_failure(logger, "title generation failed (heuristic used)", exc, failure)
        return heuristic_title(message)
    return title[:MAX_GENERATED_CHARS] or heuristic_title(message)
