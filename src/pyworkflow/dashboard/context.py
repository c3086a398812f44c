"""What every request of the dashboard reaches: the runtime's storage, the codec, the guard.

The dashboard serves the runtime of its process (``pyworkflow.runtime``): the command configures
it (storage, modules, no runs executed here) and the app reads through its storage. Values are
decoded with ``display.reading_codec``: never a pickle without the configured secret key.
"""

from __future__ import annotations

import time

from starlette.requests import Request

from pyworkflow import registry
from pyworkflow.dashboard.display import reading_codec
from pyworkflow.dashboard.guard import Guard
from pyworkflow.runtime import get_runtime
from pyworkflow.serialization import Codec
from pyworkflow.storage import Storage

__all__ = ["Context"]

_NAMES_TTL = 10.0


class Context:
    """The dashboard's state, one per app (``app.state.dashboard``).

    Args:
        guard: who may write.
    """

    def __init__(self, guard: Guard) -> None:
        self.guard = guard
        self._names: tuple[float, list[str]] = (float("-inf"), [])

    @staticmethod
    def of(request: Request) -> Context:
        """The context of the app serving ``request``."""
        found: Context = request.app.state.dashboard
        return found

    @staticmethod
    def now() -> float:
        """The wall clock, epoch seconds."""
        return time.time()

    async def storage(self) -> Storage:
        """The opened storage of this process's runtime."""
        return (await get_runtime()).storage

    async def codec(self) -> Codec:
        """The codec values are decoded with (``display.reading_codec``)."""
        return reading_codec((await get_runtime()).codec)

    async def workflow_names(self) -> list[str]:
        """Workflows with runs in storage or registered here, sorted; read at most every 10 s.

        For the runs page's menu: new workflow names are rare, and reading them scans an index
        of every run, which a page view should not pay each time.
        """
        read_at, names = self._names
        if time.monotonic() - read_at > _NAMES_TTL:
            stored = await (await self.storage()).count_workflow_runs()
            names = sorted(set(stored) | set(self.registered()))
            self._names = (time.monotonic(), names)
        return names

    def registered(self) -> list[str]:
        """Names of the workflows registered in this process (``--module``)."""
        return registry.workflow_names()
