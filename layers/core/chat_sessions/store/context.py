"""What every store module is given: the table's door, the clock and the deployment's rules."""

from __future__ import annotations

import math
from dataclasses import dataclass

from chat_sessions.clock import Clock, to_iso

from .table import Table
from .wire import Item, n, s


@dataclass(frozen=True)
class StoreContext:
    """The table, the clock (tests inject one) and the settings the rules read.

    Attributes:
        session_ttl_seconds: The deployment's idle lifetime of a session.
        ttl_bounds: The ``(min, max)`` a session's own ``ttl_seconds`` may take.
        max_stored_items: The retention cap per session (0: none).
    """

    table: Table
    clock: Clock
    session_ttl_seconds: int
    ttl_bounds: tuple[int, int]
    max_stored_items: int

    def activity(self, now: float) -> Item:
        """The values every write that counts as activity binds (``:now_s``, ``:now_iso``,
        ``:ttl``: see ``header.SLIDE_EXPIRY``)."""
        return {
            ":now_s": n(math.floor(now)),
            ":now_iso": s(to_iso(now)),
            ":ttl": n(self.session_ttl_seconds),
        }
