"""The parts of an append's UpdateItems, shared by ``main`` (the header) and a branch (its
record and the header): the reservation, the cap or a planned trim, a turn's commit."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from . import staging
from .lease import TurnCommit
from .wire import Item, n, s

if TYPE_CHECKING:
    from .append import Plan


@dataclass
class Update:
    """An UpdateItem an append builds up, step by step."""

    values: Item
    conditions: list[str] = field(default_factory=list)
    sets: list[str] = field(default_factory=list)
    adds: list[str] = field(default_factory=list)
    removes: list[str] = field(default_factory=list)

    def expression(self) -> str:
        text = f"SET {', '.join(self.sets)}"
        text += f" ADD {', '.join(self.adds)}" if self.adds else ""
        return text + (f" REMOVE {', '.join(self.removes)}" if self.removes else "")


def reservation(update: Update, plan: Plan) -> None:
    """A plain append waits for a staged batch; a staged batch commits only under its own
    reservation, and ends it."""
    if plan.held is None:
        update.conditions += ["attribute_not_exists(staging_id)", staging.UNRESERVED]
        return
    update.conditions.append("staging_id = :staging")
    update.values[":staging"] = s(plan.held.token)
    update.removes += [name.strip() for name in staging.STAGING.split(",")]


def capacity(update: Update, cap: int, plan: Plan, base: int, count: int) -> tuple[str, int]:
    """Under the cap, the room left (the cap less the batch); with a planned trim, the window's
    new start, if nothing moved it since it was planned. The new ``first_seq`` and the count
    to add."""
    if plan.trim is None:
        if cap and not plan.uncapped:
            update.conditions.append("message_count <= :room")
            update.values[":room"] = n(cap - count)
        return "if_not_exists(first_seq, :base)", count
    trim = plan.trim
    update.conditions += [
        "first_seq = :seen_first",
        "last_seq = :seen_last",
        "message_count = :seen_count",
    ]
    update.values.update(
        {
            ":seen_first": n(trim.seen_first),
            ":seen_last": n(trim.seen_last),
            ":seen_count": n(trim.seen_count),
            ":cut": n(base if trim.cut_seq is None else trim.cut_seq),
        }
    )
    return ":cut", count - trim.removed


def commit_turn(update: Update, turn: TurnCommit) -> None:
    """A chat turn's commit: only while holding its lease, which it releases; adds its usage and
    (if the session has none) its title."""
    update.conditions.append("turn_id = :turn")
    update.removes += ["turn_id", "turn_expires_at"]
    update.adds += [
        "usage_input_tokens :in",
        "usage_output_tokens :out",
        "usage_total_tokens :total",
    ]
    update.values.update(
        {
            ":turn": s(turn.turn_id),
            ":in": n(turn.input_tokens),
            ":out": n(turn.output_tokens),
            ":total": n(turn.input_tokens + turn.output_tokens),
        }
    )
    if turn.title:
        update.sets += [
            "title = if_not_exists(title, :title)",
            "title_source = if_not_exists(title_source, :auto)",
        ]
        update.values.update({":title": s(turn.title), ":auto": s("auto")})
