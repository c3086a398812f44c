"""What the codec refuses to store, and how its refusals read.

A value that is a live resource of this process (an open file, a socket, a lock, a generator,
a thread, a database connection ...) is not data: cloudpickle would store a file opened for
reading as a copy of what it held then and an asyncio lock as a new lock, and fail on most of
the others with a message about its internals. :func:`live_object` recognises them before
pickle is tried, so each gets one refusal that says what the value is and what to hand over
instead.

The advice depends on where the value was found: an argument (a workflow's or a step's, a hook
payload) is passed, a result (a step's or a workflow's) is returned and stored in the run's
log. :class:`Failure` carries both and the codec's caller says which one applies.
"""

from __future__ import annotations

import collections.abc
import sys
from dataclasses import dataclass

from pyworkflow.exceptions import SerializationError

__all__ = ["NO_PICKLE_HINT", "PLAIN", "Advice", "Failure", "live_object", "type_name"]

NO_PICKLE_HINT = (
    "pickle is disabled (allow_pickle=False); make it a dataclass, a pydantic model or JSON "
    "types (dict, list, str, int, float, bool, None), or configure allow_pickle=True"
)
"""Why a value that needs pickle is refused when pickle is off, and what to do."""


@dataclass(frozen=True, slots=True)
class Advice:
    """What to hand over instead of a refused value.

    Attributes:
        argument: for an argument or a payload, e.g. ``"pass its path ..."``.
        result: for a step's or a workflow's result, e.g. ``"return its path ..."``, after
            "a result is stored in the run's log: ".
    """

    argument: str
    result: str


PLAIN = Advice(
    "pass plain data, or create it in the step",
    "return plain data instead (dict, list, str, numbers, a dataclass or pydantic model)",
)
"""The advice for a value cloudpickle cannot pickle."""


class Failure(Exception):
    """Raised deep in a tree; each container on the way up prepends its key to ``keys``.

    Args:
        type_name: the qualified name of the refused value's type.
        reason: what is wrong with it.
        verb: ``"cannot be serialized"`` or ``"cannot be decoded"``.
        advice: what to hand over instead, when the refusal has advice to give.
    """

    def __init__(
        self,
        type_name: str,
        reason: str,
        verb: str = "cannot be serialized",
        advice: Advice | None = None,
    ) -> None:
        super().__init__(reason)
        self.type_name, self.reason, self.verb, self.advice = type_name, reason, verb, advice
        self.keys: list[str] = []

    def error(self, path: str, *, result: bool = False) -> SerializationError:
        """The error naming where the value sits under ``path``; a result's advice if ``result``."""
        where = path + "".join(reversed(self.keys))
        reason = self.reason
        if self.advice is not None and result:
            reason += "; a result is stored in the run's log: " + self.advice.result
        elif self.advice is not None:
            reason += "; " + self.advice.argument
        message = f"{where} (a {self.type_name}) {self.verb}: {reason}"
        return SerializationError(message, path=where, type_name=self.type_name)


_THIS_PROCESS = "it means nothing in another process or after a restart"
_IN_THE_STEP = Advice("create it in the step that uses it", PLAIN.result)

# (what it is, advice, the classes: "module.QualName", looked up in sys.modules so that nothing
# is imported to check; a module nobody imported has no instances to refuse).
_KINDS: tuple[tuple[str, Advice, tuple[str, ...]], ...] = (
    (
        "an open file is a handle of this process, not data (one opened for reading would be "
        "stored as a copy of what it held then)",
        Advice(
            "pass its path, or its contents as str or bytes, and open it in the step",
            "return its path or its contents (str or bytes) instead",
        ),
        ("io.IOBase",),
    ),
    (
        f"a socket is a connection of this process; {_THIS_PROCESS}",
        Advice(
            "pass the address and connect in the step",
            "return what it received (bytes, str) instead",
        ),
        ("socket.socket",),
    ),
    (
        "a lock, condition, semaphore, event or queue coordinates the threads or tasks of one "
        f"process; {_THIS_PROCESS}",
        _IN_THE_STEP,
        (
            "_thread.LockType",
            "_thread.RLock",
            "threading.Condition",
            "threading.Semaphore",
            "threading.Event",
            "threading.Barrier",
            "queue.Queue",
            "queue.SimpleQueue",
            "asyncio.locks.Lock",
            "asyncio.locks.Condition",
            "asyncio.locks.Semaphore",
            "asyncio.locks.Event",
            "asyncio.locks.Barrier",
            "asyncio.queues.Queue",
        ),
    ),
    (
        f"a future or task is work under way in this process; {_THIS_PROCESS}",
        Advice("await it and pass its result", "await it and return its result"),
        ("asyncio.futures.Future", "concurrent.futures._base.Future"),
    ),
    (
        f"a thread, process or event loop runs in this process; {_THIS_PROCESS}",
        Advice(
            "start it in the step that needs it, and pass what it works on",
            "return what it produced instead",
        ),
        (
            "threading.Thread",
            "multiprocessing.process.BaseProcess",
            "subprocess.Popen",
            "asyncio.events.AbstractEventLoop",
        ),
    ),
    (
        f"a database connection belongs to this process; {_THIS_PROCESS}",
        Advice(
            "pass what identifies the data (an id, a query) and connect in the step",
            "return the rows as plain data (dicts, dataclasses) instead",
        ),
        ("sqlite3.Connection", "sqlite3.Cursor"),
    ),
)
_SUSPENDED_CLASSES = (
    collections.abc.Generator,
    collections.abc.Coroutine,
    collections.abc.AsyncGenerator,
)
_SUSPENDED = (
    "a generator, coroutine or async generator is code paused half-way, not data",
    Advice(
        "pass its values as a list (list(...)), or await the coroutine and pass its result",
        "return its values as a list, or await the coroutine and return its result",
    ),
)
# Connections of other drivers, told by their package and the end of their class's name.
_DRIVERS = frozenset(
    {"asyncpg", "psycopg", "psycopg2", "aiosqlite", "pymysql", "MySQLdb", "aiomysql", "redis"}
    | {"sqlalchemy", "pymongo", "motor"}
)
_DRIVER_CLASSES = ("Connection", "Cursor", "Pool", "Engine", "Session", "Client", "Redis")


def _classes(names: tuple[str, ...]) -> tuple[type, ...]:
    found = []
    for name in names:
        module_name, _, qualname = name.rpartition(".")
        cls = getattr(sys.modules.get(module_name), qualname, None)
        if isinstance(cls, type):
            found.append(cls)
    return tuple(found)


def live_object(value: object) -> Failure | None:
    """The refusal of ``value`` if it is a live resource of this process, else None.

    Only values the codec would otherwise pickle reach here, so the checks cost nothing on
    the common path.
    """
    name = type_name(value)
    if isinstance(value, _SUSPENDED_CLASSES):
        return Failure(name, _SUSPENDED[0], advice=_SUSPENDED[1])
    for what, advice, classes in _KINDS:
        if isinstance(value, _classes(classes)):
            return Failure(name, what, advice=advice)
    cls = type(value)
    if cls.__module__.partition(".")[0] in _DRIVERS and cls.__name__.endswith(_DRIVER_CLASSES):
        what, advice, _ = _KINDS[-1]
        return Failure(name, what, advice=advice)
    return None


def type_name(v: object) -> str:
    """The qualified name of ``v``'s type (builtins by their short name)."""
    t = type(v)
    return t.__qualname__ if t.__module__ == "builtins" else f"{t.__module__}.{t.__qualname__}"
