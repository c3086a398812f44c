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


class Context:
    """The dashboard's state, one per app (``app.state.dashboard``).

    Args:
        guard: who may write.
    """

    def __init__(self, guard: Guard) -> None:
        self.guard = guard

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

    def registered(self) -> list[str]:
        """Names of the workflows registered in this process (``--module``)."""
        return registry.workflow_names()

    async def schedules(self) -> bool:
        """True when the storage keeps schedules: the Schedules page is shown only then."""
        return callable(getattr(await self.storage(), "list_schedules", None))
