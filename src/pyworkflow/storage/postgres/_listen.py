"""LISTEN/NOTIFY for PostgreSQL storage: one connection that hears what other processes did.

Writers notify on the storage's channel (``_one_trip.NOTIFY_CHANNEL``) in the statement
that makes the change, so a notification arrives only for a committed change. The listener
holds one connection of its own (a pooled one would go back to the pool and lose its LISTEN).
When that connection
drops (the server restarted) it reconnects with backoff, and then tells every subscriber
``("runnable", "*")``: notifications sent meanwhile were lost, so look at storage once.
Notifications only wake; storage stays the truth, and polling remains the fallback.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg

from pyworkflow._backoff import Backoff

__all__ = ["ChangeListener"]

_log = logging.getLogger("pyworkflow.storage.postgres")

Subscriber = Callable[[str, str], None]


class ChangeListener:
    """Delivers ``(kind, run_id)`` notifications to subscribers, reconnecting as needed.

    Args:
        connect: opens a new connection (the storage's own connect, with its settings).
        channel: the channel to LISTEN on.
        url: the masked URL, for logs.
    """

    def __init__(
        self, connect: Callable[[], Awaitable[asyncpg.Connection]], channel: str, url: str
    ) -> None:
        self._connect = connect
        self._channel = channel
        self._url = url
        self._subscribers: list[Subscriber] = []
        self._task: asyncio.Task[None] | None = None
        self.listening = asyncio.Event()
        """Set while the LISTEN connection is up (tests wait on it)."""

    def subscribe(self, callback: Subscriber) -> None:
        """Call ``callback(kind, run_id)`` for each notification; starts listening if needed."""
        self._subscribers.append(callback)
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(
                self._listen(), name="pyworkflow-pg-listen"
            )

    def unsubscribe(self, callback: Subscriber) -> None:
        """Stop calling ``callback``."""
        with contextlib.suppress(ValueError):
            self._subscribers.remove(callback)

    async def close(self) -> None:
        """Stop listening and close the connection."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def _deliver(self, kind: str, run_id: str) -> None:
        for callback in list(self._subscribers):
            try:
                callback(kind, run_id)
            except Exception:  # a subscriber's bug must not stop the others
                _log.exception("notification subscriber failed")

    def _on_notification(self, _conn: Any, _pid: int, _channel: str, payload: str) -> None:
        kind, _, run_id = payload.partition(" ")
        self._deliver(kind, run_id)

    async def _listen(self) -> None:
        delays = Backoff(0.1, 5.0)
        first = True
        while True:
            try:
                conn = await self._connect()
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                delay = delays.next()
                _log.warning("LISTEN on %s failed, retrying in %.1fs: %s", self._url, delay, exc)
                await asyncio.sleep(delay)
                continue
            lost = asyncio.Event()
            try:
                conn.add_termination_listener(lambda _conn, lost=lost: lost.set())
                await conn.add_listener(self._channel, self._on_notification)
                self.listening.set()
                delays.reset()
                if not first:  # what was sent while we were away is lost: look once
                    self._deliver("runnable", "*")
                first = False
                # A dropped socket is noticed only when we use it: probe now and then.
                while not lost.is_set():
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(5.0):
                            await lost.wait()
                    if not lost.is_set():
                        await conn.execute("SELECT 1")
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                _log.warning("LISTEN connection to %s lost: %s", self._url, exc)
            finally:
                self.listening.clear()
                with contextlib.suppress(Exception):
                    conn.terminate()
