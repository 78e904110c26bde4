"""Compaction: when a context window would exceed its token budget, its oldest whole turns are
summarised into the branch's summary, which the window uses in their place (docs/branches.md,
"Compaction"). The originals stay in the history.

The summary goes to the model as a user message: it is written from what users and tools said,
so it must carry no more authority than they do (``privilege``).
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from .models import StoredMessage, Summary
from .privilege import for_the_model
from .store.window import context_window, estimated_tokens

logger = logging.getLogger(__name__)

SUMMARY_HEADING = "Summary of the earlier conversation:"
OFFLINE_SUMMARY_CHARS = 4000
"""The deterministic summariser keeps this many characters, the newest lines first."""
LINE_CHARS = 200
SUMMARY_TIMEOUT_SECONDS = 20.0
SUMMARY_INSTRUCTIONS = (
    "You compact a conversation for a later turn of it. Given an earlier summary (if any) and "
    "the turns that follow it, write one summary of everything so far: facts, names, decisions, "
    "open questions. Be concise. Reply with the summary only."
)

Summarise = Callable[[str | None, list[dict[str, Any]]], Awaitable[tuple[str, str]]]
"""``(earlier summary, items) -> (summary text, what wrote it)``."""


@dataclass(frozen=True)
class Compacted:
    """The items the model gets, and the new summary to store (``None``: nothing new)."""

    items: list[dict[str, Any]]
    summary: Summary | None


def summary_item(summary: Summary) -> dict[str, Any]:
    return {"role": "user", "content": f"{SUMMARY_HEADING}\n{summary.text}"}


async def compact(
    window: list[StoredMessage],
    summary: Summary | None,
    *,
    token_budget: int,
    summarise: Summarise,
) -> Compacted:
    """The window (oldest first, as read) with the part its summary covers replaced by the
    summary, and, when what is left is still over ``token_budget``, its oldest whole turns
    folded into a new summary."""
    fresh = [m for m in window if summary is None or m.seq > summary.high_seq]
    allowed = [m for m in fresh if for_the_model(m.item, m.vouched)]
    items = [m.item for m in allowed]
    head = [summary_item(summary)] if summary else []
    kept = context_window(
        items, turns=len(items), token_budget=max(token_budget - estimated_tokens(head), 0)
    )
    dropped = allowed[: len(allowed) - len(kept)]
    if not dropped or not kept:  # within the budget, or no whole turn to keep
        return Compacted([*head, *items], None)
    text, writer = await summarise(summary.text if summary else None, [m.item for m in dropped])
    covered = (summary.covered if summary else 0) + len(dropped)
    new = Summary(
        text=text,
        high_seq=dropped[-1].seq,
        covered=covered,
        model=writer,
        created_at=datetime.now(UTC),
    )
    return Compacted([summary_item(new), *kept], new)


def offline_summary(earlier: str | None, items: list[dict[str, Any]]) -> str:
    """A deterministic summary: the earlier one, then a line per message (its role and the start
    of its text), keeping the newest ``OFFLINE_SUMMARY_CHARS`` characters."""
    lines = [earlier] if earlier else []
    for item in items:
        text = re.sub(r"\s+", " ", _text_of(item)).strip()
        if text:
            lines.append(f"{item.get('role', item.get('type', 'item'))}: {text[:LINE_CHARS]}")
    joined = "\n".join(lines)
    return joined[-OFFLINE_SUMMARY_CHARS:]


def summariser(model_of: Callable[[], Any] | None) -> Summarise:
    """Summaries by the model ``model_of`` makes (the agent's; made only when one is needed), or
    the deterministic ones offline and whenever the model fails or is slow (compaction is never
    worth failing a turn for)."""

    async def summarise(earlier: str | None, items: list[dict[str, Any]]) -> tuple[str, str]:
        from .agent_config import OfflineModel

        fallback = offline_summary(earlier, items)
        model = model_of() if model_of is not None else None
        if model is None or isinstance(model, OfflineModel):
            return fallback, "offline"
        from agents import Agent, Runner

        from .upstream import log_failure, run_failure, turn_timeout

        prompt = (
            f"Earlier summary:\n{earlier or '(none)'}\n\nTurns:\n{offline_summary(None, items)}"
        )
        try:
            async with asyncio.timeout(SUMMARY_TIMEOUT_SECONDS):
                agent = Agent(name="compaction", instructions=SUMMARY_INSTRUCTIONS, model=model)
                result = await Runner.run(agent, prompt)
        except Exception as exc:
            slow = isinstance(exc, TimeoutError)
            failure = turn_timeout(SUMMARY_TIMEOUT_SECONDS) if slow else run_failure(exc)
            log_failure(logger, "summary failed (offline summary used)", exc, failure)
            return fallback, "offline"
        return str(result.final_output).strip() or fallback, str(getattr(model, "model", "model"))

    return summarise


def _text_of(item: dict[str, Any]) -> str:
    content = item.get("content", item.get("output", item.get("arguments", "")))
    if isinstance(content, str):
        return content
    parts = content if isinstance(content, list) else []
    return " ".join(str(part.get("text", "")) for part in parts if isinstance(part, dict))
