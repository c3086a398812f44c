"""The lease store: who may drive a run or execute a step now, and when a run comes due.

A part of :class:`~pyworkflow.storage.protocol.Storage` (a base of it), kept apart so that each
module holds one concern: run leases, step leases and the lease owners' liveness. The rules
(the contract suite in tests/contract checks each):

- A run is *runnable* when it is not terminal, its ``wake_at`` is due and nobody holds an
  unexpired lease on it. Claiming sets the lease; claiming a run whose previous lease expired
  counts one recovery.
- A lease is held while ``now < lease_expires_at``; a lapsed lease nobody else claimed still
  belongs to its owner (it may renew or append). A run leased at creation gets
  ``wake_at = lease_expires_at``, so it is recovered if its starter dies before its first turn.
- Step leases belong to a run (retention deletes them with it). They guard one attempt of a
  step that runs away from its run's driver (a Celery step task): the run itself is not leased
  meanwhile, so a step lease never touches the run's row, and the run's row never waits on it.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from typing import Protocol

from pyworkflow.storage.records import OwnerRecord, RunRecord, StepLease, StepOffer

__all__ = ["LeaseStore"]


class LeaseStore(Protocol):
    """What executors need to share runs and steps: claims, leases, offers and owners."""

    async def claim_runs(
        self,
        *,
        owner: str,
        now: float,
        lease_expires_at: float,
        limit: int,
        workflow_names: Collection[str] | None = None,
        run_ids: Collection[str] | None = None,
        due_only: bool = True,
        suspects: bool | None = None,
        queues: Collection[str] | None = None,
    ) -> list[RunRecord]:
        """Lease up to ``limit`` runnable runs, earliest ``wake_at`` first.

        ``workflow_names`` limits the claim to workflows this worker can run; ``queues`` to
        runs whose ``queue`` is one this worker serves (None: any queue; empty: none);
        ``run_ids`` to given runs. A run whose previous lease expired gets
        ``recovery_count + 1``, and its record names that lease's owner in ``previous_owner``.

        ``suspects=True`` claims only runs that this claim takes over for at least the
        ``SUSPECT_RECOVERIES``-th time in a row without progress (counting this claim's
        recovery), ``False`` only the others, ``None`` either.

        ``due_only=False`` (meant for ``run_ids``) also claims runs whose ``wake_at`` has not
        come: any live run with a ``wake_at`` (so not a run waiting only on an outside signal)
        and a free or lapsed lease. A process told to drive a given run (a broker message: a
        step finished, or a sweeper sent it) takes it although its ``wake_at`` is a watchdog
        time still ahead.
        """

    async def take_due_runs(
        self,
        *,
        now: float,
        until: float,
        limit: int,
        workflow_names: Collection[str] | None = None,
    ) -> list[str]:
        """Take up to ``limit`` runnable runs to announce, earliest ``wake_at`` first.

        For a sweeper that sends one broker message per due run instead of running it: the
        runs ``claim_runs`` would claim (due, free or lapsed lease, of ``workflow_names``) get
        ``wake_at = until`` and their ids come back; lease, status and recovery count stay as
        they were. A run so taken is not due again before ``until``, so a lost message is sent
        again only then. Concurrent callers never get the same run.
        """

    async def renew_leases(
        self, *, owner: str, run_ids: Collection[str], now: float, lease_expires_at: float
    ) -> set[str]:
        """Extend the leases ``owner`` still holds; returns the ids it still holds."""

    async def release_runs(self, *, owner: str, run_ids: Collection[str], now: float) -> None:
        """Hand runs back (clean shutdown): drop the lease and make them due at once."""

    async def next_wake_at(
        self,
        *,
        workflow_names: Collection[str] | None = None,
        queues: Collection[str] | None = None,
    ) -> float | None:
        """When the next run of ``workflow_names`` and ``queues`` (None: any) becomes claimable.

        None when there is none. A leased run counts at the later of its ``wake_at`` and its
        lease expiry: that is when a crashed holder's run can be taken over.
        """

    async def acquire_step(
        self,
        run_id: str,
        step_id: str,
        *,
        attempt: int,
        owner: str,
        now: float,
        lease_expires_at: float,
    ) -> StepLease | None:
        """Take the lease of attempt ``attempt`` of a step before executing it.

        The row is created when missing. It is taken when it has no owner, its lease lapsed
        (``lease_expires_at <= now``), ``owner`` already holds it, or it belongs to another
        attempt (then it starts afresh: deliveries 0). Taking sets owner and lease and adds one
        to ``deliveries``; the row comes back as stored.

        Returns None and writes nothing when another owner holds a live lease on the same
        attempt, or when the run is unknown or has ended (terminal status). Of concurrent calls
        by different owners, exactly one succeeds.
        """

    async def renew_step(
        self, run_id: str, step_id: str, *, owner: str, now: float, lease_expires_at: float
    ) -> bool:
        """Extend the step lease ``owner`` holds (also a lapsed one nobody else took).

        False, writing nothing, when the row is gone or another owner holds it. (``now`` is the
        caller's clock, as for ``renew_leases``; a step lease row keeps no time of its own.)
        """

    async def release_step(self, run_id: str, step_id: str, *, owner: str) -> None:
        """Delete the step's lease row if ``owner`` holds it; otherwise do nothing.

        Called once the attempt's outcome is logged, or the attempt is over. The lease only
        keeps two executions of one attempt apart: a late duplicate message finds no row and
        takes the attempt afresh, so whether the attempt still needs executing is the log's
        to say.
        """

    async def list_step_leases(self, run_id: str) -> list[StepLease]:
        """The run's step lease rows, by ``step_id``."""

    async def offer_steps(self, run_id: str, offers: Sequence[StepOffer], *, now: float) -> None:
        """Offer attempts of the run's steps to the local workers of their queues.

        Each offer is a step lease row without owner, with its ``queue`` and ``offered_at``
        (``now``), written only while the run is live. A row of the same attempt is left as it
        is (offered already, or being executed); a row of another attempt is replaced, its
        ``deliveries`` back to 0. Workers list offers (``list_offered_steps``) and take one
        with ``acquire_step``, which keeps its queue, so a lapsed lease of it (a worker that
        died) is listed again.
        """

    async def list_offered_steps(
        self,
        *,
        queues: Collection[str] | None,
        workflow_names: Collection[str],
        now: float,
        limit: int,
    ) -> list[StepLease]:
        """Up to ``limit`` offered attempts that a worker may take now, oldest offer first.

        Offers (rows with a ``queue``) of live runs of ``workflow_names`` whose row has no
        owner or a lapsed lease (``lease_expires_at <= now``), of ``queues`` (None: any
        queue; empty: none). Celery step leases (no queue) are never listed.
        """

    async def announce_owner(
        self, owner: str, *, now: float, on_lost: Callable[[], None] | None = None
    ) -> bool:
        """Make the liveness of lease owner ``owner`` (this process) observable to others.

        Until ``withdraw_owner`` or the process's death, another process's
        ``take_over_dead_owners`` sees ``owner`` alive, even stopped or slow; once it died,
        dead, at once. How is the backend's: SQLite, a file lock the kernel drops with the
        process (seen from this host); PostgreSQL, a session lock the server drops with the
        connection (seen from anywhere). ``on_lost`` is called should the presence go while
        the process lives (PostgreSQL: its connection dropped); the owner then announces
        itself again.

        Returns False when this announcement follows a lost presence that others may have
        taken for the owner's death (PostgreSQL: its connection dropped while the server kept
        running): the owner must give its runs up, since they may be taken over already.
        True otherwise (a first announcement; a presence lost to a server restart, during
        which nobody is declared dead).
        """

    async def withdraw_owner(self, owner: str) -> None:
        """Stop showing ``owner`` alive: from now on it counts as dead (see below)."""

    async def list_owners(self) -> list[OwnerRecord]:
        """Every announced owner, and whether it is alive now; writes nothing."""

    async def take_over_dead_owners(self, *, now: float) -> list[str]:
        """Free what announced owners that are dead now held; their names.

        Their run leases lapse at ``now`` (their runs are due now, and the next claim takes
        them over as a recovery, exactly as after a lapsed lease); their step leases (and
        those of their deliveries, owners named ``<owner>/...``) lapse too, and those steps'
        runs come due. An owner never announced, or one whose liveness cannot be observed
        from here, is left to its leases.
        """
