"""The StreamStore methods of SqlStorage: each one script of ``_scripts/streams.py``.

Every write runs in one transaction (``_run_atomic``): on PostgreSQL, whose plain scripts
commit statement by statement, a take's cursor moves and its deliveries must stand together.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from pyworkflow.storage.sql._scripts import stream_ends, streams
from pyworkflow.storage.streams import (
    DeliveryBatch,
    DeliveryRecord,
    NewSignal,
    SignalRecord,
    StreamRunRecord,
    SubscriptionOutcome,
    SubscriptionRecord,
    SubscriptionSpec,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Coroutine

    from pyworkflow.storage.sql._session import Session

__all__ = ["SqlStreamMethods"]

_T = TypeVar("_T")


class SqlStreamMethods:
    """Mixed into SqlStorage, whose ``_run`` and ``_run_atomic`` run the scripts."""

    if TYPE_CHECKING:

        async def _run(
            self, script: Callable[[Session], Coroutine[Any, Any, _T]], *, writes: bool
        ) -> _T:
            """SqlStorage's."""

        async def _run_atomic(self, script: Callable[[Session], Coroutine[Any, Any, _T]]) -> _T:
            """SqlStorage's."""

    async def open_stream_run(
        self,
        stream_run_id: str,
        *,
        stream: str,
        run_id: str,
        subscriptions: Sequence[SubscriptionSpec],
        now: float,
    ) -> tuple[StreamRunRecord, bool]:
        """Create the stream run and its pending subscriptions; see ``StreamStore``."""
        return await self._run_atomic(
            lambda db: streams.open_stream_run(
                db, stream_run_id, stream=stream, run_id=run_id, subscriptions=subscriptions,
                now=now,
            )
        )  # fmt: skip

    async def adopt_stream_run(
        self, stream_run_id: str, *, previous_run_id: str, run_id: str, now: float
    ) -> bool:
        """Hand the stream run to the run that continued its driver; see ``StreamStore``."""
        return await self._run_atomic(
            lambda db: streams.adopt_stream_run(
                db, stream_run_id, previous_run_id=previous_run_id, run_id=run_id, now=now
            )
        )

    async def get_stream_run(self, stream_run_id: str) -> StreamRunRecord | None:
        """The stream run, or None."""
        return await self._run(lambda db: streams.get_stream_run(db, stream_run_id), writes=False)

    async def list_stream_runs(
        self, *, stream: str | None = None, limit: int = 100
    ) -> list[StreamRunRecord]:
        """Stream runs newest first, of one stream or all."""
        return await self._run(
            lambda db: streams.list_stream_runs(db, stream=stream, limit=limit), writes=False
        )

    async def list_subscriptions(self, stream_run_id: str) -> list[SubscriptionRecord]:
        """The stream run's subscriptions, by step name."""
        return await self._run(
            lambda db: streams.list_subscriptions(db, stream_run_id), writes=False
        )

    async def list_signals(
        self, stream_run_id: str, *, after_seq: int = 0, limit: int = 1000
    ) -> list[SignalRecord]:
        """The stream run's signals with ``seq > after_seq``, in seq order."""
        return await self._run(
            lambda db: streams.list_signals(db, stream_run_id, after_seq=after_seq, limit=limit),
            writes=False,
        )

    async def list_deliveries(self, stream_run_id: str) -> list[DeliveryRecord]:
        """Every delivery of the stream run, by batch then step name."""
        return await self._run(lambda db: streams.list_deliveries(db, stream_run_id), writes=False)

    async def emit_signal(self, signal: NewSignal) -> SignalRecord:
        """Store a signal at its stream run's next seq and wake the driver; see ``StreamStore``."""
        return await self._run_atomic(lambda db: streams.emit_signal(db, signal))

    async def arm_stream_wait(
        self, stream_run_id: str, *, token_hash: str, seen_seq: int, now: float
    ) -> bool:
        """Arm the driver's waiting hook, or deliver it now; see ``StreamStore``."""
        return await self._run_atomic(
            lambda db: streams.arm_stream_wait(
                db, stream_run_id, token_hash=token_hash, seen_seq=seen_seq, now=now
            )
        )

    async def take_stream_batch(
        self,
        stream_run_id: str,
        *,
        batch: int,
        outcomes: Sequence[SubscriptionOutcome],
        now: float,
    ) -> DeliveryBatch:
        """Apply ``outcomes`` and take batch ``batch``, idempotently; see ``StreamStore``."""
        return await self._run_atomic(
            lambda db: streams.take_stream_batch(
                db, stream_run_id, batch=batch, outcomes=outcomes, now=now
            )
        )

    async def end_stream_run(
        self, stream_run_id: str, *, run_id: str, status: str, detail: str, now: float
    ) -> bool:
        """End the stream run ``run_id`` drives, cancelled or failed; see ``StreamStore``."""
        return await self._run_atomic(
            lambda db: stream_ends.end_stream_run(
                db, stream_run_id, run_id=run_id, status=status, detail=detail, now=now
            )
        )
