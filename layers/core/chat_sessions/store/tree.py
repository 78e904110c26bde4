"""``ChatStore``'s branch methods (docs/branches.md): forks, branches, edits and summaries.

Each is one line into the module that holds its rule; ``ChatStore`` inherits them.
"""

from __future__ import annotations

from collections.abc import Sequence

from chat_sessions.errors import InvalidInputError
from chat_sessions.idempotency import IdempotencyRecord
from chat_sessions.models import (
    Branch,
    BranchPage,
    StoredMessage,
    Summary,
    check_branch_id,
    check_branch_name,
)

from . import branch_history, branches, edits, header, summaries, window
from .context import StoreContext
from .lease import TurnCommit


class BranchMethods:
    """Forks, branches, edits and summaries of a ``ChatStore``."""

    _ctx: StoreContext

    # ----------------------------------------------------------------------------------- branches

    def fork_branch(
        self,
        user_id: str,
        session_id: str,
        *,
        source: str | None = None,
        at_seq: int | None = None,
        name: str | None = None,
        activate: bool = True,
    ) -> Branch:
        """A new branch sharing ``source``'s history (the active branch when ``None``) up to the
        message ``at_seq`` (``None``: all of it; ``0``: none), made active unless ``activate`` is
        false. Writes O(1) items whatever the history (docs/branches.md)."""
        source = None if source is None else check_branch_id(source)
        name = None if name is None else check_branch_name(name)
        if at_seq is not None and (isinstance(at_seq, bool) or not isinstance(at_seq, int)):
            raise InvalidInputError("at_seq must be an integer")
        pk = header.session_pk(user_id, session_id)
        return branches.fork(
            self._ctx, pk, source=source, at_seq=at_seq, name=name, activate=activate
        )

    def get_branch(self, user_id: str, session_id: str, branch: str) -> Branch:
        """One branch of the session, or ``BranchNotFoundError``."""
        pk = header.session_pk(user_id, session_id)
        return branches.get(self._ctx, pk, check_branch_id(branch))

    def list_branches(
        self, user_id: str, session_id: str, *, limit: int = 20, cursor: str | None = None
    ) -> BranchPage:
        """``main``, then the other branches newest first."""
        pk = header.session_pk(user_id, session_id)
        return branches.list_page(self._ctx, pk, limit=limit, cursor=cursor)

    def rename_branch(self, user_id: str, session_id: str, branch: str, name: str | None) -> Branch:
        """Name a branch (``None`` removes the name); ``main`` has none (``MainBranchError``)."""
        name = None if name is None else check_branch_name(name)
        pk = header.session_pk(user_id, session_id)
        return branches.rename(self._ctx, pk, check_branch_id(branch), name)

    def activate_branch(self, user_id: str, session_id: str, branch: str) -> Branch:
        """Make ``branch`` the one reads and writes go to when they name none."""
        pk = header.session_pk(user_id, session_id)
        return branches.activate(self._ctx, pk, check_branch_id(branch))

    def delete_branch(self, user_id: str, session_id: str, branch: str) -> bool:
        """Delete a branch (not ``main``); whether this call deleted it. Its own messages go
        with it, but the ones other branches share; ``main`` becomes active if it was."""
        pk = header.session_pk(user_id, session_id)
        return branches.delete(self._ctx, pk, check_branch_id(branch))

    def plan_edit(
        self,
        user_id: str,
        session_id: str,
        *,
        branch: str | None = None,
        replaces_seq: int | None = None,
    ) -> edits.Edit:
        """An edit of the user message ``replaces_seq`` of ``branch`` (the active one when
        ``None``), or a regeneration from its last user message (``replaces_seq`` ``None``):
        what the turn reads and where it will store (``commit_edit``)."""
        branch = None if branch is None else check_branch_id(branch)
        pk = header.session_pk(user_id, session_id)
        return edits.plan(self._ctx, pk, branch, replaces_seq)

    def read_edit_window(
        self,
        user_id: str,
        session_id: str,
        edit: edits.Edit,
        *,
        turns: int,
        token_budget: int | None = None,
    ) -> list[StoredMessage]:
        """The context window of an edit's turn: the history before the message it replaces."""
        pk = header.session_pk(user_id, session_id)
        return window.read_window_of(
            self._ctx, pk, edit.before, turns=turns, token_budget=token_budget
        )

    def commit_edit(
        self,
        user_id: str,
        session_id: str,
        edit: edits.Edit,
        items: Sequence[object],
        *,
        turn: TurnCommit,
        idempotency: IdempotencyRecord | None = None,
    ) -> Branch:
        """Store an edit's turn as a new branch, made active, releasing the lease: one
        transaction with the fork itself."""
        pk = header.session_pk(user_id, session_id)
        return edits.commit(self._ctx, pk, edit, items, turn, idempotency)

    def get_summary(self, user_id: str, session_id: str, branch: str) -> Summary | None:
        """The branch's summary of its older turns (``None``: none yet): one round trip."""
        pk = header.session_pk(user_id, session_id)
        return summaries.get(self._ctx, pk, check_branch_id(branch))

    def put_summary(self, user_id: str, session_id: str, branch: str, summary: Summary) -> Summary:
        """Store a branch's new summary unless one reaching as far exists; the one stored."""
        pk = header.session_pk(user_id, session_id)
        return summaries.put(self._ctx, pk, check_branch_id(branch), summary)

    def drop_summarised(self, user_id: str, session_id: str, branch: str, high_seq: int) -> int:
        """Remove the branch's own messages its summary covers (up to ``high_seq``), for a
        deployment that drops compacted originals; how many went."""
        pk = header.session_pk(user_id, session_id)
        return branch_history.trim_through(self._ctx, pk, check_branch_id(branch), high_seq)
