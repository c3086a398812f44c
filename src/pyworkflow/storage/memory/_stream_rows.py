"""A memory stream run's rows as its driving run carries them: read whole, stored, deleted.

A stream run belongs to the run that drives it (``StreamRunRecord.run_id``): a snapshot of that
run holds it (``RunSnapshot.streams``), and deleting that run (retention, a copy taking a run
back) deletes it, so no stream row outlives its run.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Iterable, Sequence

from pyworkflow.events import RunStatus
from pyworkflow.storage.memory._streams import _StreamRows
from pyworkflow.storage.records import RunRecord
from pyworkflow.storage.streams import DeliveryRecord, StreamSnapshot

__all__ = ["MemoryStreamRows"]


class MemoryStreamRows:
    """The whole-run side of MemoryStorage's stream runs (a base of MemoryStorage)."""

    _streams: dict[str, _StreamRows]
    _runs: dict[str, RunRecord]

    def _stream_ids_of_run(self, run_id: str) -> list[str]:
        """The ids of the stream runs ``run_id`` drives, sorted."""
        return sorted(i for i, rows in self._streams.items() if rows.record.run_id == run_id)

    def _stream_snapshots(self, run_id: str) -> tuple[StreamSnapshot, ...]:
        """The stream runs ``run_id`` drives, whole, by ``stream_run_id``."""
        found = []
        for stream_run_id in self._stream_ids_of_run(run_id):
            rows = self._streams[stream_run_id]
            deliveries: list[DeliveryRecord] = [
                d for batch in sorted(rows.deliveries) for d in rows.deliveries[batch]
            ]
            found.append(
                StreamSnapshot(
                    record=rows.record,
                    subscriptions=tuple(
                        copy.deepcopy(rows.subscriptions[n]) for n in sorted(rows.subscriptions)
                    ),
                    signals=tuple(copy.deepcopy(rows.signals)),
                    deliveries=tuple(deliveries),
                    wait_hook=rows.wait_hook,
                )
            )
        return tuple(found)

    def _streams_taken(self, snapshots: Iterable[StreamSnapshot], freed: set[str]) -> bool:
        """Whether a stream run of ``snapshots`` is here, driven by a run not in ``freed``."""
        return any(
            s.record.stream_run_id in self._streams
            and self._streams[s.record.stream_run_id].record.run_id not in freed
            for s in snapshots
        )

    def _put_streams(self, snapshots: Sequence[StreamSnapshot]) -> None:
        """Store stream runs exactly as given (a copied run's)."""
        for snapshot in snapshots:
            rows = _StreamRows(snapshot.record)
            rows.subscriptions = {s.step_name: copy.deepcopy(s) for s in snapshot.subscriptions}
            rows.signals = [copy.deepcopy(s) for s in snapshot.signals]
            rows.keys = {s.idempotency_key: s for s in rows.signals if s.idempotency_key}
            for delivery in snapshot.deliveries:
                rows.deliveries.setdefault(delivery.batch, []).append(delivery)
            rows.wait_hook = snapshot.wait_hook
            self._streams[snapshot.record.stream_run_id] = rows

    def _hand_on_continued(self, ended_before: float) -> None:
        """Hand each stream run whose driver continued as new before ``ended_before`` to the
        driver's successor, when that still exists (SQL's ``HAND_ON_CONTINUED``).
        """  # noqa: D205 - the rule does not fit one line
        for rows in self._streams.values():
            driver = self._runs.get(rows.record.run_id)
            if (
                driver is not None
                and driver.status is RunStatus.CONTINUED_AS_NEW
                and driver.completed_at is not None
                and driver.completed_at < ended_before
                and driver.continued_to is not None
                and driver.continued_to in self._runs
            ):
                rows.record = dataclasses.replace(rows.record, run_id=driver.continued_to)

    def _forget_streams(self, run_id: str) -> None:
        """Delete the stream runs ``run_id`` drives, with every row of theirs."""
        for stream_run_id in self._stream_ids_of_run(run_id):
            del self._streams[stream_run_id]
