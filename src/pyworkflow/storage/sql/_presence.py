"""How a dialect makes a lease owner's liveness observable: the ``Presences`` a SqlStorage has.

An owner (a worker process) holds something that its death releases at once, and that any
process can test without disturbing it: SQLite, a locked file beside the database that the
kernel unlocks when the process dies (``storage/sqlite/_presence.py``); PostgreSQL, a
session-level advisory lock that the server drops with the owner's connection
(``storage/postgres/_presence.py``). The ``owners`` table lists who announced itself, so
that only an owner known to hold such a thing is ever declared dead; every other owner's runs
wait for their lease to lapse, as before.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol

from pyworkflow.storage.sql._session import Row

__all__ = ["Presences"]


class Presences(Protocol):
    """The presence of the owners this process announced, and tests of the others'."""

    async def hold(self, owner: str, on_lost: Callable[[], None] | None) -> tuple[int | None, bool]:
        """Start holding ``owner``'s presence: its lock key (if any), and whether no gap showed.

        The second value is ``Storage.announce_owner``'s answer. ``on_lost``: called should
        the presence be lost while the process lives (PostgreSQL: the connection that holds
        the lock dropped); the owner then holds it again.
        """

    async def drop(self, owner: str) -> None:
        """Stop holding ``owner``'s presence (it is dead to the others from now on)."""

    async def dead_among(self, rows: Sequence[Row]) -> list[str]:
        """Of the announced owners (``owner, host, pid, lock_key`` rows), the ones known dead.

        An owner whose liveness cannot be observed from here (another host's lock file) is
        not dead: its leases lapse as usual.
        """
