"""``ChatStore``'s upkeep methods: delete-all requests and the stream consumer's purges.

Each is one line into the module that holds its rule; ``ChatStore`` inherits them.
"""

from __future__ import annotations

from chat_sessions.models import Deletion

from . import deletion, purge
from .context import StoreContext


class UpkeepMethods:
    """Delete-all requests and the cascade's purges of a ``ChatStore``."""

    _ctx: StoreContext

    # -------------------------------------------------------------------------- delete everything

    def request_deletion(self, user_id: str, *, deletion_id: str | None = None) -> Deletion:
        """Record a request to delete every session the user owns now (one PutItem)."""
        return deletion.request(self._ctx, user_id, deletion_id)

    def get_deletion(self, user_id: str, deletion_id: str) -> Deletion:
        """The user's delete-all request, or ``DeletionNotFoundError``."""
        return deletion.get(self._ctx, user_id, deletion_id)

    def run_deletion(
        self, user_partition: str, deletion_sk: str, *, budget_seconds: float = 240
    ) -> int:
        """Carry out a delete-all request; how many headers this run deleted."""
        return deletion.run(self._ctx, user_partition, deletion_sk, budget_seconds=budget_seconds)

    # ------------------------------------------------------------------- cascade (stream consumer)

    def purge_session(self, pk: str, *, up_to_seq: int, incarnation: str | None = None) -> int:
        """What a deleted or expired session left (its branches: those of ``incarnation``);
        how many rows were deleted."""
        return purge.session(self._ctx, pk, up_to_seq=up_to_seq, incarnation=incarnation)

    def purge_trimmed(self, pk: str, marker_sk: str | None = None) -> int:
        """What a trim marker asks for (``purge.trimmed``); how many rows were deleted."""
        return purge.trimmed(self._ctx, pk, marker_sk)

    def purge(self, pk: str, *, up_to_seq: int) -> int:
        """The message and chunk rows of ``pk`` with seq <= ``up_to_seq``."""
        return purge.rows(self._ctx, pk, up_to_seq=up_to_seq)

    def delete_row(self, pk: str, sk: str) -> None:
        """Delete one row by key; a no-op when it is already gone."""
        purge.delete_row(self._ctx, pk, sk)
