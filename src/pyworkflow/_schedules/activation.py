"""``LocalScheduler``: a script that serves schedules for a while (``pyworkflow scheduler run``).

Any process that executes runs fires its workflows' schedules already (the executor's periodic
work); this keeps a script doing so, the documented way.
"""

from __future__ import annotations

import asyncio
from typing import Any

from pyworkflow.runtime import get_runtime

__all__ = ["LocalScheduler"]


class LocalScheduler:
    """Fire schedules in this process for a while: what ``pyworkflow scheduler run`` does.

    Any process that executes runs (a worker, an application with the local executor) fires
    the schedules of its workflows already; this makes a script one for ``duration`` seconds.

    Example:
        >>> await LocalScheduler(poll_interval=5.0).run(duration=60)

    Args:
        storage: accepted for the pyworkflow documentation's examples; schedules are read
            from the configured storage (``configure(storage=...)``).
        poll_interval: the longest the scheduler waits between two looks at storage.
    """

    def __init__(self, storage: Any = None, poll_interval: float = 1.0) -> None:
        self.storage = storage
        self.poll_interval = poll_interval

    async def run(self, duration: float | None = None) -> None:
        """Serve schedules and the runs they start for ``duration`` seconds (None: forever)."""
        # Imported here: pyworkflow.schedules re-exports this class (an import cycle otherwise).
        from pyworkflow.schedules import activate_scheduled_workflows

        runtime = await get_runtime()
        executor = runtime.executor
        await activate_scheduled_workflows()
        periodic = getattr(executor, "periodic", None)
        if periodic is not None:
            periodic.schedule_poll = min(periodic.schedule_poll, self.poll_interval)
        serving = getattr(executor, "serve_in_background", None)
        if serving is not None:
            serving()
        if duration is None:
            await asyncio.Event().wait()
        else:
            await asyncio.sleep(duration)
